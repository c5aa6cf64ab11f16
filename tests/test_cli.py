"""The `byom` command: models add/list/show/rm and query, run as a user would."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import FLOAT32, IRIS_FEATURES, LINEAR_PMML, assert_close


def byom(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "byom_cli", *args],
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
    assert_close(got, expected, FLOAT32)


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
    refused = byom("models", "rm", "binary", "multy", "--db", db, check=False)
    assert refused.returncode == 1 and "did you mean 'multi'" in refused.stderr
    assert "binary" in byom("models", "list", "--db", db, "--format", "csv").stdout  # kept
    byom("models", "rm", "binary", "multi", "--db", db)
    assert byom("models", "list", "--db", db, "--format", "json").stdout.strip() == "[]"


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
    """The printed script (SET SESSION, then the query) and its SCRIPT_COMMAND, run through a
    shell from the folder an AMP runs it in, with the files `deploy` wrote, score like the
    native model."""
    from teradata_server import script_process

    columns = "id INTEGER, " + ", ".join(f"{c} FLOAT" for c in IRIS_FEATURES)
    out = byom(
        "teradata", "sql", "--input", "customers", "--columns", columns, "--database", "mydb",
        "--model-id", "multi", "--accumulate", "id", "--delivery", "file", "--outputs", "score",
        "--db", db,
    ).stdout  # fmt: skip
    assert out.startswith("SET SESSION SEARCHUIFDBPATH = mydb;\nSELECT * FROM Script(")
    assert "returns('id INTEGER, score FLOAT')" in out
    literal = out.split("SCRIPT_COMMAND('")[1].split("')\n")[0]
    command = literal.replace("''", "'")  # the SQL literal's text
    deployed = byom("teradata", "deploy", "--database", "mydb", "--out", str(tmp_path / "mydb"),
                    "--models", "multi", "--db", db).stdout  # fmt: skip
    assert "call SYSUIF.install_file('byom_core', 'byom_core.zip', 'cb!" in deployed
    rows = "".join(
        f"{i}\t" + "\t".join(repr(float(v)) for v in r) + "\n"
        for i, r in enumerate(iris[IRIS_FEATURES].to_numpy()[:20])
    )
    run = script_process(command, rows.encode(), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    got = np.array([float(line.split("\t")[1]) for line in run.stdout.decode().splitlines()])
    X = iris[IRIS_FEATURES].to_numpy(np.float32)[:20]
    assert_close(got, iris_logreg[0].predict_proba(X).max(axis=1), FLOAT32)
    no_set = byom(
        "teradata", "sql", "--input", "customers", "--columns", columns, "--database", "mydb",
        "--model-id", "multi", "--no-set-session", "--db", db,
    ).stdout  # fmt: skip
    assert no_set.startswith("SELECT * FROM Script(")


# -- issue 14 ---------------------------------------------------------------------------------

MEASURE_RSS = """
import resource, subprocess, sys
run = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) + "\\n")
sys.stdout.write(str(run.returncode) + "\\n" + run.stderr)
"""


@pytest.mark.parametrize("target", ["--db", "--spark-table"])
def test_models_add_refuses_an_oversized_file_without_reading_it(tmp_path, target):
    """A 600 MB file over a 1 MB limit is refused by its size: the command stays small."""
    import os

    big = tmp_path / "huge.onnx"
    with big.open("wb") as handle:
        handle.truncate(600 * 1024**2)  # sparse: costs no disk
    where = str(tmp_path / ("models.duckdb" if target == "--db" else "spark_models"))
    # A fresh parent process, so that RUSAGE_CHILDREN sees only this command.
    measured = subprocess.run(
        [sys.executable, "-c", MEASURE_RSS, sys.executable, "-m", "byom_cli",
         "models", "add", str(big), "--id", "huge", target, where],
        capture_output=True, text=True, check=True,
        env={**os.environ, "BYOM_MAX_MODEL_BYTES": str(1024**2)},
    )  # fmt: skip
    peak_kib, code, stderr = measured.stdout.split("\n", 2)
    assert code == "1", stderr
    assert int(peak_kib) < 300 * 1024, f"peak RSS {int(peak_kib) // 1024} MiB"
    assert "huge.onnx" in stderr and "629,145,600 bytes, over the limit of 1,048,576" in stderr
    assert "BYOM_MAX_MODEL_BYTES" in stderr
    assert not os.path.exists(where)  # refused before the model table was touched


@pytest.mark.parametrize("fmt", ["csv", "json", "table"])
def test_query_keeps_every_column_when_names_repeat(tmp_path, fmt):
    """`SELECT a.id, b.id` style results keep each value under its own header, in order."""
    import duckdb

    from udfs.duckdb import register

    path = str(tmp_path / "q.duckdb")
    con = duckdb.connect(path)
    register(con)  # an empty model table: byom query needs one
    con.close()
    text = byom("query", "SELECT 1 AS id, 2 AS id, 'x' AS v", "--db", path, "--format", fmt).stdout
    if fmt == "csv":
        assert list(csv.reader(io.StringIO(text))) == [["id", "id", "v"], ["1", "2", "x"]]
    elif fmt == "json":
        assert json.loads(text) == [{"id": 1, "id_1": 2, "v": "x"}]
        assert list(json.loads(text)[0]) == ["id", "id_1", "v"]
    else:
        lines = [line for line in text.splitlines() if "│" in line or "┃" in line]
        header, row = (line.replace("┃", "│").split("│")[1:-1] for line in lines)
        assert [h.strip() for h in header] == ["id", "id", "v"]
        assert [c.strip() for c in row] == ["1", "2", "x"]


def test_json_names_avoid_existing_columns():
    from byom_cli.commands import _unique_names

    assert _unique_names(["id", "id", "id_1", "id"]) == ["id", "id_1", "id_1_1", "id_2"]


def _tables(path: str) -> list[str]:
    import duckdb

    con = duckdb.connect(path, read_only=True)
    try:
        return sorted(
            r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        )
    finally:
        con.close()


def test_read_only_commands_never_create_a_table(db):
    """`--table typo` is an error naming the table, not a new empty model table."""
    before = _tables(db)
    for args in (
        ("models", "list"),
        ("models", "show", "multi"),
        ("models", "rm", "multi"),
        ("query", "SELECT 1"),
        ("teradata", "sql", "--input", "t", "--columns", "id INTEGER", "--database", "d",
         "--model-id", "multi"),
        ("teradata", "deploy", "--database", "d", "--models", "multi"),
    ):  # fmt: skip
        run = byom(*args, "--db", db, "--table", "byom_modles", check=False)
        assert run.returncode == 1, (args, run.stdout)
        message = " ".join(run.stderr.split())
        assert "byom_modles" in message, (args, message)
        assert "did you mean 'byom_models'" in message, (args, message)
        assert "byom models add" in message, (args, message)
    assert _tables(db) == before


def test_read_only_commands_never_create_a_database_file(tmp_path):
    """A mistyped --db is an error naming the file; only `models add` creates one."""
    missing = tmp_path / "typo.duckdb"
    for args in (
        ("models", "list"),
        ("models", "show", "m"),
        ("models", "rm", "m"),
        ("query", "SELECT 1"),
        ("teradata", "deploy", "--database", "d", "--models", "m"),
    ):
        run = byom(*args, "--db", str(missing), check=False)
        assert run.returncode == 1, (args, run.stdout)
        message = " ".join(run.stderr.split())
        assert "typo.duckdb" in message and "does not exist" in message, (args, message)
        assert "byom models add" in message, (args, message)
        assert not missing.exists(), args
    (tmp_path / "lin.pmml").write_bytes(LINEAR_PMML)
    byom("models", "add", str(tmp_path / "lin.pmml"), "--id", "lin", "--db", str(missing))
    assert _tables(str(missing)) == ["byom_models"]


def test_teradata_sql_refuses_a_repeated_input_column(db):
    """Teradata names are case-insensitive: `id, ID` would hand the script the wrong value."""
    columns = "id INTEGER, " + ", ".join(f"{c} FLOAT" for c in IRIS_FEATURES) + ", ID INTEGER"
    run = byom("teradata", "sql", "--input", "t", "--columns", columns, "--database", "d",
               "--model-id", "multi", "--db", db, check=False)  # fmt: skip
    assert run.returncode == 1
    assert run.stderr.strip() == (
        "error: --columns names column 'ID' twice ('id' before): give each column of the input "
        "its own name, e.g. `b.id AS b_id`"
    )  # one line, whatever the terminal's width
    unique = columns.rsplit(",", 1)[0] + ", model_id VARCHAR(20)"
    ok = byom("teradata", "sql", "--input", "t", "--columns", unique, "--database", "d",
              "--model-column", "model_id", "--models", "multi,multi", "--delivery", "file",
              "--db", db)  # fmt: skip
    assert ok.stdout.count("multi") == 1  # a repeated id is the same model, installed once
