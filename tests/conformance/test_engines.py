"""One module, every engine: the same models and rows give the same numbers everywhere, and
what every engine must do alike is tested here once for all of them.

Each engine is checked against the native libraries (scikit-learn, hand-computed PMML) and,
exactly, against the core called directly; then the shared behaviour: a NULL model id gives
NULL, empty input gives no rows, a replaced model is used by the next statement, and bad input
(an unknown model id, a missing column, a value of the wrong type, an unseen category, the wrong
number of values) fails naming the model, the column or the value, and a statement over 60
models, a different one every few rows, gives exactly what each model gives alone (issue 18).
An engine that legitimately differs is marked as a strict xfail with the reason;
engine-specific behaviour (DuckDB's call forms, Spark's refresh, Teradata's delivery modes)
stays in the engine's own test file.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import toy_format
from engines import ENGINES, ModelSpec, ScoringFailed
from helpers import (
    FLOAT32,
    IRIS_FEATURES,
    LINEAR_PMML,
    PMML_DOUBLE,
    assert_close,
    linear_pmml_expected,
    spark_session,
)

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
def case(iris, iris_logreg, iris_binary_onnx, iris_regressor, iris_lightgbm):
    rng = np.random.default_rng(7)
    base = iris.sample(N_ROWS, replace=True, random_state=3).reset_index(drop=True)
    ids = rng.choice(
        ["multi", "binary", "reg", "lin", "toy", "lgbm", "xgb", None],
        size=N_ROWS,
        p=[0.2, 0.2, 0.15, 0.1, 0.1, 0.1, 0.1, 0.05],
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
    xgb_rows = base[["sepal_width", "petal_width"]].assign(z=z)
    xgb_booster, xgb_blob = _iris_xgboost(xgb_rows, base["target"].to_numpy())
    cols = ",".join(IRIS_FEATURES)
    models = {
        "multi": ModelSpec(iris_logreg[1], cols),
        "binary": ModelSpec(iris_binary_onnx[1], cols),
        "reg": ModelSpec(iris_regressor[1], ",".join(IRIS_FEATURES[:3])),
        "lin": ModelSpec(LINEAR_PMML),
        "toy": ModelSpec(toy_format.document(0.25, x=1.5, sepal_length=-0.5)),
        "lgbm": ModelSpec(iris_lightgbm[1]),  # inputs by the names the model records
        "xgb": ModelSpec(xgb_blob),  # likewise
    }
    lgbm_rows = base[["sepal_length", "petal_length"]].assign(
        z=z, color=pd.Categorical(color, categories=["blue", "red"])
    )
    X = base[IRIS_FEATURES].to_numpy(np.float32)
    expected = np.select(
        [ids == m for m in ("multi", "binary", "reg", "lin", "toy", "lgbm", "xgb")],
        [
            iris_logreg[0].predict_proba(X).max(axis=1),
            iris_binary_onnx[0].predict_proba(X)[:, 1],
            iris_regressor[0].predict(X[:, :3]),
            linear_pmml_expected(x, z, color),
            0.25 + 1.5 * x - 0.5 * base["sepal_length"].to_numpy(),
            iris_lightgbm[0].predict(lgbm_rows),
            xgb_booster.inplace_predict(xgb_rows).max(axis=1),
        ],
        default=np.nan,
    )
    return models, table, expected


def _iris_xgboost(rows, species):
    """A 3-class XGBoost model (UBJSON) on two iris columns and z, with NaNs."""
    import tempfile

    import xgboost

    params = {"objective": "multi:softprob", "num_class": 3, "max_depth": 3}
    booster = xgboost.train(params, xgboost.DMatrix(rows, species), 10)
    with tempfile.TemporaryDirectory() as folder:
        booster.save_model(f"{folder}/m.ubj")
        return booster, Path(f"{folder}/m.ubj").read_bytes()


@pytest.fixture(scope="module")
def core_results(case):
    models, table, _ = case
    return {kind: ENGINES["core"].run(models, table, kind) for kind in OutputKind}


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_scores_match_native_models(engine, case):
    models, table, expected = case
    got = np.array(ENGINES[engine].run(models, table, OutputKind.SCORE), dtype=np.float64)
    assert len(got) == N_ROWS
    assert_close(got, expected, FLOAT32)  # NaN where expected: a NULL model id gives NULL


@pytest.mark.parametrize("engine", sorted(ENGINES))
@pytest.mark.parametrize("kind", list(OutputKind), ids=lambda k: k.value)
def test_engines_identical_to_core(engine, kind, case, core_results):
    models, table, _ = case
    got = ENGINES[engine].run(models, table, kind)
    want = core_results[kind]
    nulls = [i for i, mid in enumerate(table["model_id"].to_pylist()) if mid is None]
    assert nulls and all(got[i] is None for i in nulls)  # a NULL model id gives NULL
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


# -- behaviour every engine shares ----------------------------------------------------------------
NO_POSITIONAL_CALL = pytest.mark.xfail(
    raises=NotImplementedError,
    reason="Teradata's SCRIPT has no positional call: the script reads the ON query's "
    "columns by name (--columns), so no call can pass too few values",
)
NO_DATE_COLUMN = pytest.mark.xfail(
    raises=TypeError,
    reason="the SCRIPT harness has no Teradata DATE column (SCRIPT would send a DATE as text "
    "in the session's DateForm, and the script reads it as text)",
)


def engines(**marks: pytest.MarkDecorator) -> list:
    """Every engine, with a mark for those named (a strict xfail where one legitimately
    differs); `teradata`'s marks hold for each of its operators (teradata-apply)."""
    return [pytest.param(name, marks=marks.get(name.split("-")[0], ())) for name in sorted(ENGINES)]


