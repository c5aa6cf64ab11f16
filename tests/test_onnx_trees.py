"""ONNX tree ensembles scored by byom's tree kernel (`byom.trees.onnx_trees`): the same labels
as onnxruntime and scores within 1e-6, in the core and through DuckDB; graphs with anything
else than the ensemble stay on onnxruntime.

The reference is a one-thread onnxruntime session: with more threads onnxruntime splits the
trees between threads and adds the partial float32 sums, so its own last bits (and a label at
an exact tie) depend on its thread count."""

from __future__ import annotations

import functools

import numpy as np
import pyarrow as pa
import pytest
from helpers import Tolerance, assert_close

from byom.scorers.onnx import OnnxScorer
from udfs.duckdb import sql

#: onnxruntime's float32 tensors against the kernel: labels identical, scores within 1e-6.
KERNEL = Tolerance("ONNX_TREES", 0.0, 1e-6)
WIDTH = 6


def _data(classes: int = 0, n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_classification, make_regression

    if classes:
        X, y = make_classification(
            n, WIDTH, n_informative=4, n_classes=classes, random_state=classes
        )
    else:
        X, y = make_regression(n, WIDTH, random_state=0)
        y = y / 10
    return X.astype(np.float32), y


def _skl(model: object, *, scaler: bool = False) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = _data(2 if hasattr(model, "predict_proba") else 0)
    if getattr(model, "_classes", None):
        X, y = _data(model._classes)  # type: ignore[attr-defined]
    fitted = make_pipeline(StandardScaler(), model) if scaler else model
    fitted.fit(X, y)  # type: ignore[attr-defined]
    options = {"zipmap": False} if hasattr(model, "predict_proba") else None
    onx = convert_sklearn(
        fitted,
        name="m",
        initial_types=[("input", FloatTensorType([None, WIDTH]))],
        options={id(model): options} if options and scaler else options,
        target_opset={"": 15, "ai.onnx.ml": 3},
    )
    return onx.SerializeToString()


def _lgb(classes: int) -> bytes:
    import lightgbm as lgb
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    X, y = _data(classes)
    if classes:
        model = lgb.LGBMClassifier(n_estimators=40, num_leaves=15, verbose=-1)
        kw = {"zipmap": False}
    else:
        model = lgb.LGBMRegressor(n_estimators=40, num_leaves=15, verbose=-1)
        y, kw = y * 30, {}
    X = np.where(np.random.default_rng(1).random(X.shape) < 0.05, np.nan, X)
    model.fit(X, y)
    onx = convert_lightgbm(
        model, name="m", initial_types=[("input", FloatTensorType([None, WIDTH]))],
        target_opset=15, **kw,
    )  # fmt: skip
    return onx.SerializeToString()


def _classes(k: int, model: object) -> object:
    model._classes = k  # type: ignore[attr-defined]
    return model


def _build(name: str) -> bytes:
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

    rf = {"n_estimators": 20, "max_depth": 6, "random_state": 0}
    gb = {"n_estimators": 30, "max_depth": 3, "random_state": 0}
    makers = {
        "rf_binary": lambda: _skl(RandomForestClassifier(**rf)),
        "rf_multiclass": lambda: _skl(_classes(3, RandomForestClassifier(**rf))),
        "rf_regressor": lambda: _skl(RandomForestRegressor(**rf)),
        # Trees over 64 leaves: walked as data by the kernel.
        "rf_regressor_deep": lambda: _skl(RandomForestRegressor(**{**rf, "max_depth": 12})),
        "gb_binary": lambda: _skl(GradientBoostingClassifier(**gb)),
        "gb_multiclass": lambda: _skl(_classes(3, GradientBoostingClassifier(**gb))),
        "gb_regressor": lambda: _skl(GradientBoostingRegressor(**gb)),
        "lgb_binary": lambda: _lgb(2),
        "lgb_multiclass": lambda: _lgb(3),
        "lgb_regressor": lambda: _lgb(0),
        "scaler_then_rf": lambda: _skl(RandomForestClassifier(**rf), scaler=True),
    }
    return makers[name]()


@functools.cache
def model(name: str) -> bytes:
    return _build(name)


LOWERED = [
    "rf_binary", "rf_multiclass", "rf_regressor", "rf_regressor_deep", "gb_binary",
    "gb_multiclass", "gb_regressor", "lgb_binary", "lgb_multiclass", "lgb_regressor",
]  # fmt: skip


def _rows(n: int = 3000) -> np.ndarray:
    """Values around the training data's, 5% NaN, and some exactly 0."""
    rng = np.random.default_rng(7)
    x = (rng.normal(size=(n, WIDTH)) * 2).astype(np.float32)
    x[rng.random(x.shape) < 0.05] = np.nan
    x[rng.random(x.shape) < 0.02] = 0.0
    return x


def _onnxruntime(blob: bytes, x: np.ndarray) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    session = ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"input": x}), strict=True))


