"""byom_score.py, the SCRIPT table operator's entry point, scores what DuckDB scores.

No Teradata server runs here. The script is run three ways: by teradataml's own local runner
(`Script.test_script(exec_mode='local')`), by tests/teradata_server.py (which plays the
server: AMPs, partitions, the text format both ways, failing the query on a bad instance),
and directly as a process, to check what it says about malformed text.

The behaviour every engine shares (NULL model id, empty input, replaced model, unknown model,
missing column and other bad values) is tested through the same harness in tests/conformance.
"""

from __future__ import annotations

import base64
import io
import itertools
import re
import shlex
import subprocess
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from helpers import IRIS_FEATURES, LINEAR_PMML, PMML_DOUBLE, assert_close, linear_pmml_expected
from teradata_server import (
    LAUNCHER,
    ScriptFailed,
    distribute,
    parse_output,
    run_script,
    script_process,
    server_command,
    teradata_float,
    with_model_data,
)

SCRIPT_DIR = LAUNCHER.parent
FEATURES = ",".join(IRIS_FEATURES)


# -- helpers ------------------------------------------------------------------------------------
def duckdb_results(models: dict[str, tuple[bytes, str | None]], table: pa.Table) -> pa.Table:
    """score, predict's label and predict_json per row, by DuckDB, in `_row` order."""
    import duckdb

    from udfs.duckdb import register, sql

    con = duckdb.connect()
    try:
        store = register(con)
        for model_id, (blob, inputs) in models.items():
            store.add(model_id, blob, inputs=inputs)
        con.register("input_rows", table)
        con.execute("CREATE TABLE t AS SELECT * FROM input_rows")
        query = (
            "SELECT _row, score, p.label AS label, json_report FROM (SELECT _row, "
            "score(model_id, *) AS score, predict(model_id, *) AS p, "
            "predict_json(model_id, *) AS json_report FROM t) ORDER BY _row"
        )
        return sql(con, query).to_arrow_table()
    finally:
        con.close()


def by_row(table: pa.Table) -> pa.Table:
    return table.sort_by("_row")


def assert_same(got: pa.Table, want: pa.Table, columns: list[str]) -> None:
    got, want = by_row(got), by_row(want)
    assert got["_row"].to_pylist() == want["_row"].to_pylist()
    for name in columns:
        assert got[name].to_pylist() == want[name].to_pylist(), name


def launch(args: list[str], stdin: bytes) -> subprocess.CompletedProcess:
    return script_process(server_command(args), stdin)


@pytest.fixture(scope="module")
def iris_rows(iris) -> pa.Table:
    """120 iris rows, two model ids (`multi`, `binary`), and the PMML model's x, z, color."""
    rng = np.random.default_rng(11)
    base = iris.sample(120, replace=True, random_state=5).reset_index(drop=True)
    n = len(base)
    z = np.where(rng.random(n) < 0.25, np.nan, rng.normal(size=n))
    return pa.table(
        {
            "_row": pa.array(range(n), pa.int64()),
            "model_id": pa.array(rng.choice(["multi", "binary"], size=n)),
            **{c: pa.array(base[c].to_numpy()) for c in IRIS_FEATURES},
            # large and small magnitudes: their text is `...E 002` and `...E-003`
            "x": pa.array(rng.normal(size=n) * np.where(np.arange(n) % 2, 100.0, 0.001)),
            "z": pa.array(z, from_pandas=True),
            "color": pa.array(rng.choice(["red", "blue"], size=n)),
        }
    )


@pytest.fixture(scope="module")
def onnx_models(iris_logreg, iris_binary_onnx) -> dict[str, tuple[bytes, str | None]]:
    return {"multi": (iris_logreg[1], FEATURES), "binary": (iris_binary_onnx[1], FEATURES)}


RETURNS = [
    ("_row", "BIGINT"),
    ("score", "FLOAT"),
    ("label", "VARCHAR(100)"),
    ("json_report", "VARCHAR(32000)"),
]
OUTPUTS = ["--outputs", "score,label,json_report"]


# -- a. teradataml's own local runner ----------------------------------------------------------
class Argv(str):
    """script_args for teradataml's Script.test_script: it must be a str, yet test_script does
    `cmd.extend(script_args)`, which adds a plain str character by character. A str that
    iterates as its shell words passes the check and extends the command correctly."""

    def __iter__(self):
        return iter(shlex.split(str(self)))


