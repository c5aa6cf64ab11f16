"""The `byom` command: models add/list/show/rm and query, run as a user would."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import IRIS_FEATURES, LINEAR_PMML


def byom(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "byom.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"byom {' '.join(args)} failed: {result.stderr}")
    return result


@pytest.fixture
def db(tmp_path, iris, iris_logreg, iris_binary_onnx):
    path = str(tmp_path / "cli.duckdb")
    (tmp_path / "multi.onnx").write_bytes(iris_logreg[1])
    (tmp_path / "binary.onnx").write_bytes(iris_binary_onnx[1])
    (tmp_path / "lin.pmml").write_bytes(LINEAR_PMML)
    cols = ",".join(IRIS_FEATURES)
    byom(
        "models",
        "add",
        str(tmp_path / "multi.onnx"),
        "--id",
        "multi",
        "--db",
        path,
        "--inputs",
        cols,
    )
    byom(
        "models",
        "add",
        str(tmp_path / "binary.onnx"),
        "--id",
        "binary",
        "--db",
        path,
        "--inputs",
        cols,
        "--description",
        "versicolor vs rest",
    )
    import duckdb

    con = duckdb.connect(path)
    frame = iris[IRIS_FEATURES].copy()
    frame["id"] = np.arange(len(frame))
    frame["model_id"] = np.where(frame["id"] % 2 == 0, "multi", "binary")
    con.execute("CREATE TABLE t AS SELECT * FROM frame")
    con.close()
    return path


def test_card_query_verbatim_through_byom_query(db, iris, iris_logreg, iris_binary_onnx):
    result = byom(
        "query",
        "SELECT id, score(model_id, *) AS s FROM t ORDER BY id",
        "--db",
        db,
        "--format",
        "csv",
    )
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows[0] == ["id", "s"]
    assert len(rows) == 1 + len(iris)
    got = np.array([float(r[1]) for r in rows[1:]])
    X = iris[IRIS_FEATURES].to_numpy(np.float32)
    even = np.arange(len(X)) % 2 == 0
    expected = np.where(
        even,
        iris_logreg[0].predict_proba(X).max(axis=1),
        iris_binary_onnx[0].predict_proba(X)[:, 1],
    )
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_query_from_stdin_as_json(db):
    result = byom(
        "query",
        "-",
        "--db",
        db,
        "--format",
        "json",
        stdin="SELECT id, predict(model_id, *) AS p FROM t WHERE id < 2 ORDER BY id",
    )
    rows = json.loads(result.stdout)
    assert [r["id"] for r in rows] == [0, 1]
    assert set(rows[0]["p"]) == {"label", "score", "probabilities"}


def test_models_list_show_rm(db, tmp_path):
    listed = json.loads(byom("models", "list", "--db", db, "--format", "json").stdout)
    assert [r["model_id"] for r in listed] == ["binary", "multi"]
    assert listed[0]["description"] == "versicolor vs rest"
    assert "multi" in byom("models", "list", "--db", db).stdout
    shown = json.loads(byom("models", "show", "binary", "--db", db).stdout)
    assert shown["format"] == "onnx" and len(shown["sha256"]) == 64
    assert shown["input_schema"]["columns"] == IRIS_FEATURES
    assert shown["output_schema"]["task"] == "classification"
    byom("models", "rm", "binary", "--db", db)
    assert "binary" not in byom("models", "list", "--db", db, "--format", "csv").stdout


def test_errors_exit_nonzero_with_message(db, tmp_path):
    bad = byom("models", "show", "multy", "--db", db, check=False)
    assert bad.returncode == 1 and "did you mean 'multi'" in bad.stderr
    again = byom(
        "models", "add", str(tmp_path / "lin.pmml"), "--id", "multi", "--db", db, check=False
    )
    assert again.returncode == 1 and "--replace" in again.stderr
    fmt = byom("query", "SELECT 1", "--db", db, "--format", "xml", check=False)
    assert fmt.returncode == 1 and "unknown --format" in fmt.stderr
    sql_err = byom("query", "SELECT score('multi', 1, 2)", "--db", db, check=False)
    assert sql_err.returncode == 1 and "takes 4 input value(s)" in sql_err.stderr


def test_add_pmml_and_replace(db, tmp_path):
    byom("models", "add", str(tmp_path / "lin.pmml"), "--id", "multi", "--db", db, "--replace")
    out = byom(
        "query", "SELECT score('multi', 1.0, 2.0, 'red') AS s", "--db", db, "--format", "csv"
    )
    assert float(out.stdout.splitlines()[1]) == pytest.approx(1 + 2 - 1 + 3)


def test_models_add_writes_a_spark_model_table(tmp_path, iris_logreg):
    """`--spark-table` writes the same columns to a Parquet table Spark then scores from."""
    import hashlib

    import pyarrow.parquet as pq

    (tmp_path / "multi.onnx").write_bytes(iris_logreg[1])
    table = str(tmp_path / "spark_models")
    added = byom(
        "models", "add", str(tmp_path / "multi.onnx"), "--id", "multi", "--spark-table", table
    )
    assert "saved onnx model 'multi'" in added.stdout
    again = byom(
        "models",
        "add",
        str(tmp_path / "multi.onnx"),
        "--id",
        "multi",
        "--spark-table",
        table,
        check=False,
    )
    assert again.returncode == 1 and "already exists" in again.stderr
    rows = pq.read_table(table).to_pylist()
    assert [r["model_id"] for r in rows] == ["multi"]
    assert rows[0]["sha256"] == hashlib.sha256(iris_logreg[1]).hexdigest()
    assert rows[0]["model"] == iris_logreg[1]


def test_teradata_sql_prints_a_runnable_script_query(db, tmp_path, iris, iris_logreg):
    """The printed SCRIPT_COMMAND, run the way an AMP runs it, scores like the native model."""
    import shlex

    columns = "id INTEGER, " + ", ".join(f"{c} FLOAT" for c in IRIS_FEATURES)
    out = byom(
        "teradata", "sql", "--input", "customers", "--columns", columns, "--database", "mydb",
        "--model-id", "multi", "--accumulate", "id", "--delivery", "file", "--outputs", "score",
        "--db", db,
    ).stdout  # fmt: skip
    assert "returns('id INTEGER, score FLOAT')" in out
    command = out.split("SCRIPT_COMMAND('")[1].split("')")[0]
    argv = shlex.split(command)[2:]  # drop `tdpython3 ./mydb/byom_score.py`
    deployed = byom("teradata", "deploy", "--database", "mydb", "--out", str(tmp_path / "mydb"),
                    "--models", "multi", "--db", db).stdout  # fmt: skip
    assert "call SYSUIF.install_file('byom_core', 'byom_core.zip', 'cb!" in deployed
    rows = "".join(
        f"{i}\t" + "\t".join(repr(float(v)) for v in r) + "\n"
        for i, r in enumerate(iris[IRIS_FEATURES].to_numpy()[:20])
    )
    run = subprocess.run(
        [sys.executable, "mydb/byom_score.py", *argv], input=rows, text=True,
        capture_output=True, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    got = np.array([float(line.split("\t")[1]) for line in run.stdout.splitlines()])
    X = iris[IRIS_FEATURES].to_numpy(np.float32)[:20]
    np.testing.assert_allclose(got, iris_logreg[0].predict_proba(X).max(axis=1), atol=1e-6)