def _check(pred: object, want: dict[str, np.ndarray], n: int) -> None:
    if "variable" in want:
        assert_close(pred.value, np.asarray(want["variable"]).reshape(n), KERNEL)  # type: ignore[attr-defined]
        return
    labels = np.asarray(want["label"]).reshape(n).astype(str)
    np.testing.assert_array_equal(np.asarray(pred.labels.to_pylist()), labels)  # type: ignore[attr-defined]
    assert_close(pred.probabilities, want["probabilities"], KERNEL)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", LOWERED)
def test_core_matches_onnxruntime(name):
    blob = model(name)
    scorer = OnnxScorer(blob, name)
    assert scorer.tree_kernel, f"{name} was not lowered to the tree kernel"
    x = _rows()
    pred = scorer.predict({"input": x}, len(x), full=True)
    _check(pred, _onnxruntime(blob, x), len(x))


@pytest.mark.parametrize("name", LOWERED)
def test_duckdb_matches_onnxruntime(con, store, name):
    blob = model(name)
    columns = [f"x{i}" for i in range(WIDTH)]
    store.add(name, blob, inputs=f"input={','.join(columns)}")
    x = _rows(1000)
    table = pa.table({c: pa.array(x[:, i].astype(np.float64)) for i, c in enumerate(columns)})
    table = table.append_column("_row", pa.array(np.arange(len(x))))
    con.register("rows_t", table)
    rows = sql(
        con, f"SELECT score('{name}', *) AS s, predict('{name}', *) AS p FROM rows_t ORDER BY _row"
    ).fetchall()
    want = _onnxruntime(blob, x)
    scores = np.array([r[0] for r in rows], dtype=np.float64)
    if "variable" in want:
        assert_close(scores, np.asarray(want["variable"]).reshape(-1), KERNEL)
        return
    proba = np.asarray(want["probabilities"], dtype=np.float64)
    expected = proba[:, 1] if proba.shape[1] == 2 else proba.max(axis=1)
    assert_close(scores, expected, KERNEL)
    labels = np.array([str(r[1]["label"]) for r in rows])
    np.testing.assert_array_equal(labels, np.asarray(want["label"]).reshape(-1).astype(str))


def test_graph_with_a_scaler_stays_on_onnxruntime():
    blob = model("scaler_then_rf")
    scorer = OnnxScorer(blob, "scaler_then_rf")
    assert not scorer.tree_kernel
    x = _rows(500)
    pred = scorer.predict({"input": x}, len(x), full=True)
    want = _onnxruntime(blob, x)
    np.testing.assert_array_equal(
        np.asarray(pred.labels.to_pylist()), np.asarray(want["label"]).astype(str)
    )
    assert_close(pred.probabilities, want["probabilities"], KERNEL)


def test_ensemble_over_the_kernel_bound_stays_on_onnxruntime(monkeypatch):
    """Where the kernel would not compile, onnxruntime scores it (not the slower numpy path)."""
    from byom.trees import kernel

    name = LOWERED[0]
    blob = model(name)
    monkeypatch.setattr(kernel, "MAX_KERNEL_NODES", 1)
    scorer = OnnxScorer(blob, name)
    assert not scorer.tree_kernel
    x = _rows(500)
    _check(scorer.predict({"input": x}, len(x), full=True), _onnxruntime(blob, x), len(x))


