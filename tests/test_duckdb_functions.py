"""The DuckDB SQL surface: forms of call, per-row models, versions, caching, threads.

The behaviour every engine shares (NULL model id, empty input, replaced model, bad input) is
tested in tests/conformance."""

from __future__ import annotations

import json
import threading

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from helpers import (
    EXACT,
    FLOAT32,
    IRIS_FEATURES,
    LINEAR_PMML,
    PMML_DOUBLE,
    assert_close,
    linear_pmml_expected,
)

from byom.scorers import scorer_cache
from udfs.duckdb import register, sql


def _load_iris(con, iris, n_copies: int = 1) -> pa.Table:
    frame = iris[IRIS_FEATURES].copy()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = pa.concat_tables([table] * n_copies)
    table = table.append_column("id", pa.array(np.arange(table.num_rows)))
    con.register("iris_arrow", table)
    con.execute("CREATE OR REPLACE TABLE iris AS SELECT * FROM iris_arrow")
    return table


def _native_X(table: pa.Table) -> np.ndarray:
    return np.column_stack([table[c].to_numpy() for c in IRIS_FEATURES]).astype(np.float32)


def test_positional_by_name_and_struct_forms_agree(con, store, iris, iris_logreg):
    model, onx = iris_logreg
    store.add("iris", onx, inputs=",".join(IRIS_FEATURES))
    table = _load_iris(con, iris)
    expected = model.predict_proba(_native_X(table)).max(axis=1)
    forms = {
        "positional": "score('iris', sepal_length, sepal_width, petal_length, petal_width)",
        "columns": "score('iris', *COLUMNS(* EXCLUDE (id)))",
        "alias": "score('iris', t)",
        "struct_pack": "score('iris', struct_pack(*COLUMNS(*)))",
    }
    for name, call in forms.items():
        got = con.sql(f"SELECT {call} AS s FROM iris t ORDER BY id").fetchnumpy()["s"]
        assert_close(got, expected, FLOAT32, err_msg=name)


def test_card_query_verbatim_through_sql_helper(con, store, iris, iris_logreg, iris_binary_onnx):
    """SELECT score(model_id, *) FROM t, with model_id naming two models row by row."""
    multi, multi_onx = iris_logreg
    binary, binary_onx = iris_binary_onnx
    cols = ",".join(IRIS_FEATURES)
    store.add("multi", multi_onx, inputs=cols)
    store.add("binary", binary_onx, inputs=cols)
    table = _load_iris(con, iris)
    con.execute(
        "CREATE TABLE t AS SELECT *, CASE WHEN id % 3 = 0 THEN 'binary' ELSE 'multi' END "
        "AS model_id FROM iris"
    )
    got = sql(con, "SELECT score(model_id, *) FROM t").fetchnumpy()
    scores = next(iter(got.values()))
    X = _native_X(table)
    is_binary = np.arange(len(X)) % 3 == 0
    expected = np.where(
        is_binary, binary.predict_proba(X)[:, 1], multi.predict_proba(X).max(axis=1)
    )
    assert_close(scores, expected, FLOAT32)


def test_batch_mixing_models_scores_each_row_with_its_own(con, store, iris, iris_logreg):
    """A peer extension scores a whole chunk with the first row's model; byom must not."""
    _, onx = iris_logreg
    store.add("a", onx, inputs=",".join(IRIS_FEATURES))
    store.add("pmml", LINEAR_PMML)
    rng = np.random.default_rng(1)
    n = 5000
    t = pa.table(
        {
            "model_id": rng.choice(["a", "pmml"], size=n),
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
            "color": rng.choice(["red", "blue"], size=n),
            "sepal_length": rng.uniform(4, 8, n),
            "sepal_width": rng.uniform(2, 4, n),
            "petal_length": rng.uniform(1, 7, n),
            "petal_width": rng.uniform(0, 3, n),
        }
    )
    con.register("mixed", t)
    # Rows whose model varies come back in no promised order (SQL promises none): each row
    # carries its own columns, and the score must be that row's own model's.
    got = sql(con, "SELECT *, score(model_id, *) AS s FROM mixed").arrow().read_all()
    is_pmml = got["model_id"].to_numpy(zero_copy_only=False) == "pmml"
    s = got["s"].to_numpy()
    assert_close(
        s[is_pmml],
        linear_pmml_expected(
            got["x"].to_numpy(), got["z"].to_numpy(), got["color"].to_numpy(False)
        )[is_pmml],
        PMML_DOUBLE,
    )
    con.register("got", got)
    direct = con.sql(
        "SELECT score('a', sepal_length, sepal_width, petal_length, petal_width) AS s FROM got"
    ).fetchnumpy()["s"]
    assert_close(s[~is_pmml], direct[~is_pmml], EXACT)


def test_predict_struct_and_json(con, store, iris, iris_logreg):
    model, onx = iris_logreg
    store.add("iris", onx, inputs=",".join(IRIS_FEATURES))
    table = _load_iris(con, iris)
    rows = sql(
        con, "SELECT predict('iris', *) AS p, predict_json('iris', *) AS j FROM iris ORDER BY id"
    ).fetchall()
    X = _native_X(table)
    proba = model.predict_proba(X)
    labels = model.predict(X)
    for i in (0, 60, 149):
        p, j = rows[i]
        assert p["label"] == str(labels[i])
        assert_close(p["score"], proba[i].max(), FLOAT32)
        assert_close([p["probabilities"][str(c)] for c in range(3)], proba[i], FLOAT32)
        doc = json.loads(j)
        assert doc["label"] == str(labels[i])
        assert_close([doc["probabilities"][str(c)] for c in range(3)], proba[i], FLOAT32)


