"""Every engine adapter behind one small interface, so one test module can compare them all.

`engine.session(models)` holds a model table (id -> bytes, input map) for as many statements
as a test needs; `session.run(table, kind)` runs one statement over an Arrow table with a
`model_id` column and returns the `score`, `predict` or `predict_json` results as Python
lists in row order; `session.replace(model_id, spec)` puts new bytes under an id, as
`byom models add --replace` would, for the statements after it. A statement that fails with
byom's error raises `ScoringFailed`. `engine.run(models, table, kind)` is one statement in a
session of its own. New engines join by adding a class here and a name to ENGINES.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa

from byom.outputs import OutputKind


@dataclass(frozen=True)
class ModelSpec:
    blob: bytes
    inputs: str | None = None


class ScoringFailed(Exception):
    """A statement failed with byom's error. `error` is the error's class name where the
    engine reports it (Teradata's SCRIPT reports the script's message only), `message` the
    text the user reads."""

    def __init__(self, engine: str, error: str | None, message: str) -> None:
        super().__init__(f"{engine}: {error or 'error'}: {message}")
        self.engine = engine
        self.error = error
        self.message = message


class Session(Protocol):
    def run(self, table: pa.Table, kind: OutputKind, args: Sequence[str] | None = None) -> list:
        """One statement: `kind(model_id, *)`, or with `args` the named columns passed
        positionally, `kind(model_id, a, b, ...)`."""

    def replace(self, model_id: str, spec: ModelSpec) -> None: ...

    def close(self) -> None: ...


class Engine:
    name: str

    def session(self, models: dict[str, ModelSpec]) -> Session:
        raise NotImplementedError

    def run(self, models: dict[str, ModelSpec], table: pa.Table, kind: OutputKind) -> list:
        session = self.session(models)
        try:
            return session.run(table, kind)
        finally:
            session.close()


def _call(kind: OutputKind, args: Sequence[str] | None) -> str:
    return f"{kind.value}(model_id, {', '.join(args) if args is not None else '*'})"


# -- the core -------------------------------------------------------------------------------------
class CoreEngine(Engine):
    """The core called directly: no SQL engine at all."""

    name = "core"

    def session(self, models: dict[str, ModelSpec]) -> Session:
        return CoreSession(models)


class CoreSession:
    def __init__(self, models: dict[str, ModelSpec]) -> None:
        from byom.scoring import InMemoryModels

        self.memory = InMemoryModels()
        for mid, spec in models.items():
            self.replace(mid, spec)

    def replace(self, model_id: str, spec: ModelSpec) -> None:
        self.memory.add(model_id, spec.blob, spec.inputs)

    def run(self, table: pa.Table, kind: OutputKind, args: Sequence[str] | None = None) -> list:
        from byom.errors import ByomError
        from byom.scoring import score_batch

        if args is None:
            columns = [c.combine_chunks() for c in table.columns]
            values = [pa.StructArray.from_arrays(columns, names=table.column_names)]
        else:
            values = [table[c].combine_chunks() for c in args]
        try:
            return score_batch((kind,), table["model_id"], values, self.memory)[0].to_pylist()
        except ByomError as exc:
            raise ScoringFailed("core", type(exc).__name__, str(exc)) from exc

    def close(self) -> None:
        pass


# -- DuckDB ---------------------------------------------------------------------------------------
class DuckDBEngine(Engine):
    """DuckDB in memory: the models are added through one connection and the statements run
    on another (a cursor of the same database), so a replaced model must reach them through
    the table."""

    name = "duckdb"

    def session(self, models: dict[str, ModelSpec]) -> Session:
        return DuckDBSession(models)


_DUCKDB_UDF_ERROR = re.compile(r"while executing the UDF: (\w+): (.*)", re.DOTALL)


class DuckDBSession:
    def __init__(self, models: dict[str, ModelSpec]) -> None:
        import duckdb

        from udfs.duckdb import register

        self.writer = duckdb.connect()
        self.store = register(self.writer)
        self.con = self.writer.cursor()
        register(self.con)
        for mid, spec in models.items():
            self.store.add(mid, spec.blob, inputs=spec.inputs)

    def replace(self, model_id: str, spec: ModelSpec) -> None:
        self.store.add(model_id, spec.blob, inputs=spec.inputs, replace=True)

    def run(self, table: pa.Table, kind: OutputKind, args: Sequence[str] | None = None) -> list:
        import duckdb

        from udfs.duckdb import sql

        self.con.register("input_rows", table)
        self.con.execute(
            "CREATE OR REPLACE TABLE t AS SELECT row_number() OVER () AS _row, * FROM input_rows"
        )
        query = f"SELECT {_call(kind, args)} AS r FROM t ORDER BY _row"
        try:
            return [r[0] for r in sql(self.con, query).fetchall()]
        except duckdb.Error as exc:
            found = _DUCKDB_UDF_ERROR.search(str(exc))
            if found is None:
                raise
            raise ScoringFailed("duckdb", found[1], found[2]) from exc

    def close(self) -> None:
        self.con.close()
        self.writer.close()


# -- Spark ----------------------------------------------------------------------------------------
class SparkEngine(Engine):
    """Spark SQL in local[2]: rows repartitioned so every query spans several partitions and
    several Arrow batches (the session's batch size is small; see helpers.spark_session).
    Statements go through byom's sql(), which picks up a changed model table. A session of
    more than 8 models writes its model table in one job (store.add is two jobs a model)."""

    name = "spark"

    def session(self, models: dict[str, ModelSpec]) -> Session:
        return SparkSession(models)


class SparkSession:
    def __init__(self, models: dict[str, ModelSpec]) -> None:
        import tempfile

        from helpers import spark_session

        from udfs.spark import SparkModelStore, register

        self.spark = spark_session()
        self.tmp = tempfile.TemporaryDirectory()
        self.store = SparkModelStore(self.spark, f"{self.tmp.name}/models")
        if len(models) <= 8:
            for mid, spec in models.items():
                self.store.add(mid, spec.blob, inputs=spec.inputs)
        else:  # the rows store.add writes, validated alike, in one Spark job instead of two each
            from byom.store import prepare_model
            from udfs.spark.store import SPARK_SCHEMA

            records = [prepare_model(s.blob, mid, s.inputs).row() for mid, s in models.items()]
            df = self.spark.createDataFrame(records, SPARK_SCHEMA)
            df.coalesce(1).write.parquet(self.store.table)
        register(self.spark, self.store.table)

    def replace(self, model_id: str, spec: ModelSpec) -> None:
        self.store.add(model_id, spec.blob, inputs=spec.inputs, replace=True)

    def run(self, table: pa.Table, kind: OutputKind, args: Sequence[str] | None = None) -> list:
        from udfs.spark import byom_error, sql

        rows = table.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
        self.spark.createDataFrame(rows).repartition(5).createOrReplaceTempView("t")
        query = f"SELECT _row, {_call(kind, args)} AS r FROM t"
        try:
            values = sorted(sql(self.spark, query).collect())
        except Exception as exc:
            err = byom_error(exc)
            if err is None:
                raise
            raise ScoringFailed("spark", type(err).__name__, str(err)) from exc
        return [_plain_row(v.r) for v in values]

    def close(self) -> None:
        self.tmp.cleanup()


def _plain_row(value: object) -> object:
    """Spark's Row for a STRUCT as a dict, like the other engines' results."""
    return value.asDict() if hasattr(value, "asDict") else value


# -- Teradata -------------------------------------------------------------------------------------
class TeradataEngine(Engine):
    """Teradata's SCRIPT table operator, played by tests/teradata_server.py: 4 AMPs, one
    byom_score.py process each, rows as delimited text on stdin and stdout.

    The script takes one input map per call, so models are grouped by input map and each group
    is one SCRIPT call over its rows (as a query would UNION ALL them); the rows whose model id
    is NULL or in no group go with the first group. The calls take turns at how models reach
    the script, so a run with several input maps checks both: installed `files` (--model-file,
    HASH BY _row; the first group, so an unknown id meets every model and gets suggestions)
    and `inline` (base64 on the first row of each partition, PARTITION BY model_id and a bucket
    _row % 3, ORDER BY _row; an instance knows only its own partitions' models). `_row` is
    accumulated to put the rows back in order.

    SCRIPT has no positional call (the script reads the ON query's columns by name), and a
    failed instance fails the query with the script's message on stderr."""

    name = "teradata"

    def session(self, models: dict[str, ModelSpec]) -> Session:
        return TeradataSession(models)


class TeradataSession:
    amps = 4
    deliveries = ("files", "inline")
    operator = "script"

    def __init__(self, models: dict[str, ModelSpec]) -> None:
        self.models = dict(models)

    def replace(self, model_id: str, spec: ModelSpec) -> None:
        self.models[model_id] = spec  # the next SCRIPT call is given the new bytes

    def close(self) -> None:
        pass

    def run(self, table: pa.Table, kind: OutputKind, args: Sequence[str] | None = None) -> list:
        from concurrent.futures import ThreadPoolExecutor

        import pyarrow.compute as pc
        from teradata_server import ScriptFailed

        if args is not None:
            raise NotImplementedError("SCRIPT has no positional call")
        rows = table.append_column("_row", pa.array(range(table.num_rows), pa.int64()))
        buckets = pa.array([i % 3 for i in range(table.num_rows)], pa.int64())
        rows = rows.append_column("_bucket", buckets)
        groups: dict[str | None, list[str]] = {}
        for mid, spec in self.models.items():
            groups.setdefault(spec.inputs, []).append(mid)
        held = pa.array(list(self.models), pa.string())
        calls = []
        for i, (inputs, ids) in enumerate(groups.items()):
            mask = pc.is_in(rows["model_id"], pa.array(ids, pa.string()))
            if i == 0:
                mask = pc.or_(mask, pc.invert(pc.is_in(rows["model_id"], held)))
            delivery = self.deliveries[i % len(self.deliveries)]
            calls.append((ids, inputs, rows.filter(mask), delivery))
        # A call with no rows to score is left out of the query (unless every call is).
        calls = [c for c in calls if c[2].num_rows] or calls[:1]
        # The SCRIPT calls of the UNION ALL run at once, as the server would run them.
        try:
            with ThreadPoolExecutor(len(calls)) as pool:
                parts = list(pool.map(lambda c: self._call(*c, kind), calls))
        except ScriptFailed as exc:
            lines = [x for x in exc.stderr.splitlines() if x.startswith("byom_score.py: ")]
            if not lines:
                raise
            message = lines[-1].removeprefix("byom_score.py: ")
            raise ScoringFailed("teradata", None, message) from exc
        result = pa.concat_tables(parts)
        result = result.take(pc.sort_indices(result["_row"]))
        assert result["_row"].to_pylist() == list(range(table.num_rows))
        return self._results(result, kind)

    def _call(
        self,
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
                model_data={mid: self.models[mid].blob for mid in ids},
                operator=self.operator,
            )
        with tempfile.TemporaryDirectory() as tmp:
            for mid in ids:
                path = Path(tmp) / mid
                path.write_bytes(self.models[mid].blob)
                args += ["--model-file", f"{mid}={path}"]
            return run_script(
                rows, args, returns, amps=self.amps, hash_by="_row", operator=self.operator
            )

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


class TeradataApplyEngine(TeradataEngine):
    """VantageCloud Lake's APPLY operator, played by the same harness: RFC 4180 CSV both ways
    (`""` an empty string, an empty field NULL), `python3 byom_score.py --operator apply` in
    the environment's folder. Two AMPs: what differs from SCRIPT is the text contract, not
    the fan-out, and the suite's time stays in check."""

    name = "teradata-apply"

    def session(self, models: dict[str, ModelSpec]) -> Session:
        return TeradataApplySession(models)


class TeradataApplySession(TeradataSession):
    amps = 2
    operator = "apply"


ENGINES: dict[str, Engine] = {
    engine.name: engine
    for engine in (
        CoreEngine(),
        DuckDBEngine(),
        SparkEngine(),
        TeradataEngine(),
        TeradataApplyEngine(),
    )
}