def test_lowered_ensemble_has_onnx_semantics():
    """The representation itself: float32 comparisons, NaN through the comparison."""
    import onnx

    from byom.trees.ensemble import NAN_COMPARES
    from byom.trees.onnx_trees import lower

    lowered = lower(onnx.load_model_from_string(model("rf_regressor")))
    assert lowered is not None
    ensemble, meta = lowered
    assert ensemble.float32 and ensemble.sum_float32
    assert ensemble.aggregate == "sum" and ensemble.post_transform == "none"
    splits = ensemble.feature >= 0
    assert np.all(ensemble.missing_kind[splits] == NAN_COMPARES)
    assert meta.outputs == {"variable": "scores"}


def _handmade(mode_a: str, mode_b: str, aggregate: str, *, complete: bool = True) -> bytes:
    """Two two-target trees using the rarer modes, missing values tracking true, base values;
    the first tree's leaves add to both targets unless not `complete`."""
    from onnx import TensorProto, helper

    node = helper.make_node(
        "TreeEnsembleRegressor", ["input"], ["variable"], domain="ai.onnx.ml",
        n_targets=2, aggregate_function=aggregate, base_values=[0.25, -1.5],
        nodes_treeids=[0, 0, 0, 0, 0, 1, 1, 1],
        nodes_nodeids=[0, 1, 2, 3, 4, 0, 1, 2],
        nodes_featureids=[0, 1, 0, 0, 0, 2, 0, 0],
        nodes_modes=[mode_a, mode_b, "LEAF", "LEAF", "LEAF", "BRANCH_EQ", "LEAF", "LEAF"],
        nodes_values=[0.1, -0.3, 0, 0, 0, 0.0, 0, 0],
        nodes_truenodeids=[1, 2, 0, 0, 0, 1, 0, 0],
        nodes_falsenodeids=[4, 3, 0, 0, 0, 2, 0, 0],
        nodes_missing_value_tracks_true=[1, 0, 0, 0, 0, 0, 0, 0],
        target_treeids=[0, 0, 0, 0, 0, 0, 1, 1][2 * (not complete):],
        target_nodeids=[2, 2, 3, 3, 4, 4, 1, 2][2 * (not complete):],
        target_ids=[0, 1, 0, 1, 0, 1, 0, 1][2 * (not complete):],
        target_weights=[1.5, 0.5, -2.0, 0.125, 0.7, 3.1, 10.0, -0.1][2 * (not complete):],
    )  # fmt: skip
    graph = helper.make_graph(
        [node], "m",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 2])],
    )  # fmt: skip
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 15), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    proto.ir_version = 8
    return proto.SerializeToString()


@pytest.mark.parametrize(
    ("mode_a", "mode_b", "aggregate"),
    [("BRANCH_LT", "BRANCH_GTE", "SUM"), ("BRANCH_GT", "BRANCH_NEQ", "AVERAGE")],
)
def test_handmade_modes_and_average(mode_a, mode_b, aggregate):
    import onnx

    from byom.trees.onnx_trees import lower

    blob = _handmade(mode_a, mode_b, aggregate)
    lowered = lower(onnx.load_model_from_string(blob))
    assert lowered is not None
    ensemble, meta = lowered
    rng = np.random.default_rng(3)
    x = rng.choice(np.array([-0.3, 0.1, 0.0, 5.0, -5.0, np.nan], np.float32), (400, 3))
    want = _onnxruntime(blob, x)["variable"]
    got = meta.run(ensemble, ["variable"], x)[0]
    assert_close(got, want, KERNEL)