def test_regression_and_pmml_with_nulls_and_categories(con, store):
    store.add("lin", LINEAR_PMML)
    con.execute(
        "CREATE TABLE p AS SELECT * FROM (VALUES (1, 1.5, 2.0, 'red'), (2, -1.0, NULL, 'blue'),"
        " (3, 0.0, 4.0, 'red'), (4, 2, 1, NULL)) v(id, x, z, color)"
    )
    got = sql(con, "SELECT id, score('lin', *) AS s, predict_json('lin', *) j FROM p ORDER BY id")
    rows = got.fetchall()
    expected = [1 + 3 - 1 + 3, 1 - 2 - 0 + 0, 1 + 0 - 2 + 3]
    assert_close([r[1] for r in rows[:3]], expected, PMML_DOUBLE)
    assert len(rows) == 4  # NULL color: a missing value, never a dropped row
    assert rows[3][1] == pytest.approx(1 + 4 - 0.5)  # pypmml: a missing category adds nothing
    doc = json.loads(rows[0][2])  # the predicted value under the target's name
    assert doc["y"] == pytest.approx(expected[0], rel=1e-12)


def test_integer_and_decimal_and_string_numbers_are_cast(con, store):
    store.add("lin", LINEAR_PMML)
    got = con.execute(
        "SELECT score('lin', 2::INTEGER, 1.5::DECIMAL(6,2), 'red'), "
        "score('lin', '2', '1.5', 'blue')"
    ).fetchone()
    assert_close(got, [1 + 4 - 0.75 + 3, 1 + 4 - 0.75], PMML_DOUBLE)


def test_more_than_one_chunk(con, store, iris, iris_logreg):
    model, onx = iris_logreg
    store.add("iris", onx, inputs=",".join(IRIS_FEATURES))
    table = _load_iris(con, iris, n_copies=40)  # 6000 rows: three DuckDB chunks
    got = sql(con, "SELECT id, score('iris', *) AS s FROM iris ORDER BY id").fetchnumpy()
    assert len(got["s"]) == 6000
    assert_close(got["s"], model.predict_proba(_native_X(table)).max(axis=1), FLOAT32)


def test_cached_model_is_not_parsed_again(con, store, iris, iris_logreg):
    store.add("iris", iris_logreg[1], inputs=",".join(IRIS_FEATURES))
    _load_iris(con, iris, n_copies=20)
    sql(con, "SELECT sum(score('iris', *)) FROM iris").fetchall()
    loads = scorer_cache.stats.loads
    for _ in range(3):
        sql(con, "SELECT sum(score('iris', *)) FROM iris").fetchall()
    assert scorer_cache.stats.loads == loads


def test_same_bytes_under_two_ids_load_once(con, store, iris_regressor):
    _, onx = iris_regressor
    loads = scorer_cache.stats.loads
    scorer_cache.clear()
    store.add("r1", onx)
    store.add("r2", onx)
    assert scorer_cache.stats.loads == loads + 1


def test_concurrent_queries_from_threads(tmp_path, iris, iris_logreg):
    db = str(tmp_path / "c.duckdb")
    main = duckdb.connect(db)
    store = register(main)
    model, onx = iris_logreg
    store.add("iris", onx, inputs=",".join(IRIS_FEATURES))
    table = _load_iris(main, iris, n_copies=30)
    expected = float(model.predict_proba(_native_X(table)).max(axis=1).sum())
    results: list[float] = []
    errors: list[BaseException] = []

    def work() -> None:
        cur = main.cursor()
        register(cur)
        try:
            for _ in range(3):
                results.append(sql(cur, "SELECT sum(score('iris', *)) FROM iris").fetchall()[0][0])
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(results) == 12
    assert_close(results, expected, FLOAT32)


def test_minimal_two_column_table(con, iris_regressor):
    """Teradata BYOM's layout: just model_id and model."""
    model, onx = iris_regressor
    con.execute("CREATE TABLE td_models (model_id VARCHAR, model BLOB)")
    con.execute("INSERT INTO td_models VALUES ('r', ?)", [onx])
    register(con, models_table="td_models")
    got = con.execute("SELECT score('r', 5.0, 3.0, 1.5)").fetchone()[0]
    assert got == pytest.approx(model.predict(np.array([[5.0, 3.0, 1.5]], np.float32))[0], abs=1e-5)


def test_blob_round_trip_and_register_again(con, store):
    """Reads leave no open result behind: registering again on the connection still works."""
    store.add("lin", LINEAR_PMML)
    assert store.blob("lin") == LINEAR_PMML
    register(con)
    assert con.execute("SELECT score('lin', 1.0, 0.0, 'blue')").fetchall() == [(3.0,)]


def test_pmml_scored_by_several_duckdb_threads(con, store):
    """Two row groups, two threads calling the PMML scorer at once: every row still right."""
    store.add("lin", LINEAR_PMML)
    con.execute("SET threads = 2")
    con.execute(
        "CREATE TABLE big AS SELECT i, (i % 97) / 10.0 AS x, (i % 13) - 6.0 AS z, "
        "CASE WHEN i % 3 = 0 THEN 'red' ELSE 'blue' END AS color FROM range(250000) r(i)"
    )
    got = sql(con, "SELECT i, x, z, color, score('lin', *) AS s FROM big").fetchnumpy()
    expected = linear_pmml_expected(got["x"], got["z"], got["color"])
    assert len(got["s"]) == 250_000
    assert_close(got["s"], expected, PMML_DOUBLE)
