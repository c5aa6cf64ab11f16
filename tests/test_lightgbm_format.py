"""LightGBM text models as a byom format: read by byom itself, scored equal to
`lgb.Booster.predict` (raw margins bit for bit, transformed values to a few ulps: numpy's exp
against the C library's), through the core and DuckDB; hostile files refused by name."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from helpers import EXACT, ULPS, assert_close

from byom.errors import InvalidModelError
from byom.formats import detect_format
from byom.outputs import OutputKind
from byom.scorers import load_scorer
from byom.scoring import InMemoryModels, score_batch
from byom.trees.lightgbm import K_ZERO, MAX_LEAVES, MAX_TREES

lgb = pytest.importorskip("lightgbm")

N = 1500
COLORS = ["red", "green", "blue", "white", "black", "grey"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """Numbers with NaNs and exact zeros, and a pandas category column (some NaN)."""
    rng = np.random.default_rng(11)
    a = rng.normal(size=N)
    b = np.where(rng.random(N) < 0.15, 0.0, rng.normal(size=N))
    d = rng.uniform(-3, 3, size=N)
    a[rng.random(N) < 0.1] = np.nan
    d[rng.random(N) < 0.05] = np.nan
    color = pd.Categorical(rng.choice(COLORS, N), categories=COLORS)
    color[rng.random(N) < 0.05] = np.nan
    return pd.DataFrame({"a": a, "b": b, "d": d, "color": color})


def _label(frame: pd.DataFrame, kind: str) -> np.ndarray:
    code = frame["color"].cat.codes.to_numpy()
    signal = np.nan_to_num(frame["a"].to_numpy()) + frame["b"].to_numpy() + 0.4 * (code % 3)
    if kind == "binary":
        return (signal > 0.4).astype(int)
    if kind == "multi":
        return np.digitize(signal, [-0.5, 0.5, 1.2])
    if kind == "positive":
        return np.exp(0.5 * signal)
    return signal + 0.1 * np.nan_to_num(frame["d"].to_numpy())


def _train(frame, params, label, rounds, leaves, categorical=True):
    data = frame if categorical else frame.drop(columns="color")
    options = {"num_leaves": leaves, "verbose": -1, "min_data_in_leaf": 5, "seed": 3}
    options.update(min_data_per_group=5, cat_smooth=1.0, cat_l2=1.0)
    dataset = lgb.Dataset(data, _label(frame, label))
    return lgb.train({**options, **params}, dataset, num_boost_round=rounds), data


def _features(data: pd.DataFrame) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name in data.columns:
        column = data[name]
        if isinstance(column.dtype, pd.CategoricalDtype):
            out[name] = column.astype(object).where(column.notna(), None).to_numpy()
        else:
            out[name] = column.to_numpy(np.float64)
    return out


CASES = {
    "binary-5x7": ({"objective": "binary"}, "binary", 5, 7),
    "binary-100x31": ({"objective": "binary"}, "binary", 100, 31),
    # Without the category column: trees over 64 leaves of plain comparisons, which the kernel
    # walks as data (byom.trees.kernel._walk).
    "binary-20x255-numeric": ({"objective": "binary"}, "binary", 20, 255, False),
    "multiclass-10x255-numeric": (
        {"objective": "multiclass", "num_class": 4},
        "multi",
        10,
        255,
        False,
    ),
    "zero_as_missing-20x255-numeric": (
        {"objective": "regression", "zero_as_missing": True},
        "value",
        20,
        255,
        False,
    ),
    "binary-sigmoid": ({"objective": "binary", "sigmoid": 0.7}, "binary", 20, 15),
    "multiclass": ({"objective": "multiclass", "num_class": 4}, "multi", 20, 15),
    "multiclassova": ({"objective": "multiclassova", "num_class": 4}, "multi", 10, 7),
    "regression-100x31": ({"objective": "regression"}, "value", 100, 31),
    "regression_l1": ({"objective": "regression_l1"}, "value", 10, 7),
    "huber": ({"objective": "huber"}, "value", 10, 7),
    "quantile": ({"objective": "quantile", "alpha": 0.8}, "value", 10, 7),
    "fair": ({"objective": "fair"}, "value", 10, 7),
    "mape": ({"objective": "mape"}, "positive", 10, 7),
    "poisson": ({"objective": "poisson"}, "positive", 20, 15),
    "gamma": ({"objective": "gamma"}, "positive", 20, 15),
    "tweedie": ({"objective": "tweedie"}, "positive", 20, 15),
    "cross_entropy": ({"objective": "cross_entropy"}, "binary", 10, 7),
    "zero_as_missing": ({"objective": "regression", "zero_as_missing": True}, "value", 30, 15),
    "no_missing": ({"objective": "regression", "use_missing": False}, "value", 30, 15),
    "random_forest": (
        {"objective": "binary", "boosting": "rf", "bagging_fraction": 0.6, "bagging_freq": 1},
        "binary",
        10,
        15,
    ),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def trained(request, frame):
    params, label, rounds, leaves, *categorical = CASES[request.param]
    booster, data = _train(frame, params, label, rounds, leaves, *categorical)
    return request.param, booster, data


def test_scores_equal_booster_predict(trained):
    name, booster, data = trained
    blob = booster.model_to_string().encode()
    scorer = load_scorer(blob, name)
    assert scorer.format == "lightgbm"
    features = _features(data)
    raw = scorer.margins(features)  # type: ignore[attr-defined]
    want_raw = booster.predict(data, raw_score=True)
    if "average_output" in booster.model_to_string():  # raw_score sums; predict averages first
        want_raw = want_raw / booster.current_iteration()
    assert_close(raw.reshape(want_raw.shape), want_raw, EXACT, err_msg=name)
    pred = scorer.predict(features, len(data))
    want = booster.predict(data)
    if pred.value is not None:
        got = pred.value
    else:
        assert pred.probabilities is not None
        got = pred.probabilities[:, 1] if want.ndim == 1 else pred.probabilities
    assert_close(got, want, ULPS, err_msg=name)


def test_categorical_splits_take_strings_codes_and_unknowns(frame):
    booster, data = _train(frame, {"objective": "binary"}, "binary", 30, 15)
    model = booster.model_to_string()
    assert "num_cat=0" not in model.split("Tree=1")[0]  # the first tree splits on color
    scorer = load_scorer(model.encode(), "colors")
    rows = data.iloc[:300].copy()
    want = booster.predict(rows)
    # the same rows with the categories as their numeric codes
    codes = rows["color"].cat.codes.to_numpy().astype(np.float64)
    numeric = {**_features(rows), "color": np.where(codes < 0, None, codes.astype(int).astype(str))}
    assert_close(scorer.predict(numeric, 300).probabilities[:, 1], want, ULPS)
    # an unseen category is what LightGBM makes of it: NaN (pandas code -1)
    unseen = {**_features(rows), "color": np.full(300, "purple", dtype=object)}
    as_nan = rows.assign(color=pd.Categorical([None] * 300, categories=COLORS))
    got = scorer.predict(unseen, 300).probabilities[:, 1]
    assert_close(got, booster.predict(as_nan), ULPS)


def test_numeric_categorical_features_without_pandas(frame):
    """categorical_feature on a numeric column: codes are numbers, and LightGBM's int() of a
    negative or fractional code is followed."""
    data = frame.drop(columns="color").assign(code=frame["color"].cat.codes.astype(float))
    data.loc[data["code"] < 0, "code"] = np.nan
    dataset = lgb.Dataset(data, _label(frame, "binary"), categorical_feature=["code"])
    params = {"objective": "binary", "verbose": -1, "min_data_per_group": 5, "cat_smooth": 1.0}
    booster = lgb.train(params, dataset, num_boost_round=20)
    scorer = load_scorer(booster.model_to_string().encode(), "codes")
    assert dict((i.name, i.type) for i in scorer.inputs)["code"] == "float64"
    probe = data.iloc[:200].copy()
    probe.loc[probe.index[:40], "code"] = [-0.5, 2.7, -3.0, 7.0, 1e10] * 8
    assert_close(
        scorer.predict(_features(probe), 200).probabilities[:, 1], booster.predict(probe), ULPS
    )


def _stump(threshold: float, decision_type: int) -> str:
    """One split on x, by hand: leaf 1 left, leaf 2 right."""
    return (
        "tree\nversion=v4\nnum_class=1\nnum_tree_per_iteration=1\nlabel_index=0\n"
        "max_feature_idx=0\nobjective=regression\nfeature_names=x\nfeature_infos=[-1:1]\n"
        "tree_sizes=0\n\nTree=0\nnum_leaves=2\nnum_cat=0\nsplit_feature=0\nsplit_gain=1\n"
        f"threshold={threshold!r}\ndecision_type={decision_type}\nleft_child=-1\n"
        "right_child=-2\nleaf_value=1 2\nleaf_weight=1 1\nleaf_count=1 1\ninternal_value=0\n"
        "internal_weight=0\ninternal_count=2\nis_linear=0\nshrinkage=1\n\n\nend of trees\n\n"
        "pandas_categorical:null\n"
    )


TINY = [0.0, -0.0, 1e-36, -1e-36, 1e-35, -1e-35, 5e-36, np.nan, 1.0, -1.0]
TINY += [np.nextafter(K_ZERO, 1), np.nextafter(-K_ZERO, -1)]
THRESHOLDS = [0.0, 5e-36, -5e-36, 1e-35, -1e-35, K_ZERO, -K_ZERO, 1e-36, 1.0]


@pytest.mark.parametrize("decision_type", [0, 2, 4, 6, 8, 10])
def test_values_near_zero_decide_as_lightgbm(decision_type):
    """Dense rows hold |x| <= kZeroThreshold (float32(1e-35)) as 0.0; each missing type with
    default left and right, against thresholds inside and around that band."""
    x = np.array(TINY)
    for threshold in THRESHOLDS:
        model = _stump(threshold, decision_type)
        want = lgb.Booster(model_str=model).predict(x[:, None])
        got = load_scorer(model.encode()).predict({"x": x}, len(x)).value
        assert_close(got, want, EXACT, err_msg=f"threshold {threshold!r}")


@pytest.mark.parametrize(("decision_type", "threshold"), [(4, 0.5), (6, -0.5)])
def test_zero_missing_at_k_zero_threshold(decision_type, threshold):
    x = np.array([K_ZERO, -K_ZERO])
    model = _stump(threshold, decision_type)
    want = lgb.Booster(model_str=model).predict(x[:, None])
    assert_close(load_scorer(model.encode()).predict({"x": x}, 2).value, want, EXACT)


# -- through the core and DuckDB -----------------------------------------------------------------
@pytest.fixture(scope="module")
def models(frame):
    binary, data = _train(frame, {"objective": "binary"}, "binary", 20, 15)
    multi, _ = _train(frame, {"objective": "multiclass", "num_class": 4}, "multi", 10, 7)
    reg, _ = _train(frame, {"objective": "poisson"}, "positive", 20, 15)
    return {"binary": binary, "multi": multi, "reg": reg}, data


def _arrow(data: pd.DataFrame) -> pa.Table:
    color = data["color"].astype(object).where(data["color"].notna(), None)
    return pa.table({**{c: data[c].to_numpy() for c in "abd"}, "color": pa.array(color)})


def test_core_scores_predicts_and_reports_raw_score(models):
    boosters, data = models
    catalog = InMemoryModels()
    for name, booster in boosters.items():
        catalog.add(name, booster.model_to_string().encode())
    table = _arrow(data)
    columns = [c.combine_chunks() for c in table.columns]
    row = pa.StructArray.from_arrays(columns, names=table.column_names)
    kinds = (OutputKind.SCORE, OutputKind.PREDICT, OutputKind.JSON)
    for name, booster in boosters.items():
        ids = pa.array([name] * len(data))
        score, predict, js = score_batch(kinds, ids, [row], catalog)
        want = booster.predict(data)
        expected = want.max(axis=1) if want.ndim == 2 else want
        assert_close(score.to_numpy(zero_copy_only=False), expected, ULPS, err_msg=name)
        first = json.loads(js[0].as_py())
        if name == "binary":
            assert predict[0].as_py()["label"] == str(int(want[0] > 0.5))
        if want.ndim == 1:
            raw = booster.predict(data.iloc[:1], raw_score=True)[0]
            assert first["raw_score"] == raw
        else:
            assert list(first["probabilities"]) == ["0", "1", "2", "3"]


def test_duckdb_scores_by_column_name(con, store, models):
    boosters, data = models
    store.add("lgbm", boosters["binary"].model_to_string().encode())
    con.register("src", _arrow(data))
    con.execute("CREATE TABLE t AS SELECT * FROM src")
    got = con.sql("SELECT score('lgbm', t) AS s FROM t").fetchnumpy()["s"]
    assert_close(got, boosters["binary"].predict(data), ULPS)


def test_sniffed_from_the_bytes_and_described(models, tmp_path):
    boosters, _ = models
    path = tmp_path / "model.txt"
    boosters["multi"].save_model(path)
    blob = path.read_bytes()
    assert detect_format(blob).name == "lightgbm"
    scorer = load_scorer(blob, "m")
    described = scorer.describe()
    assert described["task"] == "classification"
    assert described["classes"] == ["0", "1", "2", "3"]
    assert described["objective"] == "multiclass"
    inputs = {i.name: (i.type, i.categories) for i in scorer.inputs}
    assert inputs["a"] == ("float64", ())
    assert inputs["color"] == ("string", tuple(COLORS))


# -- hostile and unsupported files ---------------------------------------------------------------
@pytest.fixture(scope="module")
def text(frame) -> str:
    booster, _ = _train(frame, {"objective": "binary"}, "binary", 3, 4, categorical=False)
    return booster.model_to_string()


def _tree_line(text: str, tree: int, key: str, value: str) -> str:
    head, _, rest = text.partition(f"Tree={tree}\n")
    block, sep, tail = rest.partition("\n\n")
    lines = [f"{key}={value}" if ln.startswith(f"{key}=") else ln for ln in block.split("\n")]
    return head + f"Tree={tree}\n" + "\n".join(lines) + sep + tail


def _refused(blob: str | bytes, *needles: str) -> None:
    data = blob.encode() if isinstance(blob, str) else blob
    with pytest.raises(InvalidModelError) as info:
        load_scorer(data, "evil")
    message = str(info.value)
    assert "'evil'" in message, message
    for needle in needles:
        assert needle in message, message


def test_hostile_links_thresholds_and_features(text):
    _refused(_tree_line(text, 1, "left_child", "1 7 -2"), "tree 1, node 1", "child 7")
    _refused(_tree_line(text, 1, "left_child", "1 0 -2"), "tree 1", "reached twice")
    _refused(_tree_line(text, 2, "threshold", "nan 0.5 0.1"), "tree 2, node 0", "threshold")
    _refused(_tree_line(text, 0, "split_feature", "0 9 1"), "tree 0, node 1", "feature 9")
    _refused(_tree_line(text, 0, "decision_type", "2 14 2"), "tree 0, node 1", "decision_type")
    _refused(_tree_line(text, 0, "leaf_value", "1 2"), "tree 0", "leaf_value")
    _refused(_tree_line(text, 0, "leaf_value", "1 2 inf 4"), "tree 0", "leaf value")
    _refused(_tree_line(text, 0, "is_linear", "1"), "tree 0", "linear")


def test_hostile_counts_refused_before_building(text):
    _refused(_tree_line(text, 0, "num_leaves", str(10**9)), "tree 0", "num_leaves")
    _refused(_tree_line(text, 0, "num_leaves", "5"), "tree 0", "values in")
    _refused(text.replace("max_feature_idx=2", f"max_feature_idx={10**12}"), "max_feature_idx")
    _refused(text.replace("num_class=1", "num_class=-3"), "num_class")
    _refused(text.split("end of trees")[0][:-200], "no trees")
    head = text.split("\nTree=0")[0]
    many = head + "".join(f"\nTree={i}\nnum_leaves=1\nleaf_value=0\n" for i in range(10**6))
    _refused(many + "\nend of trees\n", f"{10**6:,} trees", f"{MAX_TREES:,}")


def test_deep_trees_refused(text):
    """Chains past byom's depth bound are refused by the ensemble's link check; more leaves
    than LightGBM's own bound before any node is built."""
    head = text.split("\nTree=0")[0]

    def chain(depth: int) -> str:
        splits = depth
        left = " ".join(str(i + 1) for i in range(splits - 1)) + " -1"
        right = " ".join(str(-i - 2) for i in range(splits))
        return (
            f"{head}\nTree=0\nnum_leaves={splits + 1}\nnum_cat=0\n"
            f"split_feature={' '.join(['0'] * splits)}\n"
            f"threshold={' '.join(['0.5'] * splits)}\ndecision_type={' '.join(['2'] * splits)}\n"
            f"left_child={left}\nright_child={right}\nleaf_value={' '.join(['1'] * (splits + 1))}"
            "\n\n\nend of trees\n"
        )

    _refused(chain(10**5), "tree 0, node", "deeper than")
    _refused(chain(MAX_LEAVES + 1), f"num_leaves={MAX_LEAVES + 2:,}")
    ok = load_scorer(chain(50).encode()).predict({c: np.zeros(1) for c in "abd"}, 1)
    assert ok.probabilities is not None


def test_unsupported_objectives_refused_by_name(text):
    for objective in ("cross_entropy_lambda", "custom_loss", "regression sqrt"):
        _refused(text.replace("objective=binary sigmoid:1", f"objective={objective}"), "retrain")
    _refused(text.replace("objective=binary sigmoid:1", "objective=binary sigmoid:nan"), "sigmoid")


def test_categorical_hostile_sets(frame):
    booster, _ = _train(frame, {"objective": "binary"}, "binary", 3, 15)
    model = booster.model_to_string()
    blocks = model.split("end of trees")[0].split("Tree=")[1:]
    t = next(i for i, block in enumerate(blocks) if "num_cat=0\n" not in block)
    _refused(_tree_line(model, t, "cat_boundaries", "0 5"), f"tree {t}", "cat_boundaries")
    _refused(_tree_line(model, t, "cat_threshold", "-4"), f"tree {t}", "cat_threshold")
    line = model.replace("pandas_categorical:[[", "pandas_categorical:[[], [")
    _refused(line, "pandas category columns")