def test_output_without_weight_on_some_rows_stays_on_onnxruntime():
    """onnxruntime writes 0 for an output no reached leaf adds to (not its base value)."""
    import onnx

    from byom.trees.onnx_trees import lower

    blob = _handmade("BRANCH_LT", "BRANCH_GTE", "SUM", complete=False)
    assert lower(onnx.load_model_from_string(blob)) is None
    assert not OnnxScorer(blob, "incomplete").tree_kernel


# --- opset 5's TreeEnsemble -------------------------------------------------------------------

#: Values on and beside the splits and members below: integers, halves, negatives, NaN, huge.
_EDGES = [0, 1, 1.5, 2, 2.5, 3, 3.7, -0.5, -1, -0.25, 0.25, 6, 6.9, 9, 78, 79, 1e10, np.nan]


def _v5_rows(n: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(11)
    return rng.choice(np.array(_EDGES, np.float32), (n, 3))


def _v5(
    dtype: type = np.float32,
    *,
    small: tuple[float, ...] = (1.0, 3.0),
    big: tuple[float, ...] = tuple(range(0, 80, 3)),
    aggregate: int = 1,
    post: int = 0,
    tail: tuple = (),
    tail_out: str = "",
) -> bytes:
    """Three trees, two targets: a small BRANCH_MEMBER set (onnxruntime tests x == v), a big one
    (it tests int(x)), LT/NEQ/GTE/GT splits, missing values tracking true on some nodes, and a
    tree that is one leaf. `tail` nodes follow the ensemble's output "variable"."""
    from onnx import TensorProto, helper, numpy_helper

    def t(values: list[float], dt: type = dtype) -> object:
        return numpy_helper.from_array(np.array(values, dt))

    members = [*small, np.nan, *big, np.nan]
    node = helper.make_node(
        "TreeEnsemble", ["input"], ["variable"], domain="ai.onnx.ml",
        n_targets=2, aggregate_function=aggregate, post_transform=post, tree_roots=[0, 4, 6],
        nodes_featureids=[0, 1, 2, 0, 1, 2, 0],
        nodes_splits=t([0, 0.25, 0, 2, -0.5, 1.5, 0]),
        nodes_modes=t([6, 1, 6, 5, 2, 3, 0], np.uint8),
        nodes_truenodeids=[1, 0, 2, 3, 5, 6, 8], nodes_trueleafs=[0, 1, 1, 1, 1, 1, 1],
        nodes_falsenodeids=[2, 1, 3, 4, 5, 7, 8], nodes_falseleafs=[0, 1, 0, 1, 0, 1, 1],
        nodes_missing_value_tracks_true=[1, 0, 0, 1, 1, 0, 0],
        membership_values=t(members),
        leaf_targetids=[0, 1, 0, 1, 0, 0, 1, 1, 1],
        leaf_weights=t([1.5, -2.25, 0.125, 3.0, -0.7, 0.3, 1.1, -4.0, 0.01]),
    )  # fmt: skip
    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    out_elem = elem
    for n in tail:
        if n.op_type == "Cast":
            out_elem = n.attribute[0].i
    graph = helper.make_graph(
        [node, *tail], "m",
        [helper.make_tensor_value_info("input", elem, [None, 3])],
        [helper.make_tensor_value_info(tail_out or "variable", out_elem, [None, 2])],
    )  # fmt: skip
    proto = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("ai.onnx.ml", 5)]
    )
    proto.ir_version = 10
    return proto.SerializeToString()


