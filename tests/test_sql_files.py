"""The DDL shipped in sql/duckdb creates exactly the table the adapter creates."""

from __future__ import annotations

from pathlib import Path

import duckdb

from udfs.duckdb import register

SQL_DIR = Path(__file__).resolve().parents[1] / "sql" / "duckdb"


def _describe(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    return con.execute("DESCRIBE byom_models").fetchall()


def test_ddl_file_matches_adapter():
    from_file = duckdb.connect()
    from_file.execute((SQL_DIR / "create_models_table.sql").read_text())
    from_adapter = duckdb.connect()
    register(from_adapter)
    assert _describe(from_file) == _describe(from_adapter)


def test_examples_parse():
    con = duckdb.connect()
    register(con)
    con.execute("CREATE TABLE customers (id INT, model_id VARCHAR, segment VARCHAR, x DOUBLE)")
    con.execute("CREATE TABLE segment_models (segment VARCHAR, model_id VARCHAR)")
    text = (SQL_DIR / "examples.sql").read_text()
    code = "\n".join(line.split("--")[0] for line in text.splitlines())
    statements = [s for s in code.split(";") if s.strip()]
    assert len(statements) == 8
    for statement in statements:
        con.execute(statement).fetchall()  # empty tables: binds and runs every example


SPARK_SQL_DIR = SQL_DIR.parent / "spark"


def test_spark_ddl_matches_the_store(spark, tmp_path, iris_logreg):
    """The catalog DDL in sql/spark has the columns and types SparkModelStore writes."""
    from udfs.spark import SparkModelStore

    try:
        spark.sql((SPARK_SQL_DIR / "create_models_table.sql").read_text())
        from_ddl = spark.table("byom_models").schema
        store = SparkModelStore(spark, str(tmp_path / "models"))
        store.add("iris", iris_logreg[1])
        written = spark.read.parquet(store.table).schema
        assert [(f.name, f.dataType) for f in from_ddl] == [(f.name, f.dataType) for f in written]
    finally:
        spark.sql("DROP TABLE IF EXISTS byom_models")


def test_spark_examples_run(spark):
    """Every example binds and runs in Spark SQL on empty tables."""
    from udfs.spark import register

    try:
        spark.sql((SPARK_SQL_DIR / "create_models_table.sql").read_text())
        register(spark, "byom_models")
        spark.sql(
            "CREATE OR REPLACE TEMP VIEW customers AS SELECT 1 AS id, "
            "'churn_v3' AS model_id, 'a' AS segment, 0.5D AS x WHERE false"
        )
        spark.sql(
            "CREATE OR REPLACE TEMP VIEW segment_models AS SELECT 'a' AS segment, "
            "'churn_v3' AS model_id WHERE false"
        )
        text = (SPARK_SQL_DIR / "examples.sql").read_text()
        code = "\n".join(line.split("--")[0] for line in text.splitlines())
        statements = [s for s in code.split(";") if s.strip()]
        assert len(statements) == 8
        for statement in statements:
            assert spark.sql(statement).collect() == []
    finally:
        spark.sql("DROP TABLE IF EXISTS byom_models")
