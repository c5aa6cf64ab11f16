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
        from byom.scoring import InMemoryModels, score_batch

        memory = InMemoryModels()
        for mid, spec in models.items():
            memory.add(mid, spec.blob, spec.inputs)
        row = pa.StructArray.from_arrays(
            [c.combine_chunks() for c in table.columns], names=table.column_names
        )
        return score_batch((kind,), table["model_id"], [row], memory)[0].to_pylist()


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

        from helpers import spark_session

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


class TeradataEngine:
    """Teradata's SCRIPT table operator, played by tests/teradata_server.py: 4 AMPs, one
    byom_score.py process each, rows as delimited text on stdin and stdout.

    The script takes one input map per call, so models are grouped by input map and each group
    is one SCRIPT call over its rows (as a query would UNION ALL them); the rows with a NULL
    model id go with the first group. The calls take turns at how models reach the script, so
    every run checks both: `inline` (base64 on the first row of each partition, PARTITION BY
    model_id and a bucket _row % 3, ORDER BY _row) and installed `files` (--model-file, HASH BY
    _row). `_row` is accumulated to put the rows back in order."""

    name = "teradata"
    amps = 4
    deliveries = ("inline", "files")

    def run(self, models: dict[str, ModelSpec], table: pa.Table, kind: OutputKind) -> list:
        from concurrent.futures import ThreadPoolExecutor

        import pyarrow.compute as pc

        rows = table.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
        buckets = pa.array([i % 3 for i in range(table.num_rows)], pa.int64())
        rows = rows.append_column("_bucket", buckets)
        groups: dict[str | None, list[str]] = {}
        for mid, spec in models.items():
            groups.setdefault(spec.inputs, []).append(mid)
        calls = []
        for i, (inputs, ids) in enumerate(groups.items()):
            mask = pc.is_in(rows["model_id"], pa.array(ids, pa.string()))
            if i == 0:
                mask = pc.or_(mask, pc.is_null(rows["model_id"]))
            delivery = self.deliveries[i % len(self.deliveries)]
            calls.append((ids, inputs, rows.filter(mask), delivery))
        # The SCRIPT calls of the UNION ALL run at once, as the server would run them.
        with ThreadPoolExecutor(len(calls)) as pool:
            parts = list(pool.map(lambda c: self._call(models, *c, kind), calls))
        result = pa.concat_tables(parts)
        result = result.take(pc.sort_indices(result["_row"]))
        assert result["_row"].to_pylist() == list(range(table.num_rows))
        return self._results(result, kind)

    def _call(
        self,
        models: dict[str, ModelSpec],
        ids: list[str],
        inputs: str | None,
        rows: pa.Table,
        delivery: str,
        kind: OutputKind,
    ) -> pa.Table:
        import tempfile
        from pathlib import Path

        from teradata_server import run_script

        outputs = {
            OutputKind.SCORE: [("score", "FLOAT")],
            OutputKind.JSON: [("json_report", "VARCHAR(32000)")],
            OutputKind.PREDICT: [
                ("label", "VARCHAR(1000)"),
                ("score", "FLOAT"),
                ("json_report", "VARCHAR(32000)"),
            ],
        }[kind]
        args = ["--model-column", "model_id", "--accumulate", "_row"]
        args += ["--outputs", ",".join(name for name, _ in outputs)]
        if inputs is not None:
            args += ["--inputs", inputs]
        returns = [("_row", "BIGINT"), *outputs]
        if delivery == "inline":
            return run_script(
                rows,
                args,
                returns,
                amps=self.amps,
                partition_by=["model_id", "_bucket"],
                order_by="_row",
                model_data={mid: models[mid].blob for mid in ids},
            )
        with tempfile.TemporaryDirectory() as tmp:
            for mid in ids:
                path = Path(tmp) / mid
                path.write_bytes(models[mid].blob)
                args += ["--model-file", f"{mid}={path}"]
            return run_script(rows, args, returns, amps=self.amps, hash_by="_row")

    @staticmethod
    def _results(result: pa.Table, kind: OutputKind) -> list:
        import json

        if kind is OutputKind.SCORE:
            return result["score"].to_pylist()
        if kind is OutputKind.JSON:
            return result["json_report"].to_pylist()
        values = []
        for label, score, report in zip(
            result["label"].to_pylist(),
            result["score"].to_pylist(),
            result["json_report"].to_pylist(),
            strict=True,
        ):
            if report is None:  # a NULL model id: a NULL result
                values.append(None)
                continue
            # json_report holds the class probabilities as one object (none for a regression).
            objects = [v for v in json.loads(report).values() if isinstance(v, dict)]
            probs = objects[0] if objects else {}
            values.append({"label": label, "score": score, "probabilities": probs})
        return values


ENGINES = {
    engine.name: engine
    for engine in (
        CoreEngine(),
        DuckDBEngine(),
        SparkEngine(),
        TeradataEngine(),
    )
}