def _against_onnxruntime(blob: bytes, x: np.ndarray, *, lowered: bool) -> object:
    """Score `x` through the scorer and assert it equals onnxruntime on every output."""
    scorer = OnnxScorer(blob, "m")
    assert scorer.tree_kernel is lowered
    pred = scorer.predict({"input": x}, len(x), full=True)
    want = _onnxruntime(blob, x)
    assert len(want) == 1
    ((name, values),) = want.items()
    assert_close(pred.value, np.asarray(values, np.float64)[:, 0], KERNEL)  # type: ignore[attr-defined]
    # the second target too, through the lowering itself when it lowers
    if lowered:
        import onnx

        from byom.trees.onnx_trees import lower

        found = lower(onnx.load_model_from_string(blob))
        assert found is not None
        ensemble, meta = found
        (got,) = meta.run(ensemble, [name], x)
        assert got.dtype == values.dtype
        assert_close(np.asarray(got, np.float64), np.asarray(values, np.float64), KERNEL)
    return scorer


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("aggregate", [1, 0], ids=["SUM", "AVERAGE"])
def test_opset5_matches_onnxruntime(dtype, aggregate):
    import onnx

    from byom.trees.ensemble import EQ, IN, MISSING_NAN
    from byom.trees.onnx_trees import lower

    blob = _v5(dtype, aggregate=aggregate)
    x = _v5_rows().astype(dtype)
    _against_onnxruntime(blob, x, lowered=True)
    found = lower(onnx.load_model_from_string(blob))
    assert found is not None
    ensemble, meta = found
    ops = set(ensemble.op[ensemble.feature >= 0].tolist())
    assert {EQ, IN} <= ops  # both member encodings were exercised
    assert ensemble.float32 is (dtype == np.float32)
    assert (ensemble.missing_kind == MISSING_NAN).any()
    assert ensemble.n_trees == 3 and meta.dtype is dtype


def test_opset5_member_semantics_are_onnxruntimes():
    """A small set is x == v (1.5 is not in {1, 3}); a big one is int(x) (3.7 is in it)."""
    import onnx

    from byom.trees.onnx_trees import lower

    blob = _v5(small=(1.0, 3.0), big=(3.0, *range(40, 80)))
    found = lower(onnx.load_model_from_string(blob))
    assert found is not None
    ensemble, meta = found
    x = np.array([[1.5, 0, 0], [3.7, 0, 3.7], [1, 0, 3], [-0.5, 0, -0.5]], np.float32)
    got = meta.run(ensemble, ["variable"], x)[0]
    np.testing.assert_array_equal(got, _onnxruntime(blob, x)["variable"])


@pytest.mark.parametrize(
    "change",
    [
        {"aggregate": 2},  # MIN
        {"aggregate": 3},  # MAX
        {"post": 1},  # SOFTMAX by the spec, LOGISTIC in onnxruntime 1.32
        {"post": 2},
        {"post": 4},  # PROBIT
        {"big": (-3.0, *range(40, 80))},  # and against a negative
    ],
    ids=["min", "max", "post1", "post2", "probit", "big-negative"],
)
def test_opset5_that_stays_on_onnxruntime(change):
    blob = _v5(**change)
    _against_onnxruntime(blob, _v5_rows(), lowered=False)


def test_opset5_big_set_with_a_fraction_is_refused():
    """onnxruntime refuses to load it (it tests int(x)); the lowering does not take it either."""
    import onnx

    from byom.errors import InvalidModelError
    from byom.trees.onnx_trees import lower

    blob = _v5(big=(0.5, *range(40, 80)))
    assert lower(onnx.load_model_from_string(blob)) is None
    with pytest.raises(InvalidModelError, match="cannot be loaded by onnxruntime"):
        OnnxScorer(blob, "m")


