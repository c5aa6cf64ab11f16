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
    assert len(statements) == 7
    for statement in statements:
        con.execute(statement).fetchall()  # empty tables: binds and runs every example
