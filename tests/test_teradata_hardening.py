"""byom_score.py against hostile or malformed input (issue 14): huge fields, blank lines,
memory on a large input, oversized or lying model bytes, models that read files.

Each test runs the script the way the server does: as a process (stdin, stdout, stderr, exit
status), through tests/teradata_server.py where the server's side matters, and in process
only where a block size or a limit has to be made small.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from helpers import (
    FLOAT32,
    IRIS_FEATURES,
    LINEAR_PMML,
    PMML_DOUBLE,
    assert_close,
    linear_pmml_expected,
)
from hostile_models import onnx_reading_file
from teradata_server import (
    ScriptFailed,
    run_script,
    script_process,
    server_command,
    teradata_float,
)
from test_teradata_script import duckdb_results

FEATURES = ",".join(IRIS_FEATURES)
PMML_COLUMNS = "_row BIGINT, x FLOAT, z FLOAT, color VARCHAR(5)"
SECRET = "payroll: alice 181000, bob 97000"


# -- helpers ------------------------------------------------------------------------------------
def launch(
    args: list[str], stdin: bytes, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return script_process(server_command(args), stdin, cwd, env)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The script failed the way the server needs: exit status 1, one line on stderr."""
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 1, (proc.returncode, err[-2000:])
    assert "Traceback" not in err, err[-2000:]
    assert err.endswith("\n") and err.count("\n") == 1, err[-2000:]
    assert err.startswith("byom_score.py: "), err
    return err


def pmml_args(path: Path, *extra: str) -> list[str]:
    return ["--columns", PMML_COLUMNS, "--model-id", "lin", "--model-file", f"lin={path}", *extra]


@pytest.fixture(scope="module")
def pmml_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "lin.pmml"
    path.write_bytes(LINEAR_PMML)
    return path


def read_output(out: bytes, names: list[str], quotechar: str | None = None) -> pa.Table:
    return pacsv.read_csv(
        pa.py_buffer(out),
        read_options=pacsv.ReadOptions(column_names=names),
        parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=quotechar or False),
        convert_options=pacsv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=True
        ),
    )


