"""Model families (issue 18): a batch whose rows name many models of one kind is scored in one
pass, the rows in any order, each row exactly as its own model scores it, checked against the
training library (LightGBM's predict) and onnxruntime; rows of models outside the family, or
naming no model, in the same batch keep their own results."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pytest
from helpers import EXACT, ULPS, assert_close
from many_models import onnx_logistic

from byom.outputs import OutputKind
from byom.scoring import InMemoryModels, StatementModels, score_batch
from byom.trees.scorer import TreeFamily

FEATURES = [f"f{i}" for i in range(6)]


def _boosters(count: int, objective: str = "binary") -> list:
    import lightgbm as lgb

    params = {"objective": objective, "num_leaves": 7, "min_data_in_leaf": 3, "verbose": -1}
    out = []
    for k in range(count):
        rng = np.random.default_rng([5, k])
        X = rng.normal(size=(300, len(FEATURES)))
        y = X @ rng.normal(size=len(FEATURES)) + rng.normal(size=300) > 0
        data = lgb.Dataset(X, y.astype(int), feature_name=FEATURES)
        out.append(lgb.train(params | {"seed": k, "num_threads": 1}, data, num_boost_round=8))
    return out


def _table(ids: list, n: int, seed: int) -> tuple[pa.Array, pa.StructArray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, len(FEATURES)))
    X[rng.random(X.shape) < 0.05] = np.nan
    picked = rng.choice(np.array(ids, dtype=object), n)
    row = pa.StructArray.from_arrays([pa.array(X[:, j]) for j in range(X.shape[1])], FEATURES)
    return pa.array(picked.tolist(), pa.string()), row, X


@pytest.fixture(scope="module")
def lightgbm_models():
    """Ten binary models (one family), and a regression model (another family)."""
    boosters = {f"b{k}": b for k, b in enumerate(_boosters(10))}
    boosters["r0"] = _boosters(1, "regression")[0]
    catalog = InMemoryModels()
    for model_id, booster in boosters.items():
        catalog.add(model_id, booster.model_to_string().encode())
    return boosters, catalog


@pytest.mark.parametrize("with_others", [False, True], ids=["one-family", "mixed"])
def test_tree_family_rows_in_any_order_equal_lightgbm(lightgbm_models, with_others, monkeypatch):
    boosters, catalog = lightgbm_models
    passes = []  # the family passes: one per family in the batch
    scored = TreeFamily.predict
    monkeypatch.setattr(
        TreeFamily, "predict", lambda self, m, *a: passes.append(len(m)) or scored(self, m, *a)
    )
    ids = [i for i in boosters if with_others or i.startswith("b")]
    model_ids, row, X = _table(ids, 3_000, seed=1)
    if with_others:  # a few rows naming no model: NULL results
        model_ids = pa.array(
            [None if k % 97 == 0 else v for k, v in enumerate(model_ids.to_pylist())]
        )
    got = score_batch((OutputKind.SCORE,), model_ids, [row], catalog, statement=StatementModels())
    got = np.array(got[0].to_pylist(), dtype=float)
    names = np.array(model_ids.to_pylist(), dtype=object)
    assert np.isnan(got[names == None]).all()  # noqa: E711 - elementwise
    for model_id, booster in boosters.items():
        rows = names == model_id
        if rows.any():  # LightGBM's own logistic may differ in the last bit; raw scores don't
            assert_close(got[rows], booster.predict(X[rows], num_threads=1), ULPS)
            alone = score_batch(
                (OutputKind.SCORE,), model_ids.filter(rows), [row.filter(rows)], catalog
            )
            assert_close(got[rows], np.array(alone[0].to_pylist(), float), EXACT, model_id)
    assert len(set(names[names != None])) == len(ids)  # noqa: E711
    assert len(passes) == (2 if with_others else 1)
    assert sum(passes) == int((names != None).sum())  # noqa: E711


def test_linear_family_rows_in_any_order_equal_onnxruntime():
    width, cols = 4, FEATURES[:4]
    blobs = {f"m{k}": onnx_logistic(k, width) for k in range(40)}
    catalog = InMemoryModels()
    for model_id, blob in blobs.items():
        catalog.add(model_id, blob, "x=" + ",".join(cols))
    model_ids, row, X = _table(list(blobs), 2_000, seed=2)
    got = score_batch((OutputKind.SCORE,), model_ids, [row], catalog, statement=StatementModels())
    got = np.array(got[0].to_pylist(), dtype=float)
    names = np.array(model_ids.to_pylist(), dtype=object)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    for model_id, blob in blobs.items():
        rows = names == model_id
        session = ort.InferenceSession(blob, options, providers=["CPUExecutionProvider"])
        want = session.run(None, {"x": X[rows][:, :width].astype(np.float32)})[0][:, 0]
        close = np.abs(got[rows] - want) <= 1e-5 * np.maximum(1.0, np.abs(want))
        assert np.array_equal(np.isnan(got[rows]), np.isnan(want))
        assert close[~np.isnan(want)].all(), model_id


@pytest.mark.parametrize("starts", [[0, 5, 2040, 2045, 2047], [0], [0, 2047], [0, 8, 16, 17]])
def test_grouped_kernel_calls_equal_each_kernel_alone(lightgbm_models, starts):
    """Each group's rows are rounded up to whole vectors and read from the shared columns;
    groups near the end (whose rounding would read past it) use a padded copy."""
    from byom.trees.kernel import grouped_margins
    from byom.trees.kernel_cache import kernel_for
    from byom.trees.lightgbm import load_scorer

    boosters = lightgbm_models[0]
    texts = [boosters[f"b{g}"].model_to_string().encode() for g in range(len(starts))]
    kernels = [kernel_for(load_scorer(text).ensemble) for text in texts]
    n = 2048 if starts != [0, 8, 16, 17] else 20
    X = np.random.default_rng(3).normal(size=(n, len(FEATURES)))
    got = grouped_margins(kernels, [np.ascontiguousarray(X[:, j]) for j in range(6)], starts)
    for g, start in enumerate(starts):
        stop = starts[g + 1] if g + 1 < len(starts) else n
        raw = boosters[f"b{g}"].predict(X[start:stop], raw_score=True, num_threads=1)
        assert_close(got[start:stop, 0], raw, EXACT, f"group {g}")


def test_tree_family_of_xgboost_multiclass_models_equals_xgboost(tmp_path):
    """Several outputs per row and XGBoost's float32 softmax: each row's probabilities as
    xgboost's own predict gives them, bit for bit, the rows of six models interleaved."""
    import xgboost as xgb

    from byom.trees.xgboost import load_scorer

    rng = np.random.default_rng(11)
    X = rng.normal(size=(900, len(FEATURES))).astype(np.float32)
    X[rng.random(X.shape) < 0.05] = np.nan
    boosters, scorers = [], []
    for k in range(6):
        y = np.digitize(np.nan_to_num(X[:, k % 6]) + rng.normal(size=len(X)), [-1, 0, 1])
        params = {"objective": "multi:softprob", "num_class": 4, "max_depth": 3, "seed": k}
        booster = xgb.train(params, xgb.DMatrix(X, y, feature_names=FEATURES), 6)
        path = tmp_path / f"m{k}.json"
        booster.save_model(path)
        boosters.append(booster)
        scorers.append(load_scorer(path.read_bytes(), f"m{k}"))
    assert len({s.family() for s in scorers}) == 1
    family = scorers[0].make_family()
    index = np.array([family.member(s) for s in scorers])
    owner = rng.integers(0, 6, len(X))
    features = {name: X[:, j].astype(np.float64) for j, name in enumerate(FEATURES)}
    got = family.predict(index[owner], features).probabilities
    for k, booster in enumerate(boosters):
        rows = owner == k
        want = booster.predict(xgb.DMatrix(X[rows], feature_names=FEATURES))
        assert_close(got[rows], want, EXACT, f"m{k}")
