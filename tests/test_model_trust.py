"""A model table is written by anyone with INSERT: byom trusts the bytes, never what the table
says about them. Hostile files, forged hashes, replacement mid-statement, layouts and ids."""

from __future__ import annotations

import threading

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from helpers import IRIS_FEATURES, LINEAR_PMML
from hostile_models import SECRET, onnx_reading_file

from byom import config
from byom.errors import (
    AmbiguousColumnError,
    ModelTooLargeError,
    UnsafeModelError,
)
from byom.formats import sha256_hex
from byom.outputs import OutputKind
from byom.scorers import scorer_cache
from byom.scoring import InMemoryModels, bound_cache, score_batch
from udfs.duckdb import DuckDBModelStore, register, sql

X3 = IRIS_FEATURES[:3]


def _forget_everything() -> None:
    """What a new process would hold: no scorer, no bound model."""
    scorer_cache.clear()
    bound_cache.clear()


@pytest.fixture
def regressors(iris):
    """Three linear regressions with different targets: different bytes, different numbers."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    X = iris[X3].to_numpy(np.float32)
    out = []
    for target in ("petal_width", "sepal_length", "sepal_width"):
        y = iris[target] if target != "sepal_length" else iris["petal_length"]
        model = LinearRegression().fit(X, y)
        out.append((model, to_onnx(model, X[:1]).SerializeToString()))
    return out


def _one(con, model_id: str, row=(5.0, 3.0, 1.5)) -> float:
    return con.execute(f"SELECT score('{model_id}', ?, ?, ?)", list(row)).fetchone()[0]


def _expected(model, row=(5.0, 3.0, 1.5)) -> float:
    return float(model.predict(np.array([row], np.float32))[0])


# -- hostile files ---------------------------------------------------------------------------
def test_onnx_external_data_is_refused_at_save_and_when_inserted_by_hand(con, store, monkeypatch):
    monkeypatch.chdir("/tmp/leak")
    with open("secret.txt", "w") as f:
        f.write(SECRET)
    leaky = onnx_reading_file()
    with pytest.raises(UnsafeModelError, match="external data"):
        store.add("leak", leaky)
    con.execute(
        "INSERT INTO byom_models (model_id, model, format, sha256, size_bytes, created_at)"
        " VALUES ('leak', ?, 'onnx', 'x', 1, now())",
        [leaky],
    )
    with pytest.raises(duckdb.Error, match=r"model 'leak' refers to external data.*secret\.txt"):
        con.execute("SELECT score('leak', x::FLOAT) FROM range(26) r(x)").fetchall()


def test_oversized_blob_inserted_by_hand_is_refused_before_it_is_read(monkeypatch, tmp_path):
    monkeypatch.setattr(config, "MAX_MODEL_BYTES", 1000)
    con = duckdb.connect()
    con.execute("CREATE TABLE byom_models (model_id VARCHAR, model BLOB)")
    con.execute("INSERT INTO byom_models VALUES ('big', ?)", [LINEAR_PMML + b" " * 5000])
    register(con)
    with pytest.raises(duckdb.Error, match=r"model 'big' in byom_models is 6,132 bytes, over"):
        con.execute("SELECT score('big', 1.0, 0.0, 'red')").fetchall()
    with pytest.raises(ModelTooLargeError):
        DuckDBModelStore(con).fetch("big")


# -- forged and stale hashes ------------------------------------------------------------------
def test_update_with_the_hash_left_alone_scores_the_new_bytes(con, store, regressors):
    (a_model, a), (b_model, b), _ = regressors
    store.add("m", a, inputs=",".join(X3))
    assert _one(con, "m") == pytest.approx(_expected(a_model), abs=1e-5)
    con.execute("UPDATE byom_models SET model = ? WHERE model_id = 'm'", [b])  # sha256 stale
    assert _one(con, "m") == pytest.approx(_expected(b_model), abs=1e-5)


def test_a_forged_hash_never_selects_another_models_scorer(con, store, regressors):
    """As a new process: load the replaced model first, then the model still holding the old
    bytes (whose hash the replaced row still claims) must score as itself."""
    (a_model, a), (b_model, b), _ = regressors
    store.add("m", a, inputs=",".join(X3))
    store.add("keeps_a", a, inputs=",".join(X3))
    con.execute("UPDATE byom_models SET model = ? WHERE model_id = 'm'", [b])
    _forget_everything()
    assert _one(con, "m") == pytest.approx(_expected(b_model), abs=1e-5)
    assert _one(con, "keeps_a") == pytest.approx(_expected(a_model), abs=1e-5)
    con.execute("UPDATE byom_models SET sha256 = ? WHERE model_id = 'keeps_a'", [sha256_hex(b)])
    _forget_everything()
    assert _one(con, "m") == pytest.approx(_expected(b_model), abs=1e-5)
    assert _one(con, "keeps_a") == pytest.approx(_expected(a_model), abs=1e-5)


# -- columns matched by name ------------------------------------------------------------------
def _row(**columns: object) -> pa.StructArray:
    """A row as Spark's struct(*) or the Teradata script hands it over: names keep their case
    (DuckDB folds case in struct fields, so it cannot even build these rows)."""
    return pa.StructArray.from_arrays(
        [pa.array([v]) for v in columns.values()], names=list(columns)
    )


def test_exact_case_wins_and_two_case_insensitive_matches_are_an_error():
    models = InMemoryModels()
    models.add("lin", LINEAR_PMML)  # inputs x, z, color

    def score(args):
        return score_batch((OutputKind.SCORE,), pa.array(["lin"]), args, models)[0]

    row = {"X": 100.0, "x": 1.0, "z": 0.0, "color": "red"}
    assert score([_row(**row)]).to_pylist() == [6.0]  # 1 + 2*1 + 3, from x, not X
    row = {"x": 1.0, "Z": 0.0, "color": "red"}
    assert score([_row(**row)]).to_pylist() == [6.0]  # one case-insensitive match is fine
    row = {"x": 1.0, "z": 0.0, "COLOR": "red", "Color": "blue"}
    with pytest.raises(AmbiguousColumnError, match=r"columns 'COLOR' and 'Color' both match it"):
        score([_row(**row)])


# -- table layouts and ids --------------------------------------------------------------------
def test_replace_works_on_a_two_column_table(con, regressors):
    (_, a), (b_model, b), _ = regressors
    con.execute("CREATE TABLE td (model_id VARCHAR, model BLOB)")
    store = register(con, "td")
    store.add("r", a)
    store.add("r", b, replace=True)
    assert con.execute("SELECT count(*) FROM td").fetchone()[0] == 1
    assert _one(con, "r") == pytest.approx(_expected(b_model), abs=1e-5)


def test_null_blob_and_duplicate_ids_say_what_is_wrong(con, regressors):
    (_, a), (_, b), _ = regressors
    con.execute("CREATE TABLE td (model_id VARCHAR, model BLOB)")
    con.execute("INSERT INTO td VALUES ('n', NULL), ('d', ?), ('d', ?)", [a, b])
    register(con, "td")
    with pytest.raises(duckdb.Error, match=r"model 'n' in td has no bytes \(its model column is"):
        _one(con, "n")
    with pytest.raises(duckdb.Error, match=r"model id 'd' appears 2 times in td"):
        _one(con, "d")


def test_register_on_many_cursors_adds_no_functions(tmp_path):
    con = duckdb.connect(str(tmp_path / "r.duckdb"))
    register(con).add("lin", LINEAR_PMML)
    count = "SELECT count(*) FROM duckdb_functions() WHERE function_name LIKE 'byom_%'"
    before = con.execute(count).fetchone()[0]
    cursors = []
    for _ in range(20):
        cur = con.cursor()
        register(cur)
        cursors.append(cur)
    assert con.execute(count).fetchone()[0] == before == 4
    assert cursors[-1].execute("SELECT score('lin', 1.0, 0.0, 'blue')").fetchone()[0] == 3.0
    cursors[-1].close()  # the newest registering connection: the others still read the table
    with pytest.raises(duckdb.Error, match=r"unknown model id 'lim'.*did you mean 'lin'"):
        cursors[-2].execute("SELECT score('lim', 1.0, 0.0, 'blue')").fetchall()


# -- replacement while statements run --------------------------------------------------------
def test_a_statement_inside_a_transaction_loads_the_model_it_sees(tmp_path, regressors):
    (a_model, a), (b_model, b), _ = regressors
    db = str(tmp_path / "t.duckdb")
    reader = duckdb.connect(db)
    writer = reader.cursor()
    register(reader)
    store = register(writer)
    store.add("m", a, inputs=",".join(X3))
    reader.execute("BEGIN TRANSACTION")
    reader.execute("SELECT count(*) FROM byom_models").fetchall()  # the snapshot starts here
    store.add("m", b, inputs=",".join(X3), replace=True)
    _forget_everything()
    assert _one(reader, "m") == pytest.approx(_expected(a_model), abs=1e-5)
    reader.execute("COMMIT")
    assert _one(reader, "m") == pytest.approx(_expected(b_model), abs=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("cached", [True, False], ids=["cached", "not-cached"])
def test_four_scorers_and_a_replacer_never_fail_and_never_mix(tmp_path, iris, cached):
    """Every statement's result equals the reference of the version its own snapshot holds."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    X = iris[X3].to_numpy(np.float32)
    rng = np.random.default_rng(3)
    variants = []
    for i in range(24):
        model = LinearRegression().fit(X, iris["petal_width"] + rng.normal(0, 0.5, len(X)) + i)
        variants.append((model, to_onnx(model, X[:1]).SerializeToString()))
    by_hash = {sha256_hex(onx): model for model, onx in variants}
    db = str(tmp_path / "s.duckdb")
    main = duckdb.connect(db)
    store = register(main)
    store.add("m", variants[0][1], inputs=",".join(X3))
    main.execute("CREATE TABLE rows AS SELECT * FROM iris")
    main.execute("INSERT INTO rows SELECT * FROM rows")  # 300 rows, one vector per statement
    rows = main.execute(f"SELECT {', '.join(X3)} FROM rows").fetchnumpy()
    features = np.column_stack([rows[c] for c in X3]).astype(np.float32)
    query = (
        "SELECT (SELECT sha256(model) FROM byom_models WHERE model_id = 'm') AS v, "
        "list(score('m', *) ORDER BY rowid) AS s FROM rows"
    )
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: list[tuple[str, list[float]]] = []

    def score() -> None:
        cur = main.cursor()
        register(cur)
        try:
            while not stop.is_set():
                ((v, s),) = sql(cur, query).fetchall()
                seen.append((v, s))
        except BaseException as exc:  # re-raised in the test's thread
            errors.append(exc)
            stop.set()

    def replace() -> None:
        cur = main.cursor()
        writer = register(cur)
        try:
            for i in range(1, 4 * len(variants)):
                if not cached:
                    _forget_everything()
                writer.add("m", variants[i % len(variants)][1], inputs=",".join(X3), replace=True)
        except BaseException as exc:
            errors.append(exc)
        finally:
            stop.set()

    threads = [threading.Thread(target=score) for _ in range(4)]
    threads.append(threading.Thread(target=replace))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len({v for v, _ in seen}) > 3, "the replacer should have raced the scorers"
    for v, s in seen:
        np.testing.assert_allclose(s, by_hash[v].predict(features), rtol=1e-5, atol=1e-5)


