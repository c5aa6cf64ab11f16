"""PMML forests lowered to the one tree representation (`byom.pmml.forest.lower`).

Every forest here is scored twice by byom's native evaluator: lowered (the compiled tree
kernel) and with BYOM_PMML_LOWER_TREES=0 (today's per-tree walk and MiningModel loop, the
reference). The two must agree bit for bit, sign of zero included, on inputs built to hit the
edges: every split threshold and the doubles beside it, infinities, zeros and ~15 % NaN. The
lowered results must also still match the scores of the library that trained the model
(sklearn2pmml exports) or the corpus's expected outputs (third-party PMML). Models whose trees
or combination cannot be lowered exactly must say so and score as before.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

import numpy as np
import pytest
from helpers import corpus_dir
from model_zoo import TOLERANCE, build
from test_pmml_corpus import _acceptable, _read_csv, _tolerance

from byom.inputs import InputBinder
from byom.pmml.forest import LOWER_ENV
from byom.pmml.models.base import ModelPlan, ModelResult
from byom.pmml.models.mining import MiningModel
from byom.pmml.scorer import NativePmmlScorer

ZOO = (
    "sklearn_random_forest",
    "sklearn_gradient_boosting",
    "lightgbm_classifier",
    "lightgbm_regressor",
    "xgboost_classifier",
    "xgboost_regressor",
)
#: Corpus cases whose MiningModel is a forest of numeric splits today.
CORPUS_FORESTS = (
    "knime__DecisionTreeEnsembleIris",
    "rattle__RandomForestIris",
    "rattle__RandomForestXformIris",
)


# ----------------------------------------------------------------------------- helpers


def _minings(model: ModelPlan) -> list[MiningModel]:
    if not isinstance(model, MiningModel):
        return []
    return [model] + [m for _, _, s in model.segments for m in _minings(s)]


def _forests(scorer: NativePmmlScorer) -> list[MiningModel]:
    return [m for m in _minings(scorer.plan.model) if m.forest is not None]


def _scorer(blob: bytes, monkeypatch: pytest.MonkeyPatch, lower: bool) -> NativePmmlScorer:
    monkeypatch.setenv(LOWER_ENV, "1" if lower else "0")
    return NativePmmlScorer(blob)


def _pair(
    blob: bytes, monkeypatch: pytest.MonkeyPatch
) -> tuple[NativePmmlScorer, NativePmmlScorer]:
    lowered, reference = _scorer(blob, monkeypatch, True), _scorer(blob, monkeypatch, False)
    assert not any(m.lowered for m in _minings(reference.plan.model))
    return lowered, reference


def _edge_inputs(scorer: NativePmmlScorer, n: int, seed: int) -> dict[str, np.ndarray]:
    """Per continuous input: random values around its thresholds, ~40 % of the rows a
    threshold, its neighbouring doubles, +-inf or +-0.0, and ~15 % NaN."""
    cuts: dict[str, list[float]] = {}
    for mining in _forests(scorer):
        for tree in mining.forest.trees:  # type: ignore[union-attr]
            for name, t in zip(tree.binary.fields, tree.binary.thresholds, strict=True):
                cuts.setdefault(name, []).append(t)
    rng = np.random.default_rng(seed)
    out = {}
    for _, spec in scorer.plan.inputs:
        c = np.array(cuts.get(spec.name, [0.0]))
        special = np.concatenate(
            [c, np.nextafter(c, np.inf), np.nextafter(c, -np.inf), [np.inf, -np.inf, 0.0, -0.0]]
        )
        x = rng.normal(c.mean(), c.std() + 1.0, n)
        pick = rng.random(n) < 0.4
        x[pick] = rng.choice(special, int(pick.sum()))
        x[rng.random(n) < 0.15] = np.nan
        out[spec.name] = x
    return out


def _assert_identical(
    a: tuple[ModelResult, dict[str, np.ndarray]], b: tuple[ModelResult, dict[str, np.ndarray]]
) -> None:
    (ra, va), (rb, vb) = a, b
    pairs = [(ra.value, rb.value), (ra.probabilities, rb.probabilities)]
    pairs += [(va[k], vb[k]) for k in vb]
    assert va.keys() == vb.keys()
    for x, y in pairs:
        assert (x is None) == (y is None)
        if x is None:
            continue
        if x.dtype == object:
            assert x.tolist() == y.tolist()
            continue
        assert x.dtype == y.dtype
        assert np.array_equal(x, y, equal_nan=True)
        number = ~np.isnan(y)
        assert np.array_equal(np.signbit(x[number]), np.signbit(y[number]))  # -0.0 too
    assert (ra.labels is None) == (rb.labels is None)
    if ra.labels is not None:
        assert ra.labels.tolist() == rb.labels.tolist()  # type: ignore[union-attr]


def _check_lowered_equals_reference(
    blob: bytes, monkeypatch: pytest.MonkeyPatch, n: int = 6000
) -> NativePmmlScorer:
    lowered, reference = _pair(blob, monkeypatch)
    forests = _forests(lowered)
    assert forests and all(m.lowered is not None for m in forests)
    for seed in (0, 1):
        features = _edge_inputs(lowered, n, seed)
        _assert_identical(lowered.plan.run(features, n), reference.plan.run(features, n))
    return lowered


def _native_agrees(name: str, scorer: NativePmmlScorer) -> None:
    """The lowered scores against the training library's own (held-out rows, no edits)."""
    m = build(name)
    features = {c: m.data[c].to_numpy(dtype=np.float64) for c in m.data.columns}
    result, _ = scorer.plan.run(features, len(m.data))
    tol = TOLERANCE[name]["pmml"]
    if m.task == "regression":
        assert np.allclose(result.value, m.native_pred, rtol=0, atol=tol)
    else:
        assert np.allclose(result.probabilities, m.native_proba, rtol=0, atol=tol)


