"""Register byom's SQL functions on a DuckDB connection.

`score(model_id, ...)` is a macro: it resolves the model's version key in SQL, inside the
statement's own snapshot, and hands it with the row to a vectorized Arrow UDF. A model replaced
in the table is therefore used by the next statement, and one statement never mixes versions.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

import pyarrow as pa

from byom.outputs import OutputKind
from byom.scoring import score_batch
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


#: UDF names registered by each connection (by id), so registering again replaces them.
_registered: dict[int, list[str]] = {}


def _make_udf(kind: OutputKind, store: DuckDBModelStore) -> Any:
    def udf(versions: pa.Array, model_ids: pa.Array, *features: pa.Array) -> pa.Array:
        return score_batch(kind, model_ids, versions, features, store)

    return udf


def _macro_sql(kind: OutputKind, impl: str, store: DuckDBModelStore, max_args: int) -> str:
    version = (
        f"(SELECT {store.version_sql('_byom_m')} FROM {store.sql_table} _byom_m "
        "WHERE _byom_m.model_id = _byom_id)"
    )
    cast = "::JSON" if kind is OutputKind.JSON else ""
    overloads = []
    for k in range(1, max_args + 1):
        params = ", ".join(f"_byom_a{i}" for i in range(1, k + 1))
        call = f"{impl}({version}, _byom_id, {params}){cast}"
        overloads.append(f"(_byom_id, {params}) AS {call}")
    return f"CREATE OR REPLACE TEMP MACRO {kind.value} " + ",\n".join(overloads)


def register(
    con: Any, models_table: str = "byom_models", *, max_positional: int = MAX_POSITIONAL
) -> DuckDBModelStore:
    """Make score / predict / predict_json callable on this connection.

    The model table is created (empty, full layout) if it does not exist; any existing table
    with columns model_id and model is used as it is.
    """
    duckdb = import_duckdb()
    store = DuckDBModelStore(con, models_table)
    if not store.columns():
        store.create()
    # Python UDFs are visible to every connection of the database, while the macros are TEMP
    # (per connection): a unique UDF name per registration keeps each connection bound to its
    # own model table.
    for old in _registered.pop(id(con), []):
        with contextlib.suppress(duckdb.InvalidInputException, duckdb.CatalogException):
            con.remove_function(old)
    token = uuid.uuid4().hex[:12]
    names = []
    for kind in OutputKind:
        name = f"byom_{kind.value}_{token}"
        names.append(name)
        con.create_function(
            name,
            _make_udf(kind, store),
            None,
            _RETURN_TYPES[kind],
            type="arrow",
            null_handling="special",
            side_effects=False,
        )
        con.execute(_macro_sql(kind, name, store, max_positional))
    _registered[id(con)] = names
    return store


def sql(con: Any, query: str, params: object = None) -> Any:
    """Run SQL that may use `score(model_id, *)`; returns DuckDB's relation or result."""
    rewritten = expand_star_arguments(query, "duckdb")
    if params is None:
        return con.sql(rewritten)
    return con.execute(rewritten, params)