@pytest.fixture(scope="module")
def session(request):
    """One session per engine for the module, over a model table of LINEAR_PMML under four
    ids: `lin`, `churn_v2` and `churn_v3` (for suggestions), `m` (replaced by a test)."""
    opened: dict[str, object] = {}
    models = {mid: ModelSpec(LINEAR_PMML) for mid in ("lin", "churn_v2", "churn_v3", "m")}

    def get(engine: str):
        if engine not in opened:
            opened[engine] = ENGINES[engine].session(models)
        return opened[engine]

    yield get
    for s in opened.values():
        s.close()


def linear_rows(model_ids: list[str], **columns: list) -> pa.Table:
    """Rows for LINEAR_PMML (x, z, color), each naming its model; `columns` replaces or adds
    columns."""
    n = len(model_ids)
    data = {
        "model_id": pa.array(model_ids, pa.string()),
        "x": pa.array([1.5 * i for i in range(n)], pa.float64()),
        "z": pa.array([2.0] * n, pa.float64()),
        "color": pa.array(["red", "blue"] * (n // 2) + ["red"] * (n % 2), pa.string()),
    }
    for name, values in columns.items():
        data[name] = pa.array(values)
    return pa.table(data)


def fails(engine_session, table: pa.Table, error: str, args: list[str] | None = None) -> str:
    """The statement fails with byom's `error` (where the engine names the class); returns the
    message."""
    with pytest.raises(ScoringFailed) as info:
        engine_session.run(table, OutputKind.SCORE, args)
    assert info.value.error in (error, None), info.value
    return info.value.message


@pytest.mark.parametrize("engine", engines())
def test_empty_input_gives_no_rows(engine, session):
    table = linear_rows([]).slice(0, 0)
    for kind in OutputKind:
        assert session(engine).run(table, kind) == []


@pytest.mark.parametrize("engine", engines())
def test_replaced_model_is_used_by_next_statement(engine, session, iris, iris_regressor):
    """Same id, new bytes (and a new input map): the next statement scores with them."""
    base = iris.sample(12, random_state=1).reset_index(drop=True)
    three = IRIS_FEATURES[:3]
    table = linear_rows(["m"] * 12, **{c: base[c].to_list() for c in three})
    engine_session = session(engine)
    before = engine_session.run(table, OutputKind.SCORE)
    x, z, color = (table[c].to_numpy(zero_copy_only=False) for c in ("x", "z", "color"))
    assert_close(before, linear_pmml_expected(x, z, color), PMML_DOUBLE)
    engine_session.replace("m", ModelSpec(iris_regressor[1], ",".join(three)))
    after = engine_session.run(table, OutputKind.SCORE)
    assert_close(after, iris_regressor[0].predict(base[three].to_numpy(np.float32)), FLOAT32)


@pytest.mark.parametrize("engine", engines())
def test_unknown_model_id_is_named_with_a_suggestion(engine, session):
    message = fails(session(engine), linear_rows(["churn_v3", "churn_v4"]), "UnknownModelError")
    assert "unknown model id 'churn_v4'" in message
    assert "did you mean 'churn_v3'" in message or "did you mean 'churn_v2', 'churn_v3'" in message


@pytest.mark.parametrize("engine", engines())
def test_missing_column_names_model_and_column(engine, session):
    table = linear_rows(["lin", "lin"]).rename_columns(["model_id", "x", "z", "colour"])
    message = fails(session(engine), table, "MissingColumnError")
    assert "model 'lin' needs input column(s) 'color' (did you mean 'colour'?)" in message
    listed = message.partition("the row has columns ")[2]
    assert all(f"'{c}'" in listed for c in ("model_id", "x", "z", "colour")), message


@pytest.mark.parametrize("engine", engines())
def test_value_of_wrong_type_names_model_column_and_value(engine, session):
    message = fails(session(engine), linear_rows(["lin"] * 2, x=["1.5", "abc"]), "InputTypeError")
    assert "model 'lin': x holds text that is not a number" in message
    assert "holds 'abc'" in message


@pytest.mark.parametrize("engine", engines(teradata=NO_DATE_COLUMN))
def test_date_for_numeric_input_names_model_column_and_type(engine, session):
    table = linear_rows(["lin"], x=[datetime.date(2024, 1, 1)])
    message = fails(session(engine), table, "InputTypeError")
    assert re.search(r"model 'lin': x is of type date32\[day\]", message), message


@pytest.mark.parametrize("engine", engines())
def test_unseen_category_names_model_field_and_value(engine, session):
    """pypmml returns an empty row for an invalid value; byom names the model, field and value."""
    table = linear_rows(["lin"] * 3, color=["red", "green", "blue"])
    message = fails(session(engine), table, "InvalidValueError")
    assert "model 'lin'" in message and "color = 'green'" in message
    assert "'blue', 'red'" in message


@pytest.mark.parametrize("engine", engines(teradata=NO_POSITIONAL_CALL))
def test_wrong_number_of_values_names_the_inputs(engine, session):
    message = fails(session(engine), linear_rows(["lin"] * 2), "ArityError", ["x", "z"])
    assert "takes 3 input value(s) (x, z, color) but the call passes 2" in message


# -- many models in one statement (issue 18) ------------------------------------------------------
N_MANY_ROWS = 3000
#: Input maps shared by several ONNX logistic regressions (different weights): such models are
#: scored together in one pass (a family), which must give what each gives alone.
SHARED_MAPS = ("x=c0,c3,c7", "x=c2,c5,c8,c11")


@pytest.fixture(scope="module")
def many():
    """60 models and 3,000 rows naming them at random (a few NULL ids, a few NULL values):
    30 PMML regressions reading their own fields by name and 4 ONNX logistic regressions with
    their own input maps (tests/many_models.py), and 26 ONNX logistic regressions sharing two
    input maps. The reference: each model scored alone by the core over its own rows.

    Not 60 input maps: Teradata's script takes one input map per SCRIPT call, so the harness
    runs one call (one process per AMP) per input map, about 3 s each here."""
    from many_models import models, onnx_logistic, rows

    generated = models(60)
    pmml = [mid for mid, (_, inputs) in generated.items() if inputs is None]
    onnx = [mid for mid, (_, inputs) in generated.items() if inputs is not None][:4]
    specs = {mid: ModelSpec(*generated[mid]) for mid in [*pmml, *onnx]}
    for k in range(26):
        shared = SHARED_MAPS[k % 2]
        blob = onnx_logistic(1000 + k, len(shared.split(",")))
        specs[f"shared{k}"] = ModelSpec(blob, shared)
    table = rows(list(specs), N_MANY_ROWS, seed=18, nulls=0.03)
    return specs, table, _each_model_alone(specs, table, OutputKind.SCORE)


def _each_model_alone(models: dict[str, ModelSpec], table: pa.Table, kind: OutputKind) -> list:
    """Each model scored by the core over its own rows only, in a model table holding it alone,
    put back in row order (NULL for a NULL id)."""
    from many_models import each_alone

    from byom.scoring import InMemoryModels

    def alone(model_id: str) -> InMemoryModels:
        memory = InMemoryModels()
        memory.add(model_id, models[model_id].blob, models[model_id].inputs)
        return memory

    return each_alone(table, kind, alone)


@pytest.mark.parametrize("engine", engines())
def test_many_models_per_row_equal_each_alone(engine, many):
    """One statement whose rows pick among 60 models (ONNX and PMML, reading different
    columns) at random: every engine gives, exactly, what each model gives scored alone, in
    row order, NULL for a NULL id."""
    models, table, want = many
    ids = table["model_id"].to_pylist()
    assert len({i for i in ids if i is not None}) == len(models) == 60 and None in ids
    assert sum(v is None for v in want) < N_MANY_ROWS // 10 and not any(v != v for v in want)
    got = ENGINES[engine].run(models, table, OutputKind.SCORE)
    assert all(got[k] is None for k, i in enumerate(ids) if i is None)
    assert got == want


MOJO_FIXTURES = Path(__file__).parents[1] / "fixtures" / "mojo"
#: H2O MOJOs (issue 19): a GBM classifier, a DRF of three classes, a GBM regression, a
#: binomial GLM and an H2O XGBoost classifier.
MOJOS = ("gbm_bernoulli", "drf_multinomial", "gbm_gaussian", "glm_binomial", "xgb_binomial")


@pytest.fixture(scope="module")
def mojo_case():
    import csv

    import pyarrow.csv as pcsv

    types = {"c1": pa.string(), "c2": pa.string()}
    data = pcsv.read_csv(
        MOJO_FIXTURES / "data.csv", convert_options=pcsv.ConvertOptions(column_types=types)
    )
    rng = np.random.default_rng(19)
    ids = rng.choice(np.array([*MOJOS, None], dtype=object), data.num_rows, p=[0.18] * 5 + [0.1])
    expected = np.full(data.num_rows, np.nan)
    for name in MOJOS:
        rows = list(csv.reader((MOJO_FIXTURES / f"{name}.csv").open()))[1:]
        if name == "gbm_gaussian":
            value = np.array([float(r[0]) for r in rows])
        elif name in ("gbm_bernoulli", "glm_binomial", "xgb_binomial"):
            value = np.array([float(r[2]) for r in rows])  # P(yes)
        else:
            value = np.array([max(float(x) for x in r[1:]) for r in rows])  # P(predicted)
        expected = np.where(ids == name, value, expected)
    table = data.append_column("model_id", pa.array(ids.tolist(), pa.string()))
    models = {name: ModelSpec((MOJO_FIXTURES / f"{name}.zip").read_bytes()) for name in MOJOS}
    return models, table, expected


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_mojo_models_equal_h2o_in_every_engine(engine, mojo_case):
    """H2O MOJOs, read without a JVM, score as h2o-genmodel's PredictCsv in every engine, and
    every kind of result equals the core's."""
    models, table, expected = mojo_case
    got = np.array(ENGINES[engine].run(models, table, OutputKind.SCORE), dtype=np.float64)
    assert np.array_equal(np.isnan(got), np.isnan(expected))
    ok = ~np.isnan(expected)
    assert np.max(np.abs(got[ok] - expected[ok])) <= 1e-12
    for kind in (OutputKind.PREDICT, OutputKind.JSON):
        want = ENGINES["core"].run(models, table, kind)
        have = ENGINES[engine].run(models, table, kind)
        if kind is OutputKind.JSON:
            want = [None if w is None else json.loads(w) for w in want]
            have = [None if h is None else json.loads(h) for h in have]
        else:
            want, have = [_plain(w) for w in want], [_plain(h) for h in have]
        assert have == want