def pmml_rows(n: int, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    z = np.where(rng.random(n) < 0.3, np.nan, rng.normal(size=n))
    return pa.table(
        {
            "_row": pa.array(np.arange(n)),
            "x": pa.array(rng.normal(size=n) * 50),
            "z": pa.array(z, from_pandas=True),
            "color": pa.array(rng.choice(["red", "blue"], size=n)),
        }
    )


def affine_onnx() -> bytes:
    """y = 2x + 1 on a [batch, 1] input named x: a model of exactly one input column."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["x", "two"], ["t"]),
            helper.make_node("Add", ["t", "one"], ["y"]),
        ],
        "affine",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 1])],
        initializer=[
            helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0]),
            helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def ort_run(blob: bytes, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    return ort.InferenceSession(blob, providers=["CPUExecutionProvider"]).run(None, feeds)


# -- 1. huge fields and long lines --------------------------------------------------------------
@pytest.mark.parametrize("quotechar", [None, '"'])
def test_malformed_line_with_a_huge_field_names_its_line(pmml_file, quotechar):
    """Python's csv module stops at 128 KB fields with a traceback; the line must still be
    named, with the count of its fields, in one line on stderr."""
    huge = "r" * 200_000
    rows = [["1", "1.0", "2.0", "red"], ["2", "1.0", huge], ["3", "1", "1", "blue"]]
    if quotechar:
        rows = [[f'"{v}"' for v in row] for row in rows]
    text = "".join("\t".join(row) + "\n" for row in rows).encode()
    extra = ["--quotechar", quotechar] if quotechar else []
    proc = launch(pmml_args(pmml_file, "--outputs", "score", *extra), text)
    err = one_line_error(proc)
    assert "line 2: expected 4 fields (_row, x, z, color) but found 3" in err, err


def test_line_that_is_not_utf8_is_named(pmml_file):
    """A LATIN byte in a VARCHAR (CHARSET not UTF-8): the line and the byte are named."""
    text = b"1\t1.0\t2.0\tred\n2\t1\t1\tblue\n3\t1.0\t2.0\tr\xe9d\n4\t1\t1\tred\n"
    proc = launch(pmml_args(pmml_file, "--outputs", "score"), text)
    err = one_line_error(proc)
    assert "line 3: byte 12 is not UTF-8 text" in err, err


def test_huge_value_holding_the_delimiter_fails_the_query(pmml_file):
    """Through the server's side: a 300 KB VARCHAR holding a tab, sent without QUOTECHAR,
    is one field too many on its line; the query fails naming that line."""
    rows = pmml_rows(40)
    colors = rows["color"].to_pylist()
    colors[25] = "red" + "\t" + "x" * 300_000
    rows = rows.set_column(3, "color", pa.array(colors))
    with pytest.raises(ScriptFailed) as failed:
        run_script(
            rows,
            pmml_args(pmml_file, "--accumulate", "_row", "--outputs", "score"),
            [("_row", "BIGINT"), ("score", "FLOAT")],
            amps=1,
        )
    assert "Traceback" not in failed.value.stderr, failed.value.stderr[-2000:]
    assert "line 26: expected 4 fields (_row, x, z, color) but found 5" in failed.value.stderr


def padded_pmml(size: int) -> bytes:
    """LINEAR_PMML grown to `size` bytes by a comment after the root element: the same model."""
    pad = size - len(LINEAR_PMML) - len(b"<!---->\n")
    return LINEAR_PMML + b"<!--" + b"p" * pad + b"-->\n"


def test_row_longer_than_a_block_is_read_whole():
    """Inline delivery puts a model's base64 text (here 5.6 MB, over the script's 4 MB read
    block) on one line: it is gathered whole and scored like any other row."""
    rows = pmml_rows(300)
    rows = rows.append_column("model_id", pa.array(["lin"] * rows.num_rows))
    blob = padded_pmml(4_200_000)
    got = run_script(
        rows,
        ["--model-column", "model_id", "--accumulate", "_row", "--outputs", "score"],
        [("_row", "BIGINT"), ("score", "FLOAT")],
        amps=2,
        partition_by=["model_id"],
        order_by="_row",
        model_data={"lin": blob},
    ).sort_by("_row")
    want = linear_pmml_expected(
        rows["x"].to_numpy(), rows["z"].to_numpy(zero_copy_only=False), rows["color"]
    )
    assert got["_row"].to_pylist() == list(range(rows.num_rows))
    assert_close(got["score"].to_numpy(), want, PMML_DOUBLE)
    duck = duckdb_results({"lin": (blob, None)}, rows)
    assert got["score"].to_pylist() == duck["score"].to_pylist()


@pytest.mark.parametrize("block", [64, 1000])
def test_long_rows_straddling_small_blocks(monkeypatch, block):
    """With blocks far smaller than the rows, every row (a 6 KB model text among them) still
    reaches pyarrow whole and the line numbers stay right."""
    from udfs.teradata import script

    monkeypatch.setattr(script, "BLOCK_BYTES", block)
    text = base64.b64encode(padded_pmml(4500)).decode()
    lines = [f"{i}\tlin\t{i}.5\t\tred\t{text if i == 1 else ''}\n" for i in range(1, 60)]
    lines.append("60\tlin\t1\n")  # malformed: found after many straddling blocks
    args = ["--columns", "_row BIGINT, mid VARCHAR(9), x FLOAT, z FLOAT, color VARCHAR(5), m CLOB"]
    args += ["--model-column", "mid", "--model-data-column", "m", "--accumulate", "_row"]
    run = script.Script(script.parse_args([*args, "--outputs", "score"]))
    out = io.BytesIO()
    with pytest.raises(script.ScriptInputError, match=r"^line 60: expected 6 fields"):
        run.run(io.BytesIO("".join(lines).encode()), out)
    got = read_output(out.getvalue(), ["_row", "score"])
    assert got["_row"].to_pylist() == [str(i) for i in range(1, got.num_rows + 1)]
    assert got.num_rows >= 50
    n = got.num_rows
    want = linear_pmml_expected(np.arange(1, n + 1) + 0.5, np.full(n, np.nan), ["red"] * n)
    assert_close(got["score"].cast(pa.float64()).to_numpy(), want, PMML_DOUBLE)


@pytest.mark.parametrize("newline", [False, True])
def test_line_over_the_limit_is_refused_before_it_is_held(monkeypatch, pmml_file, newline):
    """A line can be at most a model's base64 text (BYOM_MAX_MODEL_BYTES) plus room for the
    other columns; a longer one, ended or not, is refused with its number, not gathered."""
    from byom import config
    from udfs.teradata import script

    monkeypatch.setattr(config, "MAX_MODEL_BYTES", 3000)
    monkeypatch.setattr(script, "LINE_SLACK_BYTES", 1000)
    monkeypatch.setattr(script, "BLOCK_BYTES", 512)
    assert script.max_line_bytes() == 5000
    good = "".join(f"{i}\t1\t1\tred\n" for i in range(1, 30)).encode()
    bad = b"30\t1\t1\t" + b"r" * 20_000 + (b"\n31\t1\t1\tred\n" if newline else b"")
    run = script.Script(script.parse_args(pmml_args(pmml_file, "--outputs", "score")))
    with pytest.raises(script.ScriptInputError, match=r"^line 30 runs over 5,000 bytes"):
        run.run(io.BytesIO(good + bad), io.BytesIO())


# -- 2. blank lines -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "line"),
    [
        (b"1\t1.0\t2.0\tred\n\n3\t1\t1\tblue\n", 2),
        (b"\n1\t1.0\t2.0\tred\n", 1),
        (b"1\t1.0\t2.0\tred\n2\t1\t1\tblue\n\n", 3),
        (b"1\t1.0\t2.0\tred\r\n\r\n3\t1\t1\tblue\r\n", 2),
    ],
)
def test_empty_line_is_malformed_with_several_columns(pmml_file, text, line):
    """Teradata writes a row of four NULLs as three tabs: an empty line is no row."""
    proc = launch(pmml_args(pmml_file, "--accumulate", "_row", "--outputs", "score"), text)
    err = one_line_error(proc)
    assert f"line {line} is empty, but a row of 4 columns has 3 delimiters" in err, err


def test_empty_line_found_in_a_later_block(monkeypatch, pmml_file):
    from udfs.teradata import script

    monkeypatch.setattr(script, "BLOCK_BYTES", 50)
    good = b"".join(b"%d\t%d.5\t1\tred\n" % (i, i) for i in range(1, 41))
    run = script.Script(script.parse_args(pmml_args(pmml_file, "--outputs", "score")))
    out = io.BytesIO()
    with pytest.raises(script.ScriptInputError, match=r"^line 41 is empty"):
        run.run(io.BytesIO(good + b"\n42\t1\t1\tred\n"), out)
    assert out.getvalue().count(b"\n") >= 30


def test_row_of_nulls_is_a_row(pmml_file):
    """n-1 delimiters: a row whose every value is NULL still scores (x NULL: no score)."""
    rows = pmml_rows(20)
    nulls = pa.table({c: pa.nulls(1, rows.schema.field(c).type) for c in rows.column_names})
    rows = pa.concat_tables([rows.slice(0, 10), nulls, rows.slice(10)])
    got = run_script(
        rows,
        pmml_args(pmml_file, "--accumulate", "_row,color", "--outputs", "score")[2:],
        [("_row", "BIGINT"), ("color", "VARCHAR(5)"), ("score", "FLOAT")],
        amps=1,
    )
    assert got.num_rows == rows.num_rows
    assert got.slice(10, 1).to_pylist() == [{"_row": None, "color": None, "score": None}]
    want = duckdb_results(
        {"lin": (LINEAR_PMML, None)},
        rows.append_column("model_id", pa.array(["lin"] * rows.num_rows)).set_column(
            0, "_row", pa.array(range(rows.num_rows))
        ),
    )
    assert got["score"].to_pylist() == want["score"].to_pylist()


@pytest.mark.parametrize("quotechar", [None, '"'])
def test_single_column_empty_line_is_a_null(tmp_path, quotechar):
    """With one column an empty line is that column's NULL: plain script and harness."""
    blob = affine_onnx()
    model = tmp_path / "affine.onnx"
    model.write_bytes(blob)
    values = [1.5, None, -3.25, None, None, 1e10]
    args = ["--columns", "x FLOAT", "--model-id", "a", "--model-file", f"a={model}"]
    args += ["--accumulate", "x", "--outputs", "score"]
    extra = ["--quotechar", quotechar] if quotechar else []
    q = quotechar or ""
    text = "".join(f"{q}{teradata_float(v)}{q}\n" if v is not None else "\n" for v in values)
    proc = launch([*args, *extra], text.encode())
    assert proc.returncode == 0, proc.stderr.decode()
    got = read_output(proc.stdout, ["x", "score"], quotechar)
    x = np.array([np.nan if v is None else v for v in values], np.float32).reshape(-1, 1)
    (want,) = ort_run(blob, {"x": x})
    assert got.num_rows == len(values)
    assert got["x"].to_pylist() == [None if v is None else teradata_float(v) for v in values]
    scores = [None if s is None else float(s) for s in got["score"].to_pylist()]
    assert scores == [None if np.isnan(w) else float(w) for w in want[:, 0]]

    harness = run_script(
        pa.table({"x": pa.array(values, pa.float64())}),
        [*args[2:], *extra],
        [("x", "FLOAT"), ("score", "FLOAT")],
        amps=2,
        quotechar=quotechar,
    )
    assert sorted(harness["score"].to_pylist(), key=str) == sorted(scores, key=str)
    assert harness["score"].null_count == 3


