"""Register byom's SQL functions on a SparkSession.

`register` reads the model table once on the driver (ids and content hashes; bytes only for
hashes not shipped before), broadcasts each distinct model's bytes once, keyed by sha256, and
registers iterator-form Arrow UDFs. On the executors a Python worker reads a broadcast only for
the models its rows name, and loads each scorer once (the scorer cache, keyed by content).

Refresh semantics: plain `spark.sql` scores with the models as of the last `register` or
`refresh`; byom's `sql(spark, query)` and `spark_jobs/score_table.py` refresh first, so a model
added or replaced in the table is used by their next statement.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from byom.errors import ArityError, ByomError, ModelChangedError
from byom.outputs import OutputKind
from byom.scoring import ModelCatalog, StatementModels, StoredModel, score_batch, version_key
from byom.sql_rewrite import expand_star_arguments
from udfs.spark._engine import import_pyspark
from udfs.spark.store import ModelVersion, SparkModelStore

#: Spark SQL types of each function's result, matching DuckDB's.
RETURN_TYPES = {
    OutputKind.SCORE: "double",
    OutputKind.PREDICT: "struct<label:string,score:double,probabilities:map<string,double>>",
    OutputKind.JSON: "string",
}


def row_form(table: str | None) -> str:
    """Spark's whole row, by name: `struct(*)` keeps the column names (a bare `*` would not)."""
    return f"struct({table}.*)" if table else "struct(*)"


#: Spark's by-name row form, named in errors about positional calls.
ROW_HINT = f"score(model_id, {row_form(None)})"


class BroadcastModels(ModelCatalog):
    """The models of one registration, as the executors see them: versions fixed on the
    driver, bytes read from a broadcast only on a cache miss."""

    def __init__(self, table: str, models: dict[str, ModelVersion], blobs: dict[str, Any]):
        super().__init__({m.model_id: version_key(m.sha256, m.inputs) for m in models.values()})
        self.table = (
            f"{table} as registered (models added since are seen after "
            "udfs.spark.refresh(spark), and by byom's sql() and score_table.py)"
        )
        self._models = models
        self._blobs = blobs  # sha256 -> pyspark Broadcast of the bytes

    def fetch(self, model_id: str) -> StoredModel | None:
        model = self._models.get(model_id)
        if model is None:
            return None
        blob = self._blobs[model.sha256].value
        version = self._versions[model_id]
        return StoredModel(model_id, blob, version, model.sha256, model.inputs)


def _make_udf(kind: OutputKind, catalog: BroadcastModels) -> Any:
    from pyspark.sql.functions import arrow_udf

    def score(batches: Iterator[tuple[pa.Array, ...]]) -> Iterator[pa.Array]:
        statement = StatementModels()  # the models this task binds in this worker
        for model_ids, *features in batches:
            try:
                yield score_batch((kind,), model_ids, features, catalog, statement=statement)[0]
            except ArityError as exc:
                raise exc.with_row_hint(ROW_HINT) from None

    # The iterator form, inferred from the type hints (pyspark's stubs lack this overload).
    return arrow_udf(score, RETURN_TYPES[kind])  # type: ignore[call-overload]


#: Reads of the model table before a concurrent replace is reported as an error.
_REFRESH_ATTEMPTS = 5


@dataclass
class SparkRegistration:
    """byom's functions on one SparkSession, bound to one model table."""

    spark: Any
    store: SparkModelStore
    models: dict[str, ModelVersion] = field(default_factory=dict)
    broadcasts: dict[str, Any] = field(default_factory=dict)
    #: The registered UDF objects by kind, for DataFrame code: `udfs[OutputKind.SCORE](...)`.
    udfs: dict[OutputKind, Any] = field(default_factory=dict)
    catalog: BroadcastModels | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def refresh(self) -> bool:
        """Re-read the model table; re-register the functions if any model changed.

        A model replaced between reading the hashes and the bytes is read again (a few times),
        so a concurrent replace does not fail the caller."""
        for _ in range(_REFRESH_ATTEMPTS - 1):
            try:
                return self._refresh()
            except ModelChangedError:
                continue
        return self._refresh()

    def _refresh(self) -> bool:
        with self._lock:
            models = self.store.versions()
            if models == self.models and self.udfs:
                return False
            needed = {m.sha256 for m in models.values()}
            sc = self.spark.sparkContext
            missing = needed - set(self.broadcasts)
            for sha, blob in self.store.blobs(missing).items():
                self.broadcasts[sha] = sc.broadcast(blob)
                missing.discard(sha)
            if missing:
                raise ModelChangedError(
                    f"model table {self.store.table} kept changing while byom read it "
                    f"({_REFRESH_ATTEMPTS} attempts); try again when the writes settle"
                )
            for sha in set(self.broadcasts) - needed:
                self.broadcasts.pop(sha).unpersist()
            catalog = BroadcastModels(self.store.table, models, dict(self.broadcasts))
            for kind in OutputKind:
                self.udfs[kind] = self.spark.udf.register(kind.value, _make_udf(kind, catalog))
            self.models, self.catalog = models, catalog
            return True

    def model_ids(self) -> list[str]:
        return sorted(self.models)


_registrations: dict[int, SparkRegistration] = {}


def register(spark: Any, models_table: str = "byom_models") -> SparkRegistration:
    """Make score / predict / predict_json callable in this session's Spark SQL.

    `models_table` is a catalog table name or a Parquet path holding model_id STRING and model
    BINARY (byom's full layout or just those two columns).
    """
    import_pyspark()
    plugins = os.environ.get("BYOM_FORMATS")
    if plugins:  # model formats registered by plugins: the Python workers load them too
        spark.sparkContext.environment["BYOM_FORMATS"] = plugins
    registration = SparkRegistration(spark, SparkModelStore(spark, models_table))
    registration.refresh()
    _registrations[id(spark)] = registration
    return registration


def _registration(spark: Any) -> SparkRegistration:
    try:
        return _registrations[id(spark)]
    except KeyError:
        raise ByomError(
            "byom's functions are not registered on this SparkSession: call "
            "udfs.spark.register(spark, models_table=...) first"
        ) from None


def refresh(spark: Any) -> bool:
    """Pick up models added or replaced since `register`; True if anything changed."""
    return _registration(spark).refresh()


def sql(spark: Any, query: str, **kwargs: Any) -> Any:
    """Run Spark SQL that may use `score(model_id, *)`, with the model table as it is now."""
    registration = _registration(spark)
    registration.refresh()
    return spark.sql(expand_star_arguments(query, "spark", row_form), **kwargs)
