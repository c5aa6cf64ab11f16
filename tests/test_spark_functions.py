"""Spark SQL in local[2]: the card's query, both call forms, refresh semantics, Spark's `*`.

Engine agreement with DuckDB and the core, and the behaviour every engine shares (NULL model
id, empty input, replaced model, bad input), are in tests/conformance; this module checks
Spark's own behaviour against the native models.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
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

from byom.errors import (
    ArityError,
    ByomError,
    ModelTableError,
    UnknownModelError,
)
from udfs.spark import SparkModelStore, byom_error, refresh, register, sql

ROOT = Path(__file__).resolve().parents[1]


def run_error(df_or_query, spark=None) -> ByomError:
    """Collect and return the byom error the Python workers raised."""
    with pytest.raises(Exception) as info:
        (spark.sql(df_or_query) if spark is not None else df_or_query).collect()
    err = byom_error(info.value)
    assert err is not None, f"not a byom error: {info.value}"
    return err


@pytest.fixture
def models(spark, tmp_path, iris_logreg):
    """A Parquet model table with the iris classifier (by name) and the hand-written PMML."""
    store = SparkModelStore(spark, str(tmp_path / "models"))
    store.add("iris", iris_logreg[1], inputs=",".join(IRIS_FEATURES))
    store.add("linear", LINEAR_PMML)
    register(spark, store.table)
    return store


@pytest.fixture
def mixed(spark, iris):
    """Iris rows plus the PMML model's columns, each row naming its own model, 4 partitions."""
    rng = np.random.default_rng(11)
    n = 1000
    frame = iris.sample(n, replace=True, random_state=5).reset_index(drop=True)
    frame = frame[IRIS_FEATURES].astype("float64")
    frame["id"] = np.arange(n)
    frame["model_id"] = rng.choice(["iris", "linear"], size=n)
    frame["x"] = rng.normal(size=n)
    frame["z"] = np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n))
    frame["color"] = rng.choice(["red", "blue"], size=n)
    frame["note"] = "extra columns are ignored"
    df = spark.createDataFrame(frame).repartition(4)
    # pandas NaN arrives in Spark as NaN, not NULL: make z's gaps real NULLs.
    df = df.selectExpr("*", "nanvl(z, NULL) AS z_null").drop("z").withColumnRenamed("z_null", "z")
    df.createOrReplaceTempView("mixed")
    return frame


def expected_scores(frame, iris_logreg) -> np.ndarray:
    X = frame[IRIS_FEATURES].to_numpy(np.float32)
    return np.where(
        frame["model_id"] == "iris",
        iris_logreg[0].predict_proba(X).max(axis=1),
        linear_pmml_expected(frame["x"].to_numpy(), frame["z"].to_numpy(), frame["color"]),
    )


def test_card_query_scores_each_row_with_its_model(spark, models, mixed, iris_logreg):
    """SELECT score(model_id, *) FROM t runs verbatim through byom's sql()."""
    query = "SELECT id, score(model_id, *) AS s FROM mixed"
    df = sql(spark, query)
    assert df.rdd.getNumPartitions() > 1
    got = df.toPandas().sort_values("id")["s"].to_numpy()
    assert_close(got, expected_scores(mixed, iris_logreg), FLOAT32)


def test_positional_and_by_name_forms_agree(spark, models, mixed, iris_logreg):
    cols = ", ".join(IRIS_FEATURES)
    got = spark.sql(
        f"SELECT id, score('iris', {cols}) AS pos, score('iris', struct(*)) AS row, "
        "predict('iris', struct(*)) AS p FROM mixed"
    ).toPandas()
    got = got.sort_values("id")
    X = mixed[IRIS_FEATURES].to_numpy(np.float32)
    assert_close(got["pos"], iris_logreg[0].predict_proba(X).max(axis=1), FLOAT32)
    assert_close(got["pos"], got["row"], EXACT)
    labels = [p["label"] for p in got["p"]]
    assert labels == [str(c) for c in iris_logreg[0].predict(X)]


def test_predict_json_is_a_json_document(spark, models, mixed):
    rows = sql(spark, "SELECT id, predict_json('linear', *) AS j FROM mixed").toPandas()
    rows = rows.sort_values("id")
    got = np.array([json.loads(j)["predicted_y"] for j in rows["j"]])
    want = linear_pmml_expected(mixed["x"].to_numpy(), mixed["z"].to_numpy(), mixed["color"])
    assert_close(got, want, PMML_DOUBLE)


def test_spark_star_with_wrong_arity_says_use_struct(spark, models, mixed):
    """Spark's own `*` passes every column positionally; the error names struct(*)."""
    err = run_error("SELECT score('iris', *) FROM mixed", spark)
    assert isinstance(err, ArityError)
    assert "takes 4 input value(s)" in str(err)
    assert "score(model_id, struct(*))" in str(err)


def test_model_added_after_register_needs_refresh_or_sql(spark, models, mixed, iris_binary_onnx):
    models.add("binary", iris_binary_onnx[1], inputs=",".join(IRIS_FEATURES))
    query = "SELECT id, score('binary', struct(*)) AS s FROM mixed"
    err = run_error(query, spark)
    assert isinstance(err, UnknownModelError)
    assert "refresh" in str(err)
    got = sql(spark, query).toPandas().sort_values("id")["s"].to_numpy()  # sql() refreshes
    X = mixed[IRIS_FEATURES].to_numpy(np.float32)
    assert_close(got, iris_binary_onnx[0].predict_proba(X)[:, 1], FLOAT32)
    assert refresh(spark) is False  # nothing changed since sql() refreshed


