"""XGBoost JSON and UBJSON models, read by byom itself: bit for bit xgboost's float32
predictions (`Booster.predict` and `output_margin=True`) for every supported objective,
categorical splits, NaN inputs, through the core and DuckDB; hostile files refused by name."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from helpers import EXACT, assert_close

from byom.errors import InvalidModelError
from byom.formats import detect_format
from byom.trees import expf as xexpf
from byom.trees.ubjson import UbjsonError, loads
from byom.trees.xgboost import load_scorer

xgb = pytest.importorskip("xgboost")

N = 1500
N_FEATURES = 5


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(N, N_FEATURES)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    y = rng.normal(size=N) + np.nan_to_num(X[:, 0]) * 3
    return X, y


def _train(X, y, objective, rounds=20, depth=4, **params):
    dtrain = xgb.DMatrix(X, y)
    return xgb.train(
        {"objective": objective, "max_depth": depth, "eta": 0.2, **params}, dtrain, rounds
    )


def _blob(booster, ext, tmp_path):
    path = tmp_path / f"m.{ext}"
    booster.save_model(path)
    return path.read_bytes()


def _features(X):
    return {f"f{i}": X[:, i].astype(np.float64) for i in range(X.shape[1])}


CASES = {
    "binary:logistic": (lambda y: (y > 0.5) * 1.0, {}),
    "multi:softprob": (lambda y: np.digitize(y, [-1, 0, 1]), {"num_class": 4}),
    "multi:softmax": (lambda y: np.digitize(y, [-1, 0, 1]), {"num_class": 4}),
    "reg:squarederror": (lambda y: y, {}),
    "count:poisson": (lambda y: np.exp(y / 3), {}),
    "reg:gamma": (lambda y: np.exp(y / 3), {}),
    "reg:tweedie": (lambda y: np.exp(y / 3), {}),
    "reg:logistic": (lambda y: (y > 0.5) * 1.0, {}),
    "reg:absoluteerror": (lambda y: y, {}),
    "binary:logitraw": (lambda y: (y > 0.5) * 1.0, {}),
    "dart": (lambda y: y, {"booster": "dart", "rate_drop": 0.3}),
    "forest": (lambda y: y, {"num_parallel_tree": 3}),
}


@pytest.mark.parametrize("ext", ["json", "ubj"])
@pytest.mark.parametrize("name", list(CASES))
def test_bit_identical_to_xgboost(name, ext, data, tmp_path):
    X, y = data
    target, params = CASES[name]
    objective = name if ":" in name else "reg:squarederror"
    booster = _train(X, target(y), objective, **params)
    scorer = load_scorer(_blob(booster, ext, tmp_path), "m")
    margin = booster.predict(xgb.DMatrix(X), output_margin=True).reshape(N, -1)
    want = booster.predict(xgb.DMatrix(X))
    assert_close(scorer.margins(_features(X)), margin, EXACT)
    pred = scorer.predict(_features(X), N)
    if name == "multi:softmax":
        got = np.array(pred.labels.to_pylist(), dtype=np.float64)
    elif pred.probabilities is not None:
        got = pred.probabilities if want.ndim == 2 else pred.probabilities[:, 1]
    else:
        got = pred.value
    assert_close(got, want, EXACT)


@pytest.mark.parametrize("rounds,depth", [(1, 1), (60, 8)])
def test_sizes(rounds, depth, data, tmp_path):
    X, y = data
    booster = _train(X, (y > 0.5) * 1.0, "binary:logistic", rounds=rounds, depth=depth)
    scorer = load_scorer(_blob(booster, "ubj", tmp_path), "m")
    got = scorer.predict(_features(X), N).probabilities[:, 1]
    assert_close(got, booster.predict(xgb.DMatrix(X)), EXACT)


@pytest.fixture(scope="module")
def categorical():
    rng = np.random.default_rng(0)
    cats = [f"k{i}" for i in range(40)]  # more than one 32-bit word of categories
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=N).astype(np.float32),
            "c": pd.Categorical(rng.choice(cats, N), categories=cats),
            "d": pd.Categorical(rng.choice([3, 5, 9, 11], N)),
        }
    )
    frame.loc[rng.random(N) < 0.1, "c"] = np.nan
    y = (frame.a > 0) + (frame.c.cat.codes % 3 == 0) * 1.5 + (frame.d == 5)
    params = {
        "objective": "reg:squarederror",
        "max_depth": 5,
        "tree_method": "hist",
        "max_cat_to_onehot": 1,
    }
    booster = xgb.train(params, xgb.DMatrix(frame, y, enable_categorical=True), 20)
    return booster, frame


def _text(column: pd.Series) -> np.ndarray:
    return column.astype(object).where(column.notna(), None).to_numpy()


@pytest.mark.parametrize("ext", ["json", "ubj"])
def test_categorical_splits_by_recorded_categories(ext, categorical, tmp_path):
    booster, frame = categorical
    scorer = load_scorer(_blob(booster, ext, tmp_path), "cat")
    assert [(i.name, i.type) for i in scorer.inputs] == [
        ("a", "float64"),
        ("c", "string"),
        ("d", "string"),
    ]
    features = {
        "a": frame.a.to_numpy(np.float64),
        "c": _text(frame.c),
        "d": _text(frame.d.astype(str)),
    }
    want = booster.predict(xgb.DMatrix(frame, enable_categorical=True))
    assert_close(scorer.predict(features, N).value, want, EXACT)


def test_categorical_codes_without_recorded_categories(categorical, tmp_path):
    """A model whose document lacks the categories (xgboost < 3.1) takes the codes."""
    booster, frame = categorical
    doc = json.loads(_blob(booster, "json", tmp_path))
    doc["learner"]["gradient_booster"]["model"].pop("cats")
    scorer = load_scorer(json.dumps(doc).encode(), "codes")
    assert all(i.type == "float64" for i in scorer.inputs)
    codes = {
        "a": frame.a.to_numpy(np.float64),
        "c": frame.c.cat.codes.replace(-1, np.nan).to_numpy(np.float64),
        "d": frame.d.cat.codes.to_numpy(np.float64),
    }
    want = booster.predict(xgb.DMatrix(frame, enable_categorical=True))
    assert_close(scorer.predict(codes, N).value, want, EXACT)


def test_duckdb_scores_by_column_name(con, store, categorical, tmp_path):
    booster, frame = categorical
    store.add("xgb", _blob(booster, "ubj", tmp_path))
    table = pa.table(
        {
            "a": frame.a.to_numpy(np.float64),
            "c": pa.array(_text(frame.c)),
            "d": frame.d.astype(int).to_numpy(),
        }
    )
    con.register("src", table)
    con.execute("CREATE TABLE t AS SELECT * FROM src")
    got = con.sql("SELECT score('xgb', t) AS s FROM t").fetchnumpy()["s"]
    assert_close(got, booster.predict(xgb.DMatrix(frame, enable_categorical=True)), EXACT)


def test_sniffed_from_the_bytes_and_described(data, tmp_path):
    X, y = data
    booster = _train(X, np.digitize(y, [0]), "multi:softprob", num_class=2)
    for ext in ("json", "ubj"):
        blob = _blob(booster, ext, tmp_path)
        assert detect_format(blob).name == "xgboost"
        described = load_scorer(blob, "m").describe()
        assert described["task"] == "classification" and described["classes"] == ["0", "1"]
        assert [i["name"] for i in described["inputs"]] == [f"f{i}" for i in range(N_FEATURES)]


def test_expf_is_glibc_expf():
    import ctypes

    libm = ctypes.CDLL("libm.so.6")
    libm.expf.restype, libm.expf.argtypes = ctypes.c_float, [ctypes.c_float]
    x = np.random.default_rng(2).uniform(-105, 90, 20_000).astype(np.float32)
    x = np.concatenate([x, np.float32([0, -0.0, np.inf, -np.inf, -63.09946, 88.72283, 88.7229])])
    want = np.array([libm.expf(float(v)) for v in x], np.float32)
    assert_close(xexpf.expf(x), want, EXACT)


# -- hostile files --------------------------------------------------------------------------------
def _doc(data, tmp_path):
    X, y = data
    return json.loads(_blob(_train(X, y, "reg:squarederror", rounds=2, depth=2), "json", tmp_path))


def _refused(doc, *words):
    with pytest.raises(InvalidModelError) as info:
        load_scorer(json.dumps(doc).encode(), "bad")
    message = str(info.value)
    assert "'bad'" in message and all(w in message for w in words), message


def _tree(doc, t=0):
    return doc["learner"]["gradient_booster"]["model"]["trees"][t]


def test_hostile_links_thresholds_and_features(data, tmp_path):
    doc = _doc(data, tmp_path)
    _tree(doc)["left_children"][0] = 99
    _refused(doc, "tree 0", "node 0")
    doc = _doc(data, tmp_path)
    _tree(doc)["left_children"][1] = 0  # a cycle
    _refused(doc, "tree 0")
    doc = _doc(data, tmp_path)
    _tree(doc, 1)["split_conditions"][0] = float("nan")
    _refused(doc, "tree 1", "node 0")
    doc = _doc(data, tmp_path)
    _tree(doc)["split_indices"][0] = N_FEATURES
    _refused(doc, "tree 0", "feature 5")
    doc = _doc(data, tmp_path)
    _tree(doc)["right_children"].pop()
    _refused(doc, "tree 0", "length")


def test_too_many_trees_refused_before_reading_them(data, tmp_path):
    doc = _doc(data, tmp_path)
    model = doc["learner"]["gradient_booster"]["model"]
    model["trees"] = [{}] * 1_000_000  # refused on the count, before any tree is read
    model["tree_info"] = [0] * 1_000_000
    _refused(doc, "1,000,000 trees")


@pytest.mark.parametrize(
    "objective,words",
    [("rank:pairwise", "rank:pairwise"), ("survival:cox", "survival:cox")],
)
def test_unsupported_objectives_and_boosters_refused_by_name(objective, words, data, tmp_path):
    doc = _doc(data, tmp_path)
    doc["learner"]["objective"]["name"] = objective
    _refused(doc, words, "not supported")
    doc = _doc(data, tmp_path)
    doc["learner"]["gradient_booster"] = {"name": "gblinear", "model": {}}
    _refused(doc, "gblinear")


def test_ubjson_counts_and_nesting_bounded():
    huge = b"[$d#L" + (10**15).to_bytes(8, "big")
    with pytest.raises(UbjsonError, match="cannot hold"):
        loads(huge)
    with pytest.raises(UbjsonError, match="bytes needed"):
        loads(b"{L" + (2**40).to_bytes(8, "big") + b"learner")
    with pytest.raises(UbjsonError, match="nested"):
        loads(b"[" * 1000)
    assert loads(b"[$l#i\x02\x00\x00\x00\x01\xff\xff\xff\xff").tolist() == [1, -1]
    with pytest.raises(InvalidModelError, match="'u'"):
        load_scorer(b"{L" + (2**40).to_bytes(8, "big") + b"learner", "u")


def test_fractional_and_negative_codes_route_as_xgboost(categorical, tmp_path):
    """Codes given as numbers: xgboost truncates a fractional code, and takes any negative
    one (even -0.5, which truncates to 0) as no category at all (`common::InvalidCat`)."""
    booster, _ = categorical
    doc = json.loads(_blob(booster, "json", tmp_path))
    doc["learner"]["gradient_booster"]["model"].pop("cats")
    scorer = load_scorer(json.dumps(doc).encode(), "codes")
    odd = np.array([-0.5, -0.0, 0.0, 0.5, 0.99, -1.0, -3.5, 1.5, 2.7, 38.9, 39.5, 40.0, 1e9])
    n = len(odd) * 4
    X = np.column_stack(
        [
            np.resize([-1.0, 0.5, 2.0, -0.25], n),
            np.resize(odd, n),
            np.repeat([0.0, 1.0, -0.5, 2.5], len(odd)),
        ]
    )
    dm = xgb.DMatrix(X, feature_names=["a", "c", "d"], feature_types=["q", "c", "c"])
    got = scorer.predict({"a": X[:, 0], "c": X[:, 1], "d": X[:, 2]}, n).value
    assert_close(got, booster.predict(dm), EXACT)
