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
    "rf_binary", "rf_multiclass", "rf_regressor", "gb_binary", "gb_multiclass", "gb_regressor",
    "lgb_binary", "lgb_multiclass", "lgb_regressor",
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