# -- the same through Spark ------------------------------------------------------------------
def _spark_table(spark, path: str, rows: list[tuple[str, bytes]]) -> str:
    """A model table written by hand, as anyone with write access to it could."""
    spark.createDataFrame(rows, "model_id STRING, model BINARY").write.parquet(path)
    return path


def test_spark_refuses_external_data_written_into_its_table(spark, tmp_path, monkeypatch):
    from udfs.spark import byom_error, register

    monkeypatch.chdir("/tmp/leak")
    table = _spark_table(spark, str(tmp_path / "models"), [("leak", onnx_reading_file())])
    register(spark, table)
    df = spark.range(26).selectExpr("'leak' AS model_id", "CAST(id AS FLOAT) AS x")
    df.createOrReplaceTempView("rows")
    with pytest.raises(Exception) as info:
        spark.sql("SELECT score(model_id, x) FROM rows").collect()
    err = byom_error(info.value)
    assert isinstance(err, UnsafeModelError), info.value
    assert "model 'leak' refers to external data" in str(err)
    assert SECRET not in str(info.value)


def test_spark_checks_sizes_before_reading_bytes(spark, tmp_path, monkeypatch):
    from udfs.spark import register

    monkeypatch.setattr(config, "MAX_MODEL_BYTES", 1000)
    table = _spark_table(spark, str(tmp_path / "models"), [("big", LINEAR_PMML + b" " * 5000)])
    with pytest.raises(ModelTooLargeError, match=r"model 'big' in .*models is 6,132 bytes"):
        register(spark, table)