@functools.cache
def _sklearn_regressor(kind: str) -> bytes:
    from sklearn.datasets import make_friedman1
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn2pmml.pipeline import PMMLPipeline

    from byom.export import sklearn_to_pmml

    Xa, ya = make_friedman1(n_samples=600, n_features=6, noise=0.5, random_state=3)
    model: Any = (
        RandomForestRegressor(n_estimators=20, max_depth=6, random_state=0, n_jobs=1)
        if kind == "random_forest"
        else GradientBoostingRegressor(n_estimators=30, max_depth=3, random_state=0)
    )
    import pandas as pd

    X = pd.DataFrame(Xa, columns=[f"x{i}" for i in range(6)])
    pipe = PMMLPipeline([("reg", model)]).fit(X, pd.Series(ya, name="y"))
    return sklearn_to_pmml(pipe)


def _edit(blob: bytes, *, method: str | None = None, **attributes: str) -> bytes:
    """Change the Segmentation's method, give every Segment a distinct weight, or set the
    attribute of every TreeModel / Segmentation named in `attributes`."""
    text = blob.decode()
    if method is not None:
        text = re.sub(r'multipleModelMethod="\w+"', f'multipleModelMethod="{method}"', text)
        counter = iter(range(1, 10_000))
        text = re.sub(
            r'<Segment id="(\d+)"',
            lambda m: f'<Segment id="{m.group(1)}" weight="{0.3 + 0.7 * next(counter) / 7}"',
            text,
        )
    for name, value in attributes.items():
        element = "Segmentation" if name == "missingPredictionTreatment" else "TreeModel"
        text = re.sub(rf' {name}="\w+"', "", text)
        text = re.sub(rf"<{element} ", f'<{element} {name}="{value}" ', text)
    return text.encode()


# ----------------------------------------------------------------------------- exports


@pytest.mark.parametrize("name", ZOO)
def test_sklearn2pmml_forest_lowered_identical(name, monkeypatch):
    """RandomForestClassifier, GradientBoostingClassifier, LightGBM and XGBoost (its float32
    sums under x-mathContext="float") through sklearn2pmml: lowered, bit-identical to the
    per-tree path on edge inputs, and as close to the library's own scores as before."""
    blob = build(name).pmml
    assert blob is not None
    scorer = _check_lowered_equals_reference(blob, monkeypatch)
    _native_agrees(name, scorer)


@pytest.mark.parametrize("kind", ["random_forest", "gradient_boosting"])
def test_sklearn2pmml_regressor_lowered_identical(kind, monkeypatch):
    """RandomForestRegressor (average) and GradientBoostingRegressor (sum with Targets)."""
    blob = _sklearn_regressor(kind)
    scorer = _check_lowered_equals_reference(blob, monkeypatch)
    from sklearn.datasets import make_friedman1

    X, _ = make_friedman1(n_samples=600, n_features=6, noise=0.5, random_state=3)
    result, _ = scorer.plan.run({f"x{i}": X[:, i] for i in range(6)}, len(X))
    assert result.value is not None and not np.isnan(result.value).any()


@pytest.mark.parametrize(
    "edits",
    [
        {"method": "majorityVote"},
        {"method": "weightedMajorityVote"},
        {"method": "weightedAverage"},
        {"missingPredictionTreatment": "continue"},
        {"method": "weightedAverage", "missingPredictionTreatment": "skipSegment"},
        {"missingValueStrategy": "none"},
        {"missingValueStrategy": "lastPrediction"},
        {"noTrueChildStrategy": "returnLastPrediction"},
    ],
    ids=lambda e: "-".join(f"{v}" for v in e.values()),
)
def test_classifier_variants_lowered_identical(edits, monkeypatch):
    """The random forest classifier with every summed method, missing-prediction treatment
    and missing-value strategy the lowering takes (weights, skipped segments, own outcomes)."""
    blob = _edit(build("sklearn_random_forest").pmml, **edits)  # type: ignore[arg-type]
    _check_lowered_equals_reference(blob, monkeypatch)


