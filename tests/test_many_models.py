"""Thousands of models in one statement: per-row model choice over 1,000 models (ONNX and PMML,
different input maps) equals each model scored alone, in row order, through the core and
DuckDB; each model loads once per statement; a statement whose models outgrow
BYOM_CACHE_BYTES fails at once, saying what they need (issue 18)."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from many_models import each_alone, models, rows

from byom import scoring
from byom.errors import ModelMemoryError
from byom.outputs import OutputKind
from byom.scorers import scorer_cache
from byom.scoring import InMemoryModels, StatementModels, score_batch
from udfs.duckdb import register, sql

N_MODELS = 1_000


@pytest.fixture(scope="module")
def thousand():
    return models(N_MODELS)


@pytest.fixture(scope="module")
def catalog(thousand):
    memory = InMemoryModels()
    for model_id, (blob, inputs) in thousand.items():
        memory.add(model_id, blob, inputs)
    return memory


def alone(catalog, table: pa.Table, kind: OutputKind) -> list:
    """Each model scored over its own rows only, put back in row order."""
    return each_alone(table, kind, lambda _: catalog)


@pytest.mark.parametrize("kind", [OutputKind.SCORE, OutputKind.JSON])
def test_core_batch_of_a_thousand_models_equals_each_alone(catalog, thousand, kind):
    table = rows(list(thousand), 6_000, seed=1)
    row = pa.StructArray.from_arrays(
        [c.combine_chunks() for c in table.columns], names=table.column_names
    )
    got = score_batch((kind,), table["model_id"], [row], catalog)[0].to_pylist()
    assert len({i for i in table["model_id"].to_pylist() if i}) > 900
    assert got == alone(catalog, table, kind)
    assert all(v is None for v, i in zip(got, table["model_id"].to_pylist(), strict=True) if not i)


def test_rows_already_grouped_by_model_are_not_reordered(catalog, thousand):
    """A batch whose rows come in model order (a clustered table) is scored slice by slice,
    with the same results."""
    table = rows(list(thousand)[:50], 3_000, seed=2, nulls=0.0)
    table = table.take(pa.array(np.argsort(table["model_id"].to_numpy(zero_copy_only=False))))
    row = pa.StructArray.from_arrays(
        [c.combine_chunks() for c in table.columns], names=table.column_names
    )
    got = score_batch((OutputKind.SCORE,), table["model_id"], [row], catalog)[0].to_pylist()
    assert got == alone(catalog, table, OutputKind.SCORE)


@pytest.fixture
def con(thousand):
    connection = duckdb.connect()
    store = register(connection)
    for model_id, (blob, inputs) in thousand.items():
        store.add(model_id, blob, inputs=inputs)
    yield connection
    connection.close()


def test_duckdb_statement_over_a_thousand_models(con, catalog, thousand):
    """One SQL statement; every model loads once; results equal each model alone."""
    table = rows(list(thousand), 8_000, seed=3)
    con.register("input_rows", table)
    con.execute("CREATE TABLE t AS SELECT row_number() OVER () AS _row, * FROM input_rows")
    scorer_cache.clear()
    scoring.bound_cache.clear()
    loads = scorer_cache.stats.loads
    got = [r[0] for r in sql(con, "SELECT score(model_id, *) FROM t ORDER BY _row").fetchall()]
    used = len({i for i in table["model_id"].to_pylist() if i})
    assert scorer_cache.stats.loads - loads == used  # not one model loaded twice
    assert got == alone(catalog, table, OutputKind.SCORE)


def test_statement_over_the_cache_bound_fails_saying_what_it_needs(con, thousand, monkeypatch):
    """Models that do not fit the cache together fail the statement at once (no thrashing),
    naming the memory they need and the setting to raise."""
    for cache in (scorer_cache, scoring.bound_cache):
        monkeypatch.setattr(cache, "max_bytes", 2 * 1024**2)  # about twenty small models
    table = rows(list(thousand)[:200], 2_000, seed=4, nulls=0.0)
    con.register("input_rows", table)
    con.execute("CREATE OR REPLACE TABLE t AS SELECT * FROM input_rows")
    with pytest.raises(duckdb.Error) as info:
        sql(con, "SELECT sum(score(model_id, *)) FROM t").fetchall()
    message = str(info.value)
    assert "ModelMemoryError" in message and "BYOM_CACHE_BYTES (2.0 MiB)" in message
    assert "set BYOM_CACHE_BYTES to at least" in message
    # A statement whose models fit still scores, in the same process.
    small = rows(list(thousand)[:5], 500, seed=5, nulls=0.0)
    con.register("few_rows", small)
    assert len(sql(con, "SELECT score(model_id, *) FROM few_rows").fetchall()) == 500


def test_statement_models_count_each_version_once(monkeypatch):
    monkeypatch.setattr(scoring.bound_cache, "max_bytes", 1000)
    statement = StatementModels()
    statement.add("a", 600)
    statement.add("a", 600)  # the same model again: still 600
    with pytest.raises(ModelMemoryError) as info:
        statement.add("b", 500)
    assert info.value.count == 2 and info.value.needed == 1100 and info.value.bound == 1000
    alone = StatementModels()
    alone.add("larger than the bound, but alone", 5000)  # the cache keeps one model anyway


def test_following_statement_carries_models_until_the_bound(monkeypatch):
    """A statement that starts from the previous one's models keeps them counted; when the
    bound is reached, the carried models it has not used go first, and only its own models
    can fail it."""
    monkeypatch.setattr(scoring.bound_cache, "max_bytes", 1000)
    first = StatementModels()
    first.add("a", 400)
    first.add("b", 400)
    second = first.following()
    assert second.carried
    second.used.add("a")  # the second statement scores with "a" (its rows name it)
    second.add("c", 400)  # 1,200 with "b" carried: "b" goes, "a" and "c" stay counted
    assert not second.carried
    with pytest.raises(ModelMemoryError) as info:
        second.add("d", 400)  # "a", "c" and "d" are the statement's own: 1,200
    assert info.value.count == 3 and info.value.needed == 1200


def test_statements_in_a_row_pin_their_models_once(con, thousand, monkeypatch):
    """DuckDB: the second of two statements over the same models finds them all counted and
    pinned by the first (no per-model work), with the same results."""
    table = rows(list(thousand)[:300], 3_000, seed=6, nulls=0.0)
    con.register("again_rows", table)
    query = "SELECT model_id, score(model_id, *) AS s FROM again_rows ORDER BY ALL"
    first = sql(con, query).fetchall()
    pinned: list[int] = []
    pin = StatementModels.pin
    monkeypatch.setattr(
        StatementModels,
        "pin",
        lambda self, t, ids, *a: pinned.append(len(ids)) or pin(self, t, ids, *a),
    )
    assert sql(con, query).fetchall() == first
    assert pinned == []
