"""Teradata BYOM's ModelInputFieldsMap syntax (issue 16): positions and ranges of the input's
columns (`x=[1:4]`, `x=1,2,3,4`, counted from 0 as Teradata's column indexes are), one
`input=cols` string per tensor, and byom's own forms. Every form feeds the same columns to
onnxruntime: in the core, in DuckDB (by-name rows: positions follow the row's field order) and
in the Teradata script (positions resolved against --columns), and each scores exactly what
onnxruntime scores on those columns.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from helpers import IRIS_FEATURES
from teradata_server import ScriptFailed, run_script
from test_teradata_hardening import launch, one_line_error

from byom.errors import InputError
from byom.inputs import parse_input_map

#: The ON query's columns: features at positions 1 to 4, as in BYOM's iris examples.
COLUMNS = ["id", *IRIS_FEATURES, "model_id"]

ONE_TENSOR = [
    "X=[1:4]",
    "X=1,2,3,4",
    "X=[1], [2], 3, 4",
    "X=[1:2],petal_length,[4]",
    "X=sepal_length, sepal_width, petal_length, petal_width",
    ["X=sepal_length, sepal_width, petal_length, petal_width"],
    "[1:4]",
    '{"X": [1, 2, 3, 4]}',
    '{"X": "[1:4]"}',
]
TWO_TENSORS = [
    "a=[1:2];b=[3:4]",
    "a=[1:2],b=3,4",
    ["a=sepal_length, sepal_width", "b=[3:4]"],
    "a=sepal_length,sepal_width;b=petal_length,petal_width",
    '{"a": [1, 2], "b": ["petal_length", "petal_width"]}',
]


# -- parsing --------------------------------------------------------------------------------------
def test_positions_and_ranges_resolve_against_the_columns():
    assert parse_input_map("x=[1:4]", COLUMNS) == {"x": IRIS_FEATURES}
    assert parse_input_map("x=4,1", COLUMNS) == {"x": ["petal_width", "sepal_length"]}
    assert parse_input_map("x=[3:]", COLUMNS) == {"x": ["petal_length", "petal_width", "model_id"]}
    assert parse_input_map("x=[:1]", COLUMNS) == {"x": ["id", "sepal_length"]}
    # without the columns, positions wait for the row: kept as [i], one per column
    assert parse_input_map("x=[1:3]") == {"x": ["[1]", "[2]", "[3]"]}
    assert parse_input_map(["a=c1, c2", "b=[0]"]) == {"a": ["c1", "c2"], "b": ["[0]"]}
    assert parse_input_map('x="a,b",c') == {"x": ["a,b", "c"]}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("x=[1:6]", "input map range [1:6] for input 'x' is past the last of the input's 6 "
         "columns (id, sepal_length, sepal_width, petal_length, petal_width, model_id)"),
        ("x=7", "input map position 7 for input 'x' is past the last of the input's 6 columns"),
        ("x=[4:1]", "input map range [4:1] for input 'x' runs backwards: write [1:4]"),
        ("a,b,x=c", "input map lists a, b before any input name"),
        ("x=a;x=b", "input map names input 'x' twice"),
    ],
)  # fmt: skip
def test_bad_maps_say_what_is_wrong(spec, message):
    with pytest.raises(InputError) as info:
        parse_input_map(spec, COLUMNS)
    assert message in str(info.value)


def test_open_range_needs_the_columns():
    with pytest.raises(InputError, match=r"range \[2:\] for input 'x' is open-ended"):
        parse_input_map("x=[2:]")


# -- models and references -----------------------------------------------------------------------
def two_input_onnx() -> bytes:
    """y = a @ [1, 10] + b @ [100, 1000]: every column weighs differently, so a swapped or
    shifted column changes the result."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["a", "wa"], ["ya"]),
            helper.make_node("MatMul", ["b", "wb"], ["yb"]),
            helper.make_node("Add", ["ya", "yb"], ["y"]),
        ],
        "two_inputs",
        [
            helper.make_tensor_value_info("a", TensorProto.DOUBLE, [None, 2]),
            helper.make_tensor_value_info("b", TensorProto.DOUBLE, [None, 2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.DOUBLE, [None, 1])],
        initializer=[
            helper.make_tensor("wa", TensorProto.DOUBLE, [2, 1], [1.0, 10.0]),
            helper.make_tensor("wb", TensorProto.DOUBLE, [2, 1], [100.0, 1000.0]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def ort(blob: bytes, feeds: dict[str, np.ndarray]) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(blob, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


@pytest.fixture(scope="module")
def rows(iris) -> pa.Table:
    sample = iris.sample(40, random_state=16).reset_index(drop=True)
    return pa.table(
        {
            "id": pa.array(range(40), pa.int64()),
            **{c: pa.array(sample[c].to_numpy(np.float64)) for c in IRIS_FEATURES},
            "model_id": pa.array(["m"] * 40),
        }
    )


def features(rows: pa.Table, names: list[str], dtype: type) -> np.ndarray:
    return np.column_stack([rows[c].to_numpy() for c in names]).astype(dtype)


@pytest.fixture(scope="module")
def iris_probabilities(iris_logreg, rows) -> np.ndarray:
    """onnxruntime on the iris model, fed the four feature columns directly."""
    out = ort(iris_logreg[1], {"X": features(rows, IRIS_FEATURES, np.float32)})
    return out[1]


@pytest.fixture(scope="module")
def two_input_values(rows) -> np.ndarray:
    feeds = {
        "a": features(rows, IRIS_FEATURES[:2], np.float64),
        "b": features(rows, IRIS_FEATURES[2:], np.float64),
    }
    return ort(two_input_onnx(), feeds)[0][:, 0]


def core_scores(blob: bytes, spec: object, rows: pa.Table) -> list:
    from byom.outputs import OutputKind
    from byom.scoring import InMemoryModels, score_batch

    models = InMemoryModels()
    models.add("m", blob, parse_input_map(spec))  # type: ignore[arg-type]
    row = pa.StructArray.from_arrays(
        [c.combine_chunks() for c in rows.columns], names=rows.column_names
    )
    return score_batch((OutputKind.PREDICT,), rows["model_id"], [row], models)[0].to_pylist()


def duckdb_scores(blob: bytes, spec: object, rows: pa.Table) -> list:
    import duckdb

    from udfs.duckdb import register, sql

    con = duckdb.connect()
    try:
        register(con).add("m", blob, inputs=spec)  # type: ignore[arg-type]
        con.register("input_rows", rows)
        con.execute("CREATE TABLE t AS SELECT * FROM input_rows")
        query = "SELECT predict(model_id, *) AS p FROM t ORDER BY id"
        return [r[0] for r in sql(con, query).fetchall()]
    finally:
        con.close()


def probabilities(results: list, classes: int = 3) -> np.ndarray:
    return np.array([[dict(r["probabilities"])[str(k)] for k in range(classes)] for r in results])


def script_args(spec: object) -> list[str]:
    specs = spec if isinstance(spec, list) else [spec]
    return [arg for s in specs for arg in ("--inputs", str(s))]


# -- scoring through every syntax -----------------------------------------------------------------
@pytest.mark.parametrize("spec", ONE_TENSOR, ids=str)
def test_one_tensor_core_and_duckdb_match_onnxruntime(iris_logreg, rows, iris_probabilities, spec):
    blob = iris_logreg[1]
    np.testing.assert_allclose(probabilities(core_scores(blob, spec, rows)), iris_probabilities)
    np.testing.assert_allclose(probabilities(duckdb_scores(blob, spec, rows)), iris_probabilities)


@pytest.mark.parametrize("spec", TWO_TENSORS, ids=str)
def test_two_tensors_core_and_duckdb_match_onnxruntime(rows, two_input_values, spec):
    blob = two_input_onnx()
    got = [r["score"] for r in core_scores(blob, spec, rows)]
    np.testing.assert_array_equal(got, two_input_values)
    got = [r["score"] for r in duckdb_scores(blob, spec, rows)]
    np.testing.assert_array_equal(got, two_input_values)


@pytest.mark.parametrize("spec", [*ONE_TENSOR[:3], ONE_TENSOR[5]], ids=str)
def test_teradata_script_resolves_positions_from_columns(
    iris_logreg, rows, iris_probabilities, tmp_path, spec
):
    path = tmp_path / "iris.onnx"
    path.write_bytes(iris_logreg[1])
    args = ["--model-id", "m", "--model-file", f"m={path}", "--accumulate", "id"]
    args += ["--outputs", "prob_0,prob_1,prob_2", *script_args(spec)]
    returns = [("id", "BIGINT"), ("p0", "FLOAT"), ("p1", "FLOAT"), ("p2", "FLOAT")]
    got = run_script(rows, args, returns, hash_by="id").sort_by("id")
    probs = np.column_stack([got[c].to_numpy() for c in ("p0", "p1", "p2")])
    np.testing.assert_allclose(probs, iris_probabilities, rtol=1e-6)


@pytest.mark.parametrize("spec", TWO_TENSORS[:3], ids=str)
def test_teradata_script_two_tensors_inline(rows, two_input_values, spec):
    args = ["--model-id", "m", "--accumulate", "id", "--outputs", "score", *script_args(spec)]
    got = run_script(
        rows,
        args,
        [("id", "BIGINT"), ("score", "FLOAT")],
        partition_by=["model_id"],
        model_data={"m": two_input_onnx()},
    ).sort_by("id")
    np.testing.assert_array_equal(got["score"].to_numpy(), two_input_values)


def test_teradata_range_past_the_columns_names_it(iris_logreg, tmp_path):
    path = tmp_path / "iris.onnx"
    path.write_bytes(iris_logreg[1])
    args = ["--columns", "id INTEGER, a FLOAT, b FLOAT, c FLOAT", "--model-id", "m"]
    args += ["--model-file", f"m={path}", "--inputs", "X=[1:4]"]
    err = one_line_error(launch(args, b"1\t1\t2\t3\n"))
    assert "--inputs: input map range [1:4] for input 'X' is past the last of the input's " in err
    assert "4 columns (id, a, b, c), which count from 0" in err


def test_duckdb_position_past_the_row_names_it(iris_logreg, rows):
    import duckdb

    with pytest.raises(duckdb.Error) as info:
        duckdb_scores(iris_logreg[1], "X=[3:6]", rows)
    assert "input map position [6] for input 'X' of model 'm' is past the row's 6 columns" in str(
        info.value
    )


def test_positions_past_a_row_fail_the_script_query(iris_logreg, rows, tmp_path):
    path = tmp_path / "iris.onnx"
    path.write_bytes(iris_logreg[1])
    args = ["--model-id", "m", "--model-file", f"m={path}", "--inputs", "X=[3:6]"]
    with pytest.raises(ScriptFailed) as info:
        run_script(rows, args, [("prediction", "VARCHAR(10)")], hash_by="id")
    assert "input map range [3:6] for input 'X' is past the last of the input's 6" in (
        info.value.stderr
    )