def test_opset5_malformed_graphs_do_not_lower():
    """Lengths that disagree, links out of range or in a cycle, a negative feature: None, and
    never an exception."""
    import onnx
    from onnx import numpy_helper

    from byom.trees.onnx_trees import lower

    def edit(name: str, value: object) -> object:
        proto = onnx.load_model_from_string(_v5())
        node = proto.graph.node[0]
        attr = next(a for a in node.attribute if a.name == name)
        node.attribute.remove(attr)
        if isinstance(value, np.ndarray):
            node.attribute.append(onnx.helper.make_attribute(name, numpy_helper.from_array(value)))
        else:
            node.attribute.append(onnx.helper.make_attribute(name, value))
        return proto

    cases = [
        edit("nodes_featureids", [0, 1, 2]),
        edit("nodes_featureids", [0, 1, 2, 0, -1, 2, 0]),
        edit("nodes_truenodeids", [1, 0, 2, 3, 5, 6, 99]),
        edit("nodes_truenodeids", [0, 0, 2, 3, 5, 6, 8]),  # node 0's true child is itself
        edit("nodes_falsenodeids", [2, 1, 3, 4, 5, 7, -1]),
        edit("tree_roots", [0, 4, 60]),
        edit("leaf_targetids", [0, 1, 0, 1, 0, 0, 1, 1, 7]),
        edit("leaf_weights", np.ones(3, np.float32)),
        edit("nodes_splits", np.zeros(7, np.float64)),  # not the input's type
        edit("nodes_modes", np.array([6, 1, 6, 5, 2, 9, 0], np.uint8)),
        edit("membership_values", np.array([1, 2], np.float32)),  # one set for two nodes
        edit("membership_values", np.array([1, np.inf, np.nan, 3, np.nan], np.float32)),
        edit("n_targets", 0),
    ]
    for proto in cases:
        assert lower(proto) is None


# --- trailing nodes ---------------------------------------------------------------------------


def _tail(*specs: tuple[str, object, bool], dtype: type = np.float32) -> tuple[tuple, str]:
    """Nodes after "variable": each (op, constant or attributes, whether the constant is the
    first operand)."""
    from onnx import helper, numpy_helper

    nodes, prev = [], "variable"
    for k, (op, arg, first) in enumerate(specs):
        out = f"t{k}"
        if op == "Cast":
            dtype = np.float64 if arg == {"to": 11} else np.float32
        if op in ("Add", "Sub", "Mul", "Div"):
            c = numpy_helper.from_array(np.asarray(arg, dtype), f"c{k}")
            const = helper.make_node("Constant", [], [f"c{k}"], value=c)
            nodes.append(const)
            inputs = [f"c{k}", prev] if first else [prev, f"c{k}"]
            nodes.append(helper.make_node(op, inputs, [out]))
        else:
            nodes.append(helper.make_node(op, [prev], [out], **(arg or {})))  # type: ignore[arg-type]
        prev = out
    return tuple(nodes), prev


TAILS = {
    "add-scalar": [("Add", 0.75, False)],
    "scalar-sub": [("Sub", 2.5, True)],
    "mul-per-output": [("Mul", [[3.0, -0.5]], False)],
    "per-output-div": [("Div", [1.5, 7.0], True)],
    "div-then-sigmoid": [("Div", 3.0, False), ("Sigmoid", None, False)],
    "sub-softmax": [("Sub", [0.5, -1.25], False), ("Softmax", {"axis": -1}, False)],
    "softmax-axis1-mul": [("Softmax", {"axis": 1}, False), ("Mul", 0.5, False)],
    "flatten-identity-add": [
        ("Flatten", {"axis": 1}, False), ("Identity", None, False), ("Add", [1.0, 2.0], True)
    ],
    "cast-double-add": [("Cast", {"to": 11}, False), ("Add", 0.1, False)],
}  # fmt: skip


@pytest.mark.parametrize("name", list(TAILS))
def test_trailing_nodes_fold_into_the_kernel(name):
    nodes, out = _tail(*TAILS[name])
    blob = _v5(tail=nodes, tail_out=out)
    _against_onnxruntime(blob, _v5_rows(), lowered=True)


@pytest.mark.parametrize(
    "specs",
    [
        [("Sigmoid", None, False), ("Relu", None, False)],  # an op byom does not mirror
        [("Softmax", {"axis": 0}, False)],  # across rows
        [("Add", 1.0, False), ("Exp", None, False)],  # an op byom does not mirror
        [("Cast", {"to": 10}, False)],  # to float16
    ],
    ids=["sigmoid-relu", "softmax-axis0", "add-exp", "cast-float16"],
)
def test_trailing_nodes_byom_does_not_mirror_stay_on_onnxruntime(specs):
    import onnx

    from byom.trees.onnx_trees import lower

    nodes, out = _tail(*specs)
    blob = _v5(tail=nodes, tail_out=out)
    assert lower(onnx.load_model_from_string(blob)) is None
    scorer = OnnxScorer(blob, "m")
    assert not scorer.tree_kernel
    x = _v5_rows(500)
    pred = scorer.predict({"input": x}, len(x), full=True)
    want = np.asarray(_onnxruntime(blob, x)[out], np.float64).reshape(len(x), -1)
    assert_close(pred.value, want[:, 0], KERNEL)