def test_same_bytes_are_broadcast_once(spark, tmp_path, iris_logreg):
    store = SparkModelStore(spark, str(tmp_path / "dup"))
    store.add("a", iris_logreg[1], inputs=",".join(IRIS_FEATURES))
    store.add("b", iris_logreg[1], inputs=",".join(IRIS_FEATURES))
    registration = register(spark, store.table)
    assert sorted(registration.models) == ["a", "b"]
    assert len(registration.broadcasts) == 1
    assert registration.refresh() is False


def test_catalog_table_works_like_a_path(spark, iris_logreg, iris):
    store = SparkModelStore(spark, "byom_test_models")
    try:
        store.add("iris", iris_logreg[1], inputs=",".join(IRIS_FEATURES))
        register(spark, "byom_test_models")
        spark.createDataFrame(iris).createOrReplaceTempView("iris_t")
        got = sql(spark, "SELECT score('iris', *) AS s FROM iris_t").toPandas()["s"]
        X = iris[IRIS_FEATURES].to_numpy(np.float32)
        assert_close(np.sort(got), np.sort(iris_logreg[0].predict_proba(X).max(axis=1)), FLOAT32)
        assert [m["model_id"] for m in store.list()] == ["iris"]
    finally:
        spark.sql("DROP TABLE IF EXISTS byom_test_models")


def test_missing_model_table_is_a_clear_error(spark, tmp_path):
    with pytest.raises(ModelTableError, match="does not exist: create it with `byom models add"):
        register(spark, str(tmp_path / "nowhere"))


def test_table_without_model_columns_is_refused(spark, tmp_path):
    path = str(tmp_path / "not_models")
    spark.createDataFrame(pd.DataFrame({"a": [1]})).write.parquet(path)
    with pytest.raises(ModelTableError, match="needs columns model_id STRING"):
        register(spark, path)


# -- spark_jobs/score_table.py, run in-process on the test session --------------------------


def score_table():
    spec = importlib.util.spec_from_file_location(
        "score_table", ROOT / "spark_jobs" / "score_table.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_job(spark, argv):
    job = score_table()
    try:
        return job.run(job.parse_args(argv), spark)
    except job.JobError as exc:
        return f"JobError: {exc}"


def test_job_scores_with_a_model_column(spark, models, mixed, tmp_path, capsys, iris_logreg):
    path = str(tmp_path / "in")
    spark.table("mixed").write.parquet(path)
    out = str(tmp_path / "out")
    argv = ["--input", path, "--models", models.table, "--model-column", "model_id"]
    argv += ["--keep", "id,color", "--partition-by", "color", "--output", out]
    assert run_job(spark, argv) == 0
    printed = capsys.readouterr().out
    assert "rows in:  1,000" in printed and "rows out: 1,000" in printed
    got = pd.read_parquet(out).sort_values("id")
    assert got["id"].tolist() == list(range(1000))
    assert_close(got["score"], expected_scores(mixed, iris_logreg), FLOAT32)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--model-id", "iriss"], "unknown model id 'iriss'"),
        (["--model-id", "iris", "--keep", "idd"], "--keep column 'idd' is not in the input"),
        (["--model-id", "iris", "--input", "/nonexistent/x"], "cannot read input /nonexistent"),
        (["--model-id", "iris", "--models", "/nonexistent/m"], "model table /nonexistent/m"),
    ],
    ids=["unknown-model", "missing-keep", "unreadable-input", "missing-model-table"],
)
def test_job_refuses_bad_arguments(spark, models, mixed, tmp_path, change, message):
    path = str(tmp_path / "in")
    spark.table("mixed").write.parquet(path)
    argv = ["--input", path, "--models", models.table, "--output", str(tmp_path / "o")]
    argv += ["--keep", "id"]
    for flag, value in zip(change[::2], change[1::2], strict=True):
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    result = run_job(spark, argv)
    assert isinstance(result, str) and message in result


def test_job_refuses_input_missing_a_model_column(spark, models, mixed, tmp_path):
    path = str(tmp_path / "in")
    spark.table("mixed").drop("petal_width").write.parquet(path)
    argv = ["--input", path, "--models", models.table, "--model-id", "iris"]
    result = run_job(spark, [*argv, "--output", str(tmp_path / "o")])
    assert "needs input column(s) 'petal_width'" in result


def test_job_on_empty_input_writes_no_rows(spark, models, mixed, tmp_path, capsys):
    path = str(tmp_path / "in")
    spark.table("mixed").where("id < 0").write.parquet(path)
    argv = ["--input", path, "--models", models.table, "--model-id", "iris", "--keep", "id"]
    assert run_job(spark, [*argv, "--output", str(tmp_path / "o")]) == 0
    assert "rows out: 0" in capsys.readouterr().out


def test_job_reports_a_scoring_failure(spark, models, tmp_path, capsys):
    """An unseen category fails the job with byom's message, exit 1."""
    path = str(tmp_path / "in")
    frame = pd.DataFrame({"x": [1.0, 2.0], "z": [0.0, 0.0], "color": ["red", "green"]})
    spark.createDataFrame(frame).write.parquet(path)
    argv = ["--input", path, "--models", models.table, "--model-id", "linear"]
    assert run_job(spark, [*argv, "--output", str(tmp_path / "o")]) == 1
    assert "'green'" in capsys.readouterr().err
