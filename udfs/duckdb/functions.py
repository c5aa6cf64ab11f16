"""Register byom's SQL functions on a DuckDB connection.

`score(model_id, ...)` is a macro. A subquery over the model table, inside the statement's own
snapshot, hands each model's bytes once per statement to a resolver UDF, which keys them by
their own hash (never by a stored hash column) and loads them if this process has not; the
version keys then go with every row into a vectorized Arrow UDF. So a model replaced in the
table is used by the next statement, one statement never mixes versions, and a concurrent
replace never fails a statement: the bytes it scores with are the bytes its snapshot holds.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
import weakref
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from byom import config
from byom.errors import ArityError, ModelTableError
from byom.outputs import OutputKind
from byom.scoring import StatementModels, StoredModel, resolve_versions, score_batch
from byom.sql_rewrite import expand_star_arguments
from udfs.duckdb._engine import import_duckdb
from udfs.duckdb.store import DuckDBModelStore

#: Most feature arguments of a positional call; pass a row by name for wider models.
MAX_POSITIONAL = 64

_RETURN_TYPES = {
    OutputKind.SCORE: "DOUBLE",
    OutputKind.PREDICT: "STRUCT(label VARCHAR, score DOUBLE, probabilities MAP(VARCHAR, DOUBLE))",
    OutputKind.JSON: "VARCHAR",  # cast to JSON in the macro: the UDF returns plain Arrow strings
}

#: The version key the macro's SQL gives a model id that several rows of the table hold.
_DUPLICATE = "!duplicate:"


class _TableSource:
    """The model table behind one set of UDFs, read through whichever registering connection
    is still open (UDFs are database-wide; a connection that registered them may be closed).

    Only rare paths read through it: the "did you mean" list of an unknown id, and a model
    evicted from every cache mid-statement (checked against the statement's version key).
    Connections are held weakly: registering never keeps a database open."""

    def __init__(self, table: str) -> None:
        self.table = table
        self._connections: list[weakref.ref[Any]] = []
        self._lock = threading.Lock()
        # DuckDB resolves every model of a statement (the subquery's distinct ids) before it
        # scores a row: a resolve after scoring began starts the next statement's count, with
        # this one's models carried over (`StatementModels.following`).
        self._statement = StatementModels()
        self._scoring = False

    def resolving(self) -> None:
        """A resolver call: after scoring began, it belongs to the next statement."""
        with self._lock:
            if self._scoring:  # the next statement starts with this one's models
                self._statement, self._scoring = self._statement.following(), False

    def scoring(self) -> StatementModels:
        """The running statement's models, as its scoring calls bind them."""
        with self._lock:
            self._scoring = True
            return self._statement

    def in_use(self) -> bool:
        return any(ref() is not None for ref in self._connections)

    def attach(self, con: Any) -> None:
        with self._lock:
            alive = [ref for ref in self._connections if ref() is not None]
            self._connections = [*alive[-7:], weakref.ref(con)]

    def _first_open(self, read: Callable[[DuckDBModelStore], Any]) -> Any:
        duckdb = import_duckdb()
        with self._lock:
            connections = [ref() for ref in reversed(self._connections)]
        for con in connections:
            if con is None:
                continue
            try:
                return read(DuckDBModelStore(con, self.table))
            except duckdb.ConnectionException:
                continue  # that connection was closed: try an older one
        raise ModelTableError(f"every connection that registered byom on {self.table} is closed")

    def fetch(self, model_id: str) -> StoredModel | None:
        found: StoredModel | None = self._first_open(lambda s: s.fetch(model_id))
        return found

    def model_ids(self) -> list[str]:
        ids: list[str] = self._first_open(lambda s: s.model_ids())
        return ids


#: UDF sets by name token: one per database and model table in this process, however many
#: connections or cursors register it (each gets only its own TEMP macros).
_sources: dict[str, _TableSource] = {}
_sources_lock = threading.Lock()


def _check_duplicates(versions: pa.Array, model_ids: pa.Array, table: str) -> None:
    if versions.null_count == len(versions):
        return
    marked = pc.starts_with(versions, _DUPLICATE).fill_null(False)
    if pc.any(marked).as_py():
        row = pc.index(marked, True).as_py()
        count = versions[row].as_py()[len(_DUPLICATE) :]
        raise ModelTableError(
            f"model id {model_ids[row].as_py()!r} appears {count} times in {table}; a model id "
            "must name one model: delete the extra rows (`byom models add --replace` keeps one "
            "row per id)"
        )


def row_form(table: str | None) -> str:
    """DuckDB's whole row, by name: a table alias is already one; `*` is all columns."""
    return table if table else "struct_pack(*COLUMNS(*))"


#: DuckDB's by-name row forms, named in errors about positional calls.
ROW_HINT = "score(model_id, t) or score(model_id, *)"


def _make_udf(kind: OutputKind, source: _TableSource) -> Any:
    def udf(versions: pa.Array, model_ids: pa.Array, *features: pa.Array) -> pa.Array:
        _check_duplicates(versions, model_ids, source.table)
        try:
            statement = source.scoring()
            return score_batch((kind,), model_ids, features, source, versions, statement)[0]
        except ArityError as exc:
            raise exc.with_row_hint(ROW_HINT) from None

    return udf


def _make_resolve_udf(source: _TableSource) -> Any:
    def resolve(
        model_ids: pa.Array, blobs: pa.Array, input_maps: pa.Array, sizes: pa.Array
    ) -> pa.Array:
        source.resolving()  # a resolve after scoring began: the next statement
        return resolve_versions(source.table, model_ids, blobs, input_maps, sizes)

    return resolve


def _macro_sql(
    kind: OutputKind, impl: str, resolve: str, store: DuckDBModelStore, max_args: int
) -> str:
    inputs = "_byom_m.inputs" if "inputs" in store.columns() else "NULL::VARCHAR"
    size = "octet_length(_byom_m.model)"
    # Once per model per statement, inside the statement's snapshot: the model's bytes (unless
    # over the size bound) go to the resolver, which keys them by their own hash.
    blob = f"CASE WHEN {size} <= {config.MAX_MODEL_BYTES} THEN _byom_m.model END"
    version = (
        f"(SELECT CASE WHEN count(*) > 1 THEN '{_DUPLICATE}' || count(*) ELSE any_value("
        f"{resolve}(_byom_m.model_id, {blob}, {inputs}, {size})) END "
        f"FROM {store.sql_table} _byom_m WHERE _byom_m.model_id = _byom_id)"
    )
    cast = "::JSON" if kind is OutputKind.JSON else ""
    overloads = []
    for k in range(1, max_args + 1):
        params = ", ".join(f"_byom_a{i}" for i in range(1, k + 1))
        call = f"{impl}({version}, _byom_id, {params}){cast}"
        overloads.append(f"(_byom_id, {params}) AS {call}")
    return f"CREATE OR REPLACE TEMP MACRO {kind.value} " + ",\n".join(overloads)


def _udf_names(con: Any, store: DuckDBModelStore) -> tuple[dict[OutputKind, str], str]:
    """The UDF names for this database and table: those a connection of this process already
    registered in this database if any (UDFs are database-wide and only their creator can drop
    them, so registering again must not add more), else new ones."""
    tag = hashlib.sha256(store.table.encode()).hexdigest()[:8]
    prefix = f"byom_resolve_{tag}_"
    rows = con.execute(
        "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_name LIKE ?",
        [prefix + "%"],
    ).fetchall()
    with _sources_lock:
        for dead in [t for t, source in _sources.items() if not source.in_use()]:
            del _sources[dead]
        token = next((r[0][len(prefix) :] for r in rows if r[0][len(prefix) :] in _sources), None)
        fresh = token is None
        if token is None:
            token = uuid.uuid4().hex[:12]
            _sources[token] = _TableSource(store.table)
        _sources[token].attach(con)
    names = {kind: f"byom_{kind.value}_{tag}_{token}" for kind in OutputKind}
    if fresh:
        duckdb = import_duckdb()
        source = _sources[token]
        for kind in OutputKind:
            con.create_function(
                names[kind],
                _make_udf(kind, source),
                None,
                _RETURN_TYPES[kind],
                type="arrow",
                null_handling="special",
                side_effects=False,
            )
        # Not volatile: DuckDB then computes the per-model subquery once per distinct model id
        # (a volatile function would make it run the resolver for every row).
        con.create_function(
            prefix + token,
            _make_resolve_udf(source),
            [duckdb.sqltype(t) for t in ("VARCHAR", "BLOB", "VARCHAR", "BIGINT")],
            "VARCHAR",
            type="arrow",
            null_handling="special",
            side_effects=False,
        )
    return names, prefix + token


def register(
    con: Any,
    models_table: str = "byom_models",
    *,
    create: bool = True,
    max_positional: int = MAX_POSITIONAL,
) -> DuckDBModelStore:
    """Make score / predict / predict_json callable on this connection.

    With `create` (the default) a missing model table is created (empty, full layout); without
    it a missing table is an error naming it. Any existing table with columns model_id and
    model is used as it is.
    """
    store = DuckDBModelStore(con, models_table)
    if not store.columns():
        if not create:
            raise ModelTableError(store.missing_table_message())
        store.create()
    store.check_layout()
    names, resolve = _udf_names(con, store)
    for kind in OutputKind:
        con.execute(_macro_sql(kind, names[kind], resolve, store, max_positional))
    return store


def sql(con: Any, query: str, params: object = None) -> Any:
    """Run SQL that may use `score(model_id, *)`; returns DuckDB's relation or result."""
    rewritten = expand_star_arguments(query, "duckdb", row_form)
    if params is None:
        return con.sql(rewritten)
    return con.execute(rewritten, params)