def test_teradataml_local_runner_matches_duckdb(iris_rows, iris_logreg, tmp_path):
    import teradataml
    from teradatasqlalchemy import FLOAT, INTEGER, VARCHAR

    rows = iris_rows.select(["_row", *IRIS_FEATURES])
    model = tmp_path / "multi.onnx"
    model.write_bytes(iris_logreg[1])
    data = tmp_path / "input.tsv"
    lines = ["\t".join(rows.column_names)]
    for row in rows.to_pylist():
        lines.append(
            "\t".join([str(row["_row"])] + [teradata_float(row[c]) for c in IRIS_FEATURES])
        )
    data.write_text("\n".join(lines) + "\n")
    columns = ", ".join(["_row BIGINT", *(f"{c} FLOAT" for c in IRIS_FEATURES)])
    sto = teradataml.Script(
        data=None,
        script_name="byom_score.py",
        files_local_path=str(SCRIPT_DIR),
        script_command="tdpython3 ./mydb/byom_score.py",  # the local runner ignores it
        delimiter="\t",
        returns=OrderedDict(
            [("_row", INTEGER()), ("score", FLOAT()), ("json_report", VARCHAR(32000))]
        ),
    )
    sto.check_reserved_keyword = False  # else it asks the (absent) connection
    args = ["--columns", columns, "--model-id", "m", "--model-file", f"m={model}"]
    args += ["--inputs", FEATURES, "--accumulate", "_row", "--outputs", "score,json_report"]
    got = sto.test_script(
        input_data_file=str(data),
        exec_mode="local",
        data_file_delimiter="\t",
        data_file_header=True,
        script_args=Argv(shlex.join(args)),
    )
    want = duckdb_results(
        {"m": (iris_logreg[1], FEATURES)},
        rows.append_column("model_id", pa.array(["m"] * rows.num_rows)),
    )
    assert got["_row"].tolist() == want["_row"].to_pylist()
    # The runner reads the text back with pandas (RETURNS types are not applied locally),
    # whose default float parser may land one ulp off the shortest round-trip text.
    np.testing.assert_array_max_ulp(got["score"].to_numpy(), want["score"].to_numpy(), 1)
    assert got["json_report"].tolist() == want["json_report"].to_pylist()


# -- b. the harness, against DuckDB ------------------------------------------------------------
def test_onnx_models_inline_on_first_row_of_each_partition(iris_rows, onnx_models):
    """Two models named per row, PARTITION BY model_id and a bucket, each model's base64 text
    on the first row of its partitions only."""
    rows = iris_rows.select(["_row", "model_id", *IRIS_FEATURES])
    rows = rows.append_column("bucket", pa.array([i % 3 for i in range(rows.num_rows)]))
    rows = rows.take(np.random.default_rng(5).permutation(rows.num_rows))  # ORDER BY sorts
    got = run_script(
        rows,
        ["--model-column", "model_id", "--inputs", FEATURES, "--accumulate", "_row", *OUTPUTS],
        RETURNS,
        amps=4,
        partition_by=["model_id", "bucket"],
        order_by="_row",
        model_data={mid: blob for mid, (blob, _) in onnx_models.items()},
    )
    want = duckdb_results(onnx_models, rows)
    assert_same(got, want, ["score", "label", "json_report"])
    assert set(want["label"].to_pylist()) >= {"0", "1"}


def test_partitions_arrive_whole_and_ordered_with_their_model_first(iris_rows):
    """What the harness feeds: per AMP, whole partitions one after another, each in ORDER BY
    order, the model's text on each partition's first row only; and with more AMPs than
    partitions, AMPs with no rows."""
    rows = iris_rows.select(["_row", "model_id"])
    rows = rows.take(np.random.default_rng(3).permutation(rows.num_rows))  # ORDER BY must sort
    per_amp, firsts = distribute(rows, 8, ["model_id"], None, "_row")
    assert sum(not amp_rows for amp_rows in per_amp) >= 6  # 2 partitions, 8 AMPs
    ids, order = rows["model_id"].to_pylist(), rows["_row"].to_pylist()
    for amp_rows in per_amp:
        runs = [mid for mid, _ in itertools.groupby(ids[i] for i in amp_rows)]
        assert len(runs) == len(set(runs))  # every partition in one piece
        keys = [(ids[i], order[i]) for i in amp_rows]
        assert keys == sorted(keys, key=lambda k: (runs.index(k[0]), k[1]))  # ORDER BY _row
    models = {"multi": b"M", "binary": b"B"}
    carried = with_model_data(rows, firsts, ["--model-column", "model_id"], models, "m")
    texts = carried["m"].to_pylist()
    assert sorted(i for i, t in enumerate(texts) if t is not None) == sorted(firsts)
    for i in firsts:
        assert base64.b64decode(texts[i]) == models[ids[i]]
        assert order[i] == min(o for o, m in zip(order, ids, strict=True) if m == ids[i])