# -- 3. memory ----------------------------------------------------------------------------------
_PEAK = """
import resource, subprocess, sys
with open(sys.argv[1], "rb") as fin, open(sys.argv[2], "wb") as fout:
    code = subprocess.run(sys.argv[3:], stdin=fin, stdout=fout, stderr=subprocess.PIPE)
sys.stderr.buffer.write(code.stderr)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(code.returncode)
"""


def measured(
    args: list[str], stdin: Path, stdout: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess, float]:
    """One script process and its ru_maxrss in MB, measured by a fresh parent that has no
    other child."""
    wrapper = [sys.executable, "-c", _PEAK, str(stdin), str(stdout)]
    proc = script_process(server_command(args), b"", env=env, wrapper=wrapper)
    return proc, int(proc.stdout.split()[-1]) / 1024


def peak_rss_mb(args: list[str], stdin: Path, stdout: Path) -> float:
    proc, peak = measured(args, stdin, stdout)
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    return peak


def test_memory_on_a_40mb_input_stays_near_the_floor(iris, iris_logreg, tmp_path):
    """40 MB of Teradata text (FLOATs as `6.0999999046325684E 000`) scored with the default
    outputs costs at most 200 MB above the same script on one row (imports, onnxruntime and
    the model). With 32 MB blocks and their copies it took about 330 MB more."""
    X = iris[IRIS_FEATURES].to_numpy(np.float32)
    blob = iris_logreg[1]
    model = tmp_path / "iris.onnx"
    model.write_bytes(blob)
    texts = ["\t".join(teradata_float(float(v)) for v in row) for row in X]
    n = 420_000
    data = tmp_path / "amp.tsv"
    data.write_text("".join(f"{i}\t{texts[i % len(texts)]}\n" for i in range(n)))
    assert data.stat().st_size > 40e6
    one = tmp_path / "one.tsv"
    one.write_text(f"0\t{texts[0]}\n")
    columns = ",".join(["id:BIGINT", *(f"{c}:FLOAT" for c in IRIS_FEATURES)])
    args = ["--columns", columns, "--model-id", "m", "--model-file", f"m={model}"]
    args += ["--inputs", FEATURES, "--accumulate", "id"]
    floor = peak_rss_mb(args, one, tmp_path / "one.out")
    peak = peak_rss_mb(args, data, tmp_path / "amp.out")
    assert peak - floor < 200, (floor, peak)

    got = read_output((tmp_path / "amp.out").read_bytes(), ["id", "prediction", "json_report"])
    assert got.num_rows == n
    labels, probs = ort_run(blob, {"X": X})
    assert got["id"].to_pylist() == [str(i) for i in range(n)]
    assert got["prediction"].to_pylist() == [str(labels[i % len(X)]) for i in range(n)]
    sample = [json.loads(t) for t in got["json_report"].slice(0, len(X)).to_pylist()]
    got_probs = np.array([[s["probabilities"][str(c)] for c in range(3)] for s in sample])
    assert_close(got_probs, probs, FLOAT32)


