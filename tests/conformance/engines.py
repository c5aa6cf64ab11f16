"""Every engine adapter behind one small interface, so one test module can compare them all.

An engine takes models (id -> bytes, input map), an Arrow table with a model-id column, and
returns the `score`, `predict` and `predict_json` results as Python lists in row order.
New engines join by adding a class here and a name to ENGINES.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from byom.outputs import OutputKind


@dataclass(frozen=True)
class ModelSpec:
    blob: bytes
    inputs: str | None = None


class CoreEngine:
    """The core called directly: no SQL engine at all."""

    name = "core"

    def run(self, models: dict[str, ModelSpec], table: pa.Table, kind: OutputKind) -> list:
        from byom.scoring import InMemoryModels

        memory = InMemoryModels()
        for mid, spec in models.items():
            memory.add(mid, spec.blob, spec.inputs)
        row = pa.StructArray.from_arrays(
            [c.combine_chunks() for c in table.columns], names=table.column_names
        )
        return memory.score(kind, table["model_id"], [row]).to_pylist()


class DuckDBEngine:
    name = "duckdb"

    def run(self, models: dict[str, ModelSpec], table: pa.Table, kind: OutputKind) -> list:
        import duckdb

        from udfs.duckdb import register, sql

        con = duckdb.connect()
        store = register(con)
        for mid, spec in models.items():
            store.add(mid, spec.blob, inputs=spec.inputs)
        con.register("input_rows", table)
        con.execute("CREATE TABLE t AS SELECT row_number() OVER () AS _row, * FROM input_rows")
        query = f"SELECT {kind.value}(model_id, *) AS r FROM t ORDER BY _row"
        values = [r[0] for r in sql(con, query).fetchall()]
        con.close()
        return values


class SparkEngine:
    """Spark SQL in local[2]: rows repartitioned so every query spans several partitions and
    several Arrow batches (the session's batch size is small; see conftest.spark_session)."""

    name = "spark"

    def run(self, models: dict[str, ModelSpec], table: pa.Table, kind: OutputKind) -> list:
        import tempfile

        from conftest import spark_session

        from udfs.spark import SparkModelStore, register, sql

        spark = spark_session()
        with tempfile.TemporaryDirectory() as tmp:
            store = SparkModelStore(spark, f"{tmp}/models")
            for mid, spec in models.items():
                store.add(mid, spec.blob, inputs=spec.inputs)
            register(spark, store.table)
            rows = table.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
            spark.createDataFrame(rows.to_pandas()).repartition(5).createOrReplaceTempView("t")
            query = f"SELECT _row, {kind.value}(model_id, *) AS r FROM t"
            values = sorted(sql(spark, query).collect())
        return [_plain_row(v.r) for v in values]


def _plain_row(value: object) -> object:
    """Spark's Row for a STRUCT as a dict, like the other engines' results."""
    return value.asDict() if hasattr(value, "asDict") else value


ENGINES = {engine.name: engine for engine in (CoreEngine(), DuckDBEngine(), SparkEngine())}