def test_pmml_model_files_hash_by(iris_rows, pmml_file):
    """The hand-written PMML: categorical color, NULL z replaced by 0; HASH BY spreads the
    rows with no partition grouping, the model an installed file."""
    rows = iris_rows.select(["_row", "x", "z", "color"])
    rows = rows.append_column("model_id", pa.array(["lin"] * rows.num_rows))
    want = duckdb_results({"lin": (LINEAR_PMML, None)}, rows)
    expected = linear_pmml_expected(
        rows["x"].to_numpy(), rows["z"].to_numpy(zero_copy_only=False), rows["color"]
    )
    assert_close(want["score"].to_numpy(), expected, PMML_DOUBLE)
    got = run_script(
        rows.drop_columns(["model_id"]),
        pmml_args(pmml_file, "--accumulate", "_row", "--outputs", "score,json_report")[2:],
        [("_row", "BIGINT"), ("score", "FLOAT"), ("json_report", "VARCHAR(2000)")],
        amps=3,
        hash_by="_row",
    )
    assert_same(got, want, ["score", "json_report"])


QUOTED = ["--quotechar", '"', "--outputs", "score,label"]


def test_quotechar_keeps_empty_strings_apart_from_null(iris_rows):
    """With QUOTECHAR every value is quoted, "" is an empty string and an empty unquoted field
    is NULL; values may hold the quote character and the delimiter."""
    notes = ['say "hi"', "", None, "tab\there", '""', "x", '"']
    n = 24
    rows = iris_rows.select(["_row", "x", "z", "color"]).slice(0, n)
    rows = rows.append_column("note", pa.array([notes[i % len(notes)] for i in range(n)]))
    rows = rows.append_column("model_id", pa.array(["lin"] * n))
    got = run_script(
        rows,
        ["--model-column", "model_id", "--accumulate", "_row,note,color", *QUOTED],
        [
            ("_row", "BIGINT"),
            ("note", "VARCHAR(20)"),
            ("color", "VARCHAR(10)"),
            ("score", "FLOAT"),
            ("label", "VARCHAR(10)"),
        ],
        amps=8,  # more AMPs than the one partition: seven AMPs run with empty stdin
        partition_by=["model_id"],
        order_by="_row",
        model_data={"lin": LINEAR_PMML},
        quotechar='"',
    )
    got = by_row(got)
    assert got["note"].to_pylist() == rows["note"].to_pylist()
    assert got["color"].to_pylist() == rows["color"].to_pylist()
    assert got["label"].null_count == n  # a regression has no label: NULL, not ""
    want = duckdb_results({"lin": (LINEAR_PMML, None)}, rows)
    assert got["score"].to_pylist() == want["score"].to_pylist()


def test_teradata_float_text():
    assert teradata_float(100.0) == "1.0000000000000000E 002"
    assert teradata_float(-0.015625) == "-1.5625000000000000E-002"
    assert teradata_float(0.0) == "0.0000000000000000E 000"
    for value in (0.1, -1 / 3, 2.5e-8, 123456789.123, 1e300, 5e-324):
        text = teradata_float(value)
        assert re.fullmatch(r"-?\d\.\d{16}E[ -]\d{3}", text), text
        assert float(text.replace(" ", "")) == value  # 17 digits: exact


def test_harness_reads_output_as_the_server_would():
    from teradata_server import AmpRun

    returns = [("id", "INTEGER"), ("v", "FLOAT"), ("s", "VARCHAR(10)")]

    def parse(text: str, quotechar: str | None = None) -> list[dict]:
        run = AmpRun(0, 1, 0, text.encode(), "")
        return parse_output(run, returns, "\t", quotechar).to_pylist()

    assert parse("1\t1.5E 002\tab\n2\t\t\n") == [
        {"id": 1, "v": 150.0, "s": "ab"},
        {"id": 2, "v": None, "s": None},
    ]
    assert parse('"1"\t"2"\t""\n"2"\t\t"a""\tb"\n', '"') == [
        {"id": 1, "v": 2.0, "s": ""},
        {"id": 2, "v": None, "s": 'a"\tb'},
    ]
    for bad in ("1\t2\n", "1\tx\ty\n", "1.5\t2\ty\n", "1\tnan\ty\n"):
        with pytest.raises(ScriptFailed):
            parse(bad)