# -- 4a. model sizes, checked before the bytes are read or decoded ------------------------------
INLINE = ["--columns", f"{PMML_COLUMNS}, m CLOB", "--model-id", "lin", "--model-data-column", "m"]


def inline_text(model_text: str, n: int = 3) -> bytes:
    lines = [f"{i}\t{i}.5\t1\tred\t{model_text if i == 1 else ''}\n" for i in range(1, n + 1)]
    return "".join(lines).encode()


def test_model_text_over_the_limit_is_refused_before_decoding():
    """BYOM_MAX_MODEL_BYTES bounds the base64 text itself: too long is refused whatever it
    holds (here not even base64), naming the model, before any decode."""
    limit = 1000
    env = {"BYOM_MAX_MODEL_BYTES": str(limit)}
    for text in (base64.b64encode(LINEAR_PMML).decode(), "!" * 5000):
        proc = launch([*INLINE, "--outputs", "score"], inline_text(text), env=env)
        err = one_line_error(proc)
        assert f"model 'lin': its base64 text is {len(text):,} characters" in err, err
        assert "BYOM_MAX_MODEL_BYTES" in err, err
        assert proc.stdout == b""


def test_model_text_at_the_limit_is_scored():
    """The bound is exact: a model of BYOM_MAX_MODEL_BYTES bytes, its text ceil(n/3)*4 long."""
    text = base64.b64encode(LINEAR_PMML).decode()
    assert len(text) == -(-len(LINEAR_PMML) // 3) * 4
    env = {"BYOM_MAX_MODEL_BYTES": str(len(LINEAR_PMML))}
    proc = launch(
        [*INLINE, "--accumulate", "_row", "--outputs", "score"], inline_text(text), env=env
    )
    assert proc.returncode == 0, proc.stderr.decode()
    got = read_output(proc.stdout, ["_row", "score"])
    want = linear_pmml_expected(np.array([1.5, 2.5, 3.5]), np.ones(3), ["red"] * 3)
    assert_close(got["score"].cast(pa.float64()).to_numpy(), want, PMML_DOUBLE)


def test_oversized_inline_model_fails_the_query():
    rows = pmml_rows(30).append_column("model_id", pa.array(["lin"] * 30))
    with pytest.raises(ScriptFailed) as failed:
        run_script(
            rows,
            ["--model-column", "model_id", "--outputs", "score"],
            [("score", "FLOAT")],
            amps=2,
            partition_by=["model_id"],
            order_by="_row",
            model_data={"lin": LINEAR_PMML},
            env={"BYOM_MAX_MODEL_BYTES": "500"},
        )
    assert "model 'lin': its base64 text is" in failed.value.stderr, failed.value.stderr


def test_model_file_size_is_checked_before_reading(tmp_path):
    """A 2 GiB (sparse) model file over the limit is refused from its size, never read:
    the instance stays small and names the model and the file."""
    path = tmp_path / "byom_0123456789abcdef"
    with path.open("wb") as fh:
        fh.truncate(2 << 30)
    out = tmp_path / "out"
    stdin = tmp_path / "in"
    stdin.write_bytes(b"1\t1\t1\tred\n")
    env = {"BYOM_MAX_MODEL_BYTES": str(64 << 20)}
    proc, peak = measured(pmml_args(path, "--outputs", "score"), stdin, out, env)
    err = proc.stderr.decode()
    assert proc.returncode == 1 and "Traceback" not in err, err[-2000:]
    assert f"model 'lin': its file '{path}' is 2,147,483,648 bytes, over the limit" in err, err
    assert peak < 600  # reading the file would take 2 GiB


def test_model_file_must_be_a_regular_file(monkeypatch):
    """A device (or a FIFO) has no size to check and may never end: refused."""
    from udfs.teradata import script

    with pytest.raises(script.ByomError, match=r"'/dev/zero' for 'm' is not a regular file"):
        script.read_model_file("/dev/zero", "m")


# -- 4b. bytes, not names or hashes, decide the model -------------------------------------------
def test_model_files_are_keyed_by_their_bytes_not_their_names(
    iris, iris_logreg, iris_binary_onnx, tmp_path
):
    """Two installed files with the same content-hash name (one of them lying): each id is
    scored with the bytes its file holds."""
    name = "byom_" + hashlib.sha256(iris_logreg[1]).hexdigest()[:16]
    honest, liar = tmp_path / "a" / name, tmp_path / "b" / name
    honest.parent.mkdir()
    liar.parent.mkdir()
    honest.write_bytes(iris_logreg[1])
    liar.write_bytes(iris_binary_onnx[1])
    rng = np.random.default_rng(2)
    base = iris.sample(60, random_state=1).reset_index(drop=True)
    rows = pa.table(
        {
            "_row": pa.array(range(60)),
            "model_id": pa.array(rng.choice(["a", "b"], size=60)),
            **{c: pa.array(base[c].to_numpy()) for c in IRIS_FEATURES},
        }
    )
    args = ["--model-column", "model_id", "--inputs", FEATURES, "--accumulate", "_row"]
    args += ["--model-file", f"a={honest}", "--model-file", f"b={liar}", "--outputs", "score"]
    got = run_script(rows, args, [("_row", "BIGINT"), ("score", "FLOAT")], amps=1).sort_by("_row")
    want = duckdb_results(
        {"a": (iris_logreg[1], FEATURES), "b": (iris_binary_onnx[1], FEATURES)}, rows
    )
    assert got["score"].to_pylist() == want["score"].to_pylist()
    assert set(rows["model_id"].to_pylist()) == {"a", "b"}


# -- 4c. a model must not read files beside the script ------------------------------------------
def external_data_onnx() -> bytes:
    """The ONNX model whose only tensor is "stored" in ./secret.txt (tests/hostile_models)."""
    return onnx_reading_file("secret.txt", len(SECRET))


def assert_no_secret(text: bytes) -> None:
    assert SECRET.encode() not in text
    numbers = [float(v) for v in text.split() if v.replace(b".", b"").isdigit()]
    spelled = bytes(int(v) for v in numbers if 0 <= v < 256 and v == int(v))
    assert SECRET.encode()[:8] not in spelled


@pytest.mark.parametrize("delivery", ["file", "inline"])
def test_external_data_model_is_refused(tmp_path, delivery):
    (tmp_path / "secret.txt").write_text(SECRET)
    blob = external_data_onnx()
    n = len(SECRET)
    if delivery == "file":
        (tmp_path / "leak.onnx").write_bytes(blob)
        args = ["--columns", "x FLOAT", "--model-id", "leak", "--model-file", "leak=leak.onnx"]
        text = "".join(f"{i}\n" for i in range(n))
    else:
        args = ["--columns", "x FLOAT, m CLOB", "--model-id", "leak", "--model-data-column", "m"]
        b64 = base64.b64encode(blob).decode()
        text = "".join(f"{i}\t{b64 if i == 0 else ''}\n" for i in range(n))
    proc = launch(
        [*args, "--accumulate", "x", "--outputs", "score,json_report"], text.encode(), cwd=tmp_path
    )
    assert_no_secret(proc.stdout)
    err = one_line_error(proc)
    assert "model 'leak'" in err and "external data" in err, err
    assert SECRET not in err


def test_external_data_model_fails_the_query(tmp_path):
    (tmp_path / "secret.txt").write_text(SECRET)
    rows = pa.table(
        {"_row": pa.array(range(len(SECRET))), "x": pa.array(range(len(SECRET)), pa.float64())}
    )
    rows = rows.append_column("model_id", pa.array(["leak"] * rows.num_rows))
    with pytest.raises(ScriptFailed) as failed:
        run_script(
            rows,
            ["--model-column", "model_id", "--accumulate", "_row", "--outputs", "score"],
            [("_row", "BIGINT"), ("score", "FLOAT")],
            amps=2,
            partition_by=["model_id"],
            order_by="_row",
            model_data={"leak": external_data_onnx()},
            cwd=tmp_path,
        )
    err = failed.value.stderr
    assert "model 'leak'" in err and "external data" in err, err
    assert "Traceback" not in err and SECRET not in err
