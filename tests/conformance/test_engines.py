"""One module, every engine: the same models and rows give the same numbers everywhere.

Each engine is checked against the native libraries (scikit-learn, hand-computed PMML) and,
exactly, against the core called directly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import toy_format
from engines import ENGINES, ModelSpec
from helpers import IRIS_FEATURES, LINEAR_PMML, linear_pmml_expected, spark_session

from byom.outputs import OutputKind

N_ROWS = 2500  # more than one DuckDB chunk


@pytest.fixture(scope="module", autouse=True)
def _toy_format_everywhere():
    """A format plugin reaches every engine's processes as a user's would: named in
    BYOM_FORMATS and importable (PYTHONPATH; Spark's workers get the file with addPyFile)."""
    here = Path(__file__).parent
    env = pytest.MonkeyPatch()
    env.setenv("BYOM_FORMATS", "toy_format")
    env.setenv(
        "PYTHONPATH", os.pathsep.join(filter(None, [str(here), os.environ.get("PYTHONPATH")]))
    )
    spark_session().sparkContext.addPyFile(str(here / "toy_format.py"))
    yield
    env.undo()


@pytest.fixture(scope="module")
def case(iris, iris_logreg, iris_binary_onnx, iris_regressor):
    rng = np.random.default_rng(7)
    base = iris.sample(N_ROWS, replace=True, random_state=3).reset_index(drop=True)
    ids = rng.choice(
        ["multi", "binary", "reg", "lin", "toy", None],
        size=N_ROWS,
        p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05],
    )
    x = rng.normal(size=N_ROWS)
    z = np.where(rng.random(N_ROWS) < 0.1, np.nan, rng.normal(size=N_ROWS))
    color = rng.choice(["red", "blue"], size=N_ROWS)
    table = pa.table(
        {
            "model_id": pa.array(ids, pa.string()),
            **{c: pa.array(base[c].to_numpy()) for c in IRIS_FEATURES},
            "x": pa.array(x),
            "z": pa.array(z, from_pandas=True),
            "color": pa.array(color),
        }
    )
    cols = ",".join(IRIS_FEATURES)
    models = {
        "multi": ModelSpec(iris_logreg[1], cols),
        "binary": ModelSpec(iris_binary_onnx[1], cols),
        "reg": ModelSpec(iris_regressor[1], ",".join(IRIS_FEATURES[:3])),
        "lin": ModelSpec(LINEAR_PMML),
        "toy": ModelSpec(toy_format.document(0.25, x=1.5, sepal_length=-0.5)),
    }
    X = base[IRIS_FEATURES].to_numpy(np.float32)
    expected = np.select(
        [ids == "multi", ids == "binary", ids == "reg", ids == "lin", ids == "toy"],
        [
            iris_logreg[0].predict_proba(X).max(axis=1),
            iris_binary_onnx[0].predict_proba(X)[:, 1],
            iris_regressor[0].predict(X[:, :3]),
            linear_pmml_expected(x, z, color),
            0.25 + 1.5 * x - 0.5 * base["sepal_length"].to_numpy(),
        ],
        default=np.nan,
    )
    return models, table, expected


@pytest.fixture(scope="module")
def core_results(case):
    models, table, _ = case
    return {kind: ENGINES["core"].run(models, table, kind) for kind in OutputKind}


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_scores_match_native_models(engine, case):
    models, table, expected = case
    got = np.array(ENGINES[engine].run(models, table, OutputKind.SCORE), dtype=np.float64)
    assert len(got) == N_ROWS
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))  # NULL model id -> NULL
    np.testing.assert_allclose(got, expected, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("kind", list(OutputKind), ids=lambda k: k.value)
def test_engines_identical_to_core(engine, kind, case, core_results):
    models, table, _ = case
    got = ENGINES[engine].run(models, table, kind)
    want = core_results[kind]
    if kind is OutputKind.JSON:  # engines may re-render JSON text; compare documents
        got = [None if g is None else json.loads(g) for g in got]
        want = [None if w is None else json.loads(w) for w in want]
    if kind is OutputKind.PREDICT:  # DuckDB returns MAPs as dicts, Arrow as key/value pairs
        got = [_plain(g) for g in got]
        want = [_plain(w) for w in want]
    assert got == want


def _plain(value):
    if value is None:
        return None
    probs = value["probabilities"]
    if isinstance(probs, list):
        probs = dict(probs)
    return {**value, "probabilities": probs}