@pytest.mark.parametrize(
    "edits",
    [
        {"method": "sum"},
        {"method": "weightedSum"},
        {"method": "weightedAverage"},
        {"missingPredictionTreatment": "continue"},  # the count differs per row
        {"method": "weightedSum", "missingPredictionTreatment": "continue"},
        {"missingValueStrategy": "lastPrediction"},
        {"missingValueStrategy": "none", "noTrueChildStrategy": "returnLastPrediction"},
    ],
    ids=lambda e: "-".join(f"{v}" for v in e.values()),
)
def test_regressor_variants_lowered_identical(edits, monkeypatch):
    _check_lowered_equals_reference(
        _edit(_sklearn_regressor("random_forest"), **edits), monkeypatch
    )


def test_float_math_with_null_predictions_lowered_identical(monkeypatch):
    """XGBoost's float32 sums, with trees that give no prediction on NaN and skipped
    segments: the count and the missing flag come from the kernel, in float32."""
    blob = _edit(
        build("xgboost_regressor").pmml,  # type: ignore[arg-type]
        missingValueStrategy="nullPrediction",
        missingPredictionTreatment="continue",
    )
    _check_lowered_equals_reference(blob, monkeypatch)


# ----------------------------------------------------------------------------- not lowered


@pytest.mark.parametrize(
    ("source", "edits", "forest"),
    [
        ("regressor", {"method": "median"}, True),
        ("regressor", {"method": "max"}, True),
        ("classifier", {"method": "max"}, True),
        ("classifier", {"missingValueStrategy": "aggregateNodes"}, False),
        ("classifier", {"missingValueStrategy": "weightedConfidence"}, False),
    ],
    ids=lambda v: "-".join(map(str, v.values())) if isinstance(v, dict) else str(v),
)
def test_not_lowerable_keeps_todays_path(source, edits, forest, monkeypatch):
    """Combinations that are not sums (median, max) and strategies that follow several
    children (aggregateNodes, weightedConfidence) stay on today's path, scoring as before."""
    if source == "regressor":
        blob = _sklearn_regressor("random_forest")
    else:
        blob = build("sklearn_random_forest").pmml  # type: ignore[assignment]
    if "weightedConfidence" in edits.values():  # it weighs children by their recordCount
        blob = blob.replace(b"<Node>", b'<Node recordCount="1">')
    blob = _edit(blob, **edits)
    on, off = _pair(blob, monkeypatch)
    assert (on.plan.model.forest is not None) == forest  # type: ignore[attr-defined]
    assert not any(m.lowered for m in _minings(on.plan.model))
    features = _edge_inputs(on, 3000, 5)
    _assert_identical(on.plan.run(features, 3000), off.plan.run(features, 3000))


# ----------------------------------------------------------------------------- corpus


def _corpus_features(scorer: NativePmmlScorer, table: Any) -> dict[str, np.ndarray]:
    binder = InputBinder("m", scorer.inputs)
    return binder.by_name(table.column_names, [table.column(i) for i in range(table.num_columns)])


@pytest.mark.parametrize("name", CORPUS_FORESTS)
def test_corpus_forest_lowered(name, monkeypatch):
    """Third-party forests: lowered, identical to the per-tree path on the corpus rows and on
    them with NaN cells, and still within the corpus's tolerance of its expected outputs."""
    folder = corpus_dir() / name
    lowered, reference = _pair((folder / "model.pmml").read_bytes(), monkeypatch)
    forests = _forests(lowered)
    assert forests and all(m.lowered is not None for m in forests)
    inputs = _read_csv(folder / "input.csv")
    n = inputs.num_rows
    features = _corpus_features(lowered, inputs)
    _assert_identical(lowered.plan.run(features, n), reference.plan.run(features, n))
    rng = np.random.default_rng(11)
    holed = {}
    for key, column in features.items():
        column = np.array(column, dtype=np.float64 if column.dtype != object else object)
        column[rng.random(n) < 0.2] = np.nan if column.dtype != object else None
        holed[key] = column
    _assert_identical(lowered.plan.run(holed, n), reference.plan.run(holed, n))

    from byom.outputs import json_rows

    case = json.loads((folder / "case.json").read_text())
    precision, zero = _tolerance(case)
    got = [json.loads(r) for r in json_rows(lowered.predict(features, n)).to_pylist()]
    expected = _read_csv(folder / "expected.csv").to_pylist()
    for column in expected[0]:
        bad = sum(
            not _acceptable(want[column], have.get(column), precision, zero)
            for want, have in zip(expected, got, strict=True)
        )
        assert not bad, f"{name}: {bad} rows of {column} out of tolerance"