def test_per_row_model_ids_hash_by_with_model_files(iris_rows, onnx_models, tmp_path):
    """Two installed models, named per row, HASH BY; FLOAT sent as Python's repr this time."""
    rows = iris_rows.select(["_row", "model_id", *IRIS_FEATURES])
    args = ["--model-column", "model_id", "--inputs", FEATURES, "--accumulate", "_row"]
    for mid, (blob, _) in onnx_models.items():
        path = tmp_path / mid
        path.write_bytes(blob)
        args += ["--model-file", f"{mid}={path}"]
    got = run_script(
        rows, [*args, *OUTPUTS], RETURNS, amps=4, hash_by="_row", teradata_floats=False
    )
    assert_same(got, duckdb_results(onnx_models, rows), ["score", "label", "json_report"])


# -- c. bad input ------------------------------------------------------------------------------
PMML_COLUMNS = ["--columns", "_row BIGINT, x FLOAT, z FLOAT, color VARCHAR(5)"]


@pytest.fixture(scope="module")
def pmml_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "lin.pmml"
    path.write_bytes(LINEAR_PMML)
    return path


def pmml_args(path: Path, *extra: str) -> list[str]:
    return [*PMML_COLUMNS, "--model-id", "lin", "--model-file", f"lin={path}", *extra]


def test_malformed_line_names_its_number(pmml_file):
    text = b"1\t1.0\t2.0\tred\n2\t1.5\t\tblue\n3\t2.0\t1.0\n4\t1\t1\tred\n"
    proc = launch(pmml_args(pmml_file, "--outputs", "score"), text)
    assert proc.returncode != 0
    err = proc.stderr.decode()
    assert "line 3: expected 4 fields (_row, x, z, color) but found 3" in err, err


def test_malformed_line_fails_the_query(iris_rows, pmml_file):
    """A value holding the delimiter, sent without QUOTECHAR, splits into one field too many:
    the instance fails, and so does the query, with no partial result."""
    rows = iris_rows.select(["_row", "x", "z", "color"]).slice(0, 30)
    colors = rows["color"].to_pylist()
    colors[17] = "red\tish"
    rows = rows.set_column(3, "color", pa.array(colors))
    with pytest.raises(ScriptFailed) as failed:
        run_script(
            rows,
            pmml_args(pmml_file, "--accumulate", "_row", "--outputs", "score")[2:],
            [("_row", "BIGINT"), ("score", "FLOAT")],
            amps=1,
        )
    assert failed.value.returncode != 0
    assert failed.value.amp == 0
    # The single AMP gets the rows in table order: row 17 is line 18.
    assert "line 18: expected 4 fields" in failed.value.stderr


def test_line_numbers_count_across_blocks(monkeypatch, pmml_file):
    """stdin is parsed in blocks: a bad line in a later block still gets its own number, and
    the blocks before it were already written (only the exit status tells they are not all)."""
    from udfs.teradata import script

    monkeypatch.setattr(script, "BLOCK_BYTES", 64)
    good = b"".join(b"%d\t%d.5\t1\tred\n" % (i, i) for i in range(1, 40))
    run = script.Script(script.parse_args(pmml_args(pmml_file, "--outputs", "score")))
    out = io.BytesIO()
    with pytest.raises(script.ScriptInputError, match=r"^line 40: expected 4 fields"):
        run.run(io.BytesIO(good + b"40\t1\n41\t1\t1\tred\n"), out)
    assert out.getvalue().count(b"\n") >= 30


@pytest.mark.parametrize("bad", ["abc", "1_0"])  # 1_0: Python's float() takes it, Arrow not
def test_non_numeric_float_names_its_line(pmml_file, bad):
    text = b"1\t1.0\t2.0\tred\n2\t1 E002\t\tblue\n3\t%s\t1.0\tred\n" % bad.encode()
    proc = launch(pmml_args(pmml_file, "--outputs", "score"), text)
    assert proc.returncode != 0
    err = proc.stderr.decode()
    assert f"line 3: column x (FLOAT) holds {bad!r}, which is not a number" in err, err


def test_empty_stdin_exits_cleanly(pmml_file):
    proc = launch(pmml_args(pmml_file, "--outputs", "score,json_report"), b"")
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == b""
