"""Linear ONNX graphs (`byom.scorers.onnx_linear`): scored by numpy within 1e-5 of
onnxruntime, several models' rows in one pass exactly as each model alone; any other graph
stays on onnxruntime."""

from __future__ import annotations

import gc

import numpy as np
import onnxruntime as ort
import pytest
from helpers import EXACT, assert_close
from onnx import TensorProto, helper, numpy_helper

from byom.scorers.onnx import OnnxScorer

WIDTH = 6


def _graph(nodes, initializers, out_shape=(None, 1)):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, WIDTH])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def _weights(seed, shape=(WIDTH, 1)):
    rng = np.random.default_rng(seed)
    return (
        numpy_helper.from_array(rng.normal(size=shape).astype(np.float32), "W"),
        numpy_helper.from_array(rng.normal(size=(1,)).astype(np.float32), "B"),
    )


def matmul_add(seed, sigmoid=True):
    weights, bias = _weights(seed)
    nodes = [helper.make_node("MatMul", ["x", "W"], ["z"])]
    nodes.append(helper.make_node("Add", ["z", "B"], ["s" if sigmoid else "y"]))
    if sigmoid:
        nodes.append(helper.make_node("Sigmoid", ["s"], ["y"]))
    return _graph(nodes, [weights, bias])


def gemm(seed):
    weights, bias = _weights(seed, (1, WIDTH))
    node = helper.make_node("Gemm", ["x", "W", "B"], ["s"], transB=1)
    return _graph([node, helper.make_node("Sigmoid", ["s"], ["y"])], [weights, bias])


def _rows(n=2_000, seed=3):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, WIDTH)) * 2).astype(np.float32)
    x[rng.random(x.shape) < 0.03] = np.nan
    return x


def _onnxruntime(blob, x):
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, {"x": x})[0]).reshape(len(x), -1)[:, 0]


@pytest.mark.parametrize(
    "blob",
    [matmul_add(1), matmul_add(2, sigmoid=False), gemm(3)],
    ids=["matmul-add-sigmoid", "matmul-add", "gemm-sigmoid"],
)
def test_lowered_within_1e5_of_onnxruntime(blob):
    scorer = OnnxScorer(blob, "m")
    assert scorer.family() is not None, "the graph was not lowered"
    x = _rows()
    got = scorer.predict({"x": x}, len(x)).value
    want = _onnxruntime(blob, x).astype(np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = ~np.isnan(want)
    assert np.all(np.abs(got[ok] - want[ok]) <= 1e-5 * np.maximum(1.0, np.abs(want[ok])))


def test_family_pass_equals_each_model_alone():
    scorers = [OnnxScorer(matmul_add(seed), f"m{seed}") for seed in range(5)]
    assert len({s.family() for s in scorers}) == 1
    family = scorers[0].make_family()
    index = np.array([family.member(s) for s in scorers])
    x = _rows(1_000)
    owner = np.random.default_rng(7).choice([0, 2, 4, 1], size=len(x), p=[0.3, 0.3, 0.399, 0.001])
    together = family.predict(index[owner], {"x": x}).value
    alone = np.empty(len(x))
    for k, scorer in enumerate(scorers):
        rows = owner == k
        alone[rows] = scorer.predict({"x": x[rows]}, int(rows.sum())).value
    assert np.array_equal(together, alone, equal_nan=True)


def test_family_reuses_the_index_of_a_scorer_let_go():
    """A family is shared by the whole process: it holds its members weakly, and a new member
    takes a freed index with its own weights, never the old model's."""
    first, second = OnnxScorer(matmul_add(11), "a"), OnnxScorer(matmul_add(12), "b")
    family = first.make_family()
    assert family.member(first) == 0
    assert family.member(second) == 1
    del first
    gc.collect()
    third = OnnxScorer(matmul_add(13), "c")
    assert family.member(third) == 0
    x = _rows(64)
    members = np.array([0, 1] * 32)
    got = family.predict(members, {"x": x}).value
    assert np.array_equal(got[::2], third.predict({"x": x[::2]}, 32).value, equal_nan=True)
    assert np.array_equal(got[1::2], second.predict({"x": x[1::2]}, 32).value, equal_nan=True)


def test_other_graphs_stay_on_onnxruntime():
    weights, bias = _weights(4)
    relu = _graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["z"]),
            helper.make_node("Add", ["z", "B"], ["s"]),
            helper.make_node("Relu", ["s"], ["y"]),
        ],
        [weights, bias],
    )
    wide = _weights(5, (WIDTH, 2))[0]
    two_outputs = _graph([helper.make_node("MatMul", ["x", "W"], ["y"])], [wide], (None, 2))
    for blob in (relu, two_outputs):
        scorer = OnnxScorer(blob, "m")
        assert scorer.family() is None
        x = _rows(300)
        got = scorer.predict({"x": x}, len(x)).value
        assert_close(got, _onnxruntime(blob, x), EXACT)