def test_opset3_regressor_with_trailing_sigmoid_and_add():
    """The older node too: base values, then Sigmoid, then an offset in front."""
    import onnx

    base = onnx.load_model_from_string(_handmade("BRANCH_LT", "BRANCH_GTE", "SUM"))
    nodes, out = _tail(("Sigmoid", None, False), ("Add", [0.5, -0.5], True))
    base.graph.node.extend(nodes)
    base.graph.output[0].name = out
    blob = base.SerializeToString()
    x = np.random.default_rng(5).choice(
        np.array([-0.3, 0.1, 0.0, 5.0, np.nan], np.float32), (800, 3)
    )
    _against_onnxruntime(blob, x, lowered=True)


# --- real exporters with their ZipMap -------------------------------------------------------


def _zipmap_model(kind: str) -> tuple[bytes, int]:
    import lightgbm as lgb
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

    k = 3 if kind.endswith("3") else 2
    X, y = _data(k)
    if kind.startswith("lgb"):
        from onnxmltools import convert_lightgbm
        from onnxmltools.convert.common.data_types import FloatTensorType

        X = np.where(np.random.default_rng(1).random(X.shape) < 0.05, np.nan, X)
        model = lgb.LGBMClassifier(n_estimators=30, num_leaves=15, verbose=-1).fit(X, y)
        onx = convert_lightgbm(
            model, name="m", initial_types=[("input", FloatTensorType([None, WIDTH]))],
            target_opset=15,
        )  # fmt: skip
    else:
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType as SklFloat

        cls = RandomForestClassifier if kind.startswith("rf") else GradientBoostingClassifier
        model = cls(n_estimators=20, max_depth=4, random_state=0).fit(X, y)
        onx = convert_sklearn(
            model, name="m", initial_types=[("input", SklFloat([None, WIDTH]))],
            target_opset={"": 15, "ai.onnx.ml": 3},
        )  # fmt: skip
    assert any(n.op_type == "ZipMap" for n in onx.graph.node)
    return onx.SerializeToString(), k


@pytest.mark.parametrize("kind", ["rf2", "rf3", "gb2", "gb3", "lgb2", "lgb3"])
def test_exporters_zipmap_output_scored_by_the_kernel(kind):
    """The maps onnxruntime returns, read as byom's probability columns, equal the kernel's;
    `lower` on the unstripped graph gives the same matrix for ZipMap's output."""
    import onnx

    from byom.trees.onnx_trees import lower

    blob, k = _zipmap_model(kind)
    scorer = OnnxScorer(blob, kind)
    assert scorer.tree_kernel
    x = _rows(1500)
    pred = scorer.predict({"input": x}, len(x), full=True)
    want = _onnxruntime(blob, x)
    label_name, proba_name = (o.name for o in onnx.load_model_from_string(blob).graph.output)
    maps = want[proba_name]
    keys = list(maps[0])
    matrix = np.array([[row[c] for c in keys] for row in maps], np.float64)
    assert [str(c) for c in keys] == list(pred.classes) and len(keys) == k  # type: ignore[attr-defined]
    np.testing.assert_array_equal(
        np.asarray(pred.labels.to_pylist()),  # type: ignore[attr-defined]
        np.asarray(want[label_name]).astype(str),
    )
    assert_close(pred.probabilities, matrix, KERNEL)  # type: ignore[attr-defined]
    found = lower(onnx.load_model_from_string(blob))
    assert found is not None
    ensemble, meta = found
    got = meta.run(ensemble, [proba_name], x)[0]
    assert_close(np.asarray(got, np.float64), matrix, KERNEL)
