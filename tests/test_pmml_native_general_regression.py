"""The native GeneralRegressionModel (byom.pmml.models.general_regression): agreement with pypmml
on generated inputs, hand-checked values where pypmml is wrong, and refused documents.

Where pypmml is wrong (so only hand computations are checked):
* CoxRegression: see rattle__CoxRegressionLung in the corpus (it ignores the baseline lookup).
* ordinalMultinomial with cumulativeLink="loglog" (negative probabilities) or an offset (ignored).
* a missing predictor: PMML evaluators (JPMML, R's predict) give no prediction; pypmml drops a
  missing factor's terms and answers a label without probabilities for a missing covariate.
  Rows with a NULL input are only checked to hold a NULL.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import PMML_DOUBLE, ULPS, assert_close, corpus_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pmml_reference import row_features, scorer_pair

from byom.errors import InvalidModelError, InvalidValueError, UnsupportedPmmlError
from byom.pmml.scorer import NativePmmlScorer


def _agree(blob: bytes, rows: list[dict[str, object]]) -> None:
    """Same predictions (both raise InvalidValueError, or agree); rows with a NULL input must
    have no native prediction and are not given to pypmml."""
    native, jvm = scorer_pair(blob)
    n = len(rows)
    try:
        a = native.predict(row_features(native, rows), n)
    except InvalidValueError:
        with pytest.raises(InvalidValueError):
            jvm.predict(row_features(native, rows), n)
        return
    complete = np.array([all(v is not None for v in r.values()) for r in rows])
    kept = [r for r, keep in zip(rows, complete, strict=True) if keep]
    if a.value is not None:
        assert np.isnan(a.value[~complete]).all()
    else:
        labels = a.labels.to_pylist()
        assert all(labels[i] is None for i in np.flatnonzero(~complete))
        assert a.probabilities is not None and np.isnan(a.probabilities[~complete]).all()
    if not kept:
        return
    b = jvm.predict(row_features(native, kept), len(kept))
    if a.value is not None:
        assert b.value is not None
        assert_close(a.value[complete], b.value, PMML_DOUBLE)
        return
    assert b.probabilities is not None
    assert list(a.classes) == list(b.classes)
    mine = [v for v, keep in zip(a.labels.to_pylist(), complete, strict=True) if keep]
    theirs = b.labels.to_pylist()
    proba = a.probabilities[complete]
    for i in range(len(kept)):
        assert_close(proba[i], b.probabilities[i], PMML_DOUBLE)
        if np.ptp(np.sort(proba[i])[-2:]) > 1e-9:  # ties may break either way
            assert mine[i] == theirs[i]


# ----------------------------------------------------------------------------- corpus models

CORPUS_MODELS = [
    "rattle__GeneralRegressionAudit",  # generalizedLinear logit, factors + covariates
    "rattle__GeneralRegressionVersicolor",  # generalizedLinear probit
    "rattle__GeneralRegressionAuto",  # generalizedLinear identity, numeric-looking factors
    "knime__GeneralRegressionAudit",  # multinomialLogistic, 2 classes
    "knime__GeneralRegressionIris",  # multinomialLogistic, 3 classes
    "knime__GeneralRegressionAuto",  # generalLinear
]


@pytest.mark.parametrize("name", CORPUS_MODELS)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_corpus_model_agrees_with_pypmml(name, data):
    blob = (corpus_dir() / name / "model.pmml").read_bytes()
    native, _ = scorer_pair(blob)
    strategies = {}
    for _, spec in native.plan.inputs:
        if spec.valid:  # declared categories, an unseen one, NULL
            strategies[spec.name] = st.one_of(
                st.none(), st.sampled_from(spec.valid), st.just("unseen-category")
            )
        else:
            low, high, _, _ = spec.intervals[0] if spec.intervals else (-50.0, 5000.0, 1, 1)
            number = (
                st.integers(math.ceil(low), math.floor(high)).map(float)
                if spec.data_type == "integer"  # whole numbers: pypmml truncates the others
                else st.floats(low, high)
            )
            strategies[spec.name] = st.one_of(st.none(), number)
    rows = data.draw(st.lists(st.fixed_dictionaries(strategies), min_size=1, max_size=15))
    _agree(blob, rows)


# ----------------------------------------------------------------------------- hand-written


def grm_doc(
    model_type: str = "generalizedLinear",
    function: str = "regression",
    attrs: str = "",
    classes: tuple[str, ...] = (),
    pcells: str | None = None,
) -> bytes:
    """y ~ 1 + x + x^2 + [color=red] + x*[color=blue] + z."""
    target = (
        '<DataField name="y" optype="categorical" dataType="string">'
        + "".join(f'<Value value="{c}"/>' for c in classes)
        + "</DataField>"
        if classes
        else '<DataField name="y" optype="continuous" dataType="double"/>'
    )
    if pcells is None:
        pcells = _pcells(None, [0.5, 0.3, -0.1, 0.7, 0.2, -0.4])
    return f"""<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header/>
  <DataDictionary>
    <DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="z" optype="continuous" dataType="double"/>
    <DataField name="color" optype="categorical" dataType="string">
      <Value value="red"/><Value value="green"/><Value value="blue"/>
    </DataField>
    {target}
  </DataDictionary>
  <GeneralRegressionModel modelType="{model_type}" functionName="{function}" {attrs}>
    <MiningSchema>
      <MiningField name="x"/><MiningField name="z"/><MiningField name="color"/>
      <MiningField name="y" usageType="target"/>
    </MiningSchema>
    <ParameterList>
      <Parameter name="p0"/><Parameter name="p1"/><Parameter name="p2"/>
      <Parameter name="p3"/><Parameter name="p4"/><Parameter name="p5"/>
    </ParameterList>
    <FactorList><Predictor name="color"/></FactorList>
    <CovariateList><Predictor name="x"/><Predictor name="z"/></CovariateList>
    <PPMatrix>
      <PPCell value="1" predictorName="x" parameterName="p1"/>
      <PPCell value="2" predictorName="x" parameterName="p2"/>
      <PPCell value="red" predictorName="color" parameterName="p3"/>
      <PPCell value="1" predictorName="x" parameterName="p4"/>
      <PPCell value="blue" predictorName="color" parameterName="p4"/>
      <PPCell value="1" predictorName="z" parameterName="p5"/>
    </PPMatrix>
    <ParamMatrix>{pcells}</ParamMatrix>
  </GeneralRegressionModel>
</PMML>""".encode()


def _pcells(category: str | None, betas: list[float]) -> str:
    target = f'targetCategory="{category}" ' if category is not None else ""
    return "".join(f'<PCell {target}parameterName="p{i}" beta="{b}"/>' for i, b in enumerate(betas))


def _eta(x: float, z: float, color: str, betas: list[float]) -> float:
    red, blue = float(color == "red"), float(color == "blue")
    terms = [1.0, x, x * x, red, x * blue, z]
    return sum(b * t for b, t in zip(betas, terms, strict=True))


_ORDINAL = (
    '<PCell targetCategory="a" parameterName="p0" beta="-0.5"/>'
    '<PCell targetCategory="b" parameterName="p0" beta="0.8"/>'
    '<PCell parameterName="p1" beta="0.3"/><PCell parameterName="p3" beta="0.6"/>'
    '<PCell parameterName="p5" beta="-0.2"/>'
)
ABC = ("a", "b", "c")

HAND_DOCS = {
    **{
        f"link-{link}": grm_doc(attrs=f'linkFunction="{link}"')
        for link in ("identity", "log", "logit", "probit", "cloglog", "loglog", "logc")
    },
    "link-power-half": grm_doc(attrs='linkFunction="power" linkParameter="0.5"'),
    "link-power-minus1": grm_doc(attrs='linkFunction="power" linkParameter="-1"'),
    "link-power-0": grm_doc(attrs='linkFunction="power" linkParameter="0"'),
    "link-oddspower": grm_doc(attrs='linkFunction="oddspower" linkParameter="0.5"'),
    "link-oddspower-0": grm_doc(attrs='linkFunction="oddspower" linkParameter="0"'),
    "link-negbin": grm_doc(attrs='linkFunction="negbin" distParameter="2"'),
    "offset-value": grm_doc(attrs='linkFunction="log" offsetValue="0.25"'),
    "offset-variable": grm_doc(attrs='linkFunction="log" offsetVariable="z"'),
    "trials-value": grm_doc(attrs='linkFunction="logit" trialsValue="3"'),
    "regression": grm_doc(model_type="regression"),
    "general-linear": grm_doc(model_type="generalLinear"),
    "binomial-cloglog": grm_doc(
        function="classification",
        classes=("a", "b"),
        attrs='linkFunction="cloglog" distribution="binomial"',
        pcells=_pcells("b", [0.1, 0.3, -0.2, 0.5, 0.1, -0.3]),
    ),
    "multinomial": grm_doc(
        model_type="multinomialLogistic",
        function="classification",
        classes=ABC,
        pcells=_pcells("a", [0.1, 0.3, -0.2, 0.5, 0.1, -0.3])
        + _pcells("c", [-0.4, 0.2, 0.1, -0.6, 0.3, 0.2]),
    ),
    **{
        f"ordinal-{link}": grm_doc(
            model_type="ordinalMultinomial",
            function="classification",
            classes=ABC,
            pcells=_ORDINAL,
            attrs=f'cumulativeLink="{link}"',
        )
        for link in ("logit", "probit", "cloglog", "cauchit")
    },
}

_hand_values = st.one_of(st.none(), st.floats(-3, 3, width=32))


@pytest.mark.parametrize("name", sorted(HAND_DOCS))
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "x": _hand_values,
                "z": _hand_values,
                "color": st.one_of(st.none(), st.sampled_from(["red", "green", "blue", "pink"])),
            }
        ),
        min_size=1,
        max_size=12,
    )
)
def test_hand_written_model_agrees_with_pypmml(name, rows):
    _agree(HAND_DOCS[name], rows)


def _predict(blob: bytes, x: list, z: list, color: list):
    scorer = NativePmmlScorer(blob)
    features = {
        "x": np.array(x, np.float64),
        "z": np.array(z, np.float64),
        "color": np.array(color, dtype=object),
    }
    return scorer.predict(features, len(x))


X, Z, COLOR = [0.5, -1.25, 2.0, 0.0], [1.0, -0.5, 0.25, 2.0], ["red", "blue", "green", "blue"]


@pytest.mark.parametrize("link", ["loglog", "logit"])
@pytest.mark.parametrize("offset", [None, 0.3])
def test_ordinal_by_hand(link, offset):
    """pypmml gets loglog (negative probabilities) and offsets (ignored) wrong here."""
    attrs = f'cumulativeLink="{link}"' + (f' offsetValue="{offset}"' if offset else "")
    doc = grm_doc("ordinalMultinomial", "classification", attrs, ABC, _ORDINAL)
    pred = _predict(doc, X, Z, COLOR)
    inverse = {
        "loglog": lambda e: math.exp(-math.exp(-e)),
        "logit": lambda e: 1 / (1 + math.exp(-e)),
    }[link]
    for i in range(len(X)):
        shared = _eta(X[i], Z[i], COLOR[i], [0, 0.3, 0, 0.6, 0, -0.2]) + (offset or 0)
        first, second = inverse(-0.5 + shared), inverse(0.8 + shared)
        want = [first, second - first, 1 - second]
        assert_close(pred.probabilities[i], want, ULPS)
        assert pred.labels[i].as_py() == ABC[int(np.argmax(want))]


def test_cauchit_link_by_hand():
    # pypmml does not know linkFunction="cauchit" (a cumulativeLink in PMML 4.4)
    betas = [0.5, 0.3, -0.1, 0.7, 0.2, -0.4]
    pred = _predict(grm_doc(attrs='linkFunction="cauchit"'), X, Z, COLOR)
    want = [0.5 + math.atan(_eta(*row, betas)) / math.pi for row in zip(X, Z, COLOR, strict=True)]
    assert_close(pred.value, want, ULPS)


def test_missing_predictor_gives_no_prediction():
    betas = [0.5, 0.3, -0.1, 0.7, 0.2, -0.4]
    pred = _predict(
        grm_doc(model_type="regression"),
        [np.nan, 1.0, 1.0, np.nan],
        [0.0, np.nan, 0.0, 0.0],
        ["red", "red", None, "red"],
    )
    assert np.isnan(pred.value).all()
    # x is not needed where the factor it is multiplied with is 0 ... but x alone is needed.
    full = _predict(grm_doc(model_type="regression"), [1.0], [0.0], ["green"])
    assert_close(full.value, [_eta(1.0, 0.0, "green", betas)], ULPS)


def test_covariate_exponent_and_interaction():
    betas = [0.0, 0.0, 1.0, 0.0, 1.0, 0.0]  # x^2 + x*[blue]
    doc = grm_doc(model_type="regression", pcells=_pcells(None, betas))
    pred = _predict(doc, [3.0, 3.0, -2.0], [0.0, 0.0, 0.0], ["red", "blue", "blue"])
    assert_close(pred.value, [9.0, 12.0, 2.0], ULPS)


# ----------------------------------------------------------------------------- Cox


def cox_doc(strata: bool = True) -> bytes:
    tables = (
        """<BaseCumHazardTables>
      <BaselineStratum value="A" maxTime="100">
        <BaselineCell time="10" cumHazard="0.1"/><BaselineCell time="30" cumHazard="0.4"/>
        <BaselineCell time="20" cumHazard="0.25"/>
      </BaselineStratum>
      <BaselineStratum value="B" maxTime="50">
        <BaselineCell time="5" cumHazard="0.2"/>
      </BaselineStratum>
    </BaseCumHazardTables>"""
        if strata
        else """<BaseCumHazardTables maxTime="40">
      <BaselineCell time="10" cumHazard="0.1"/><BaselineCell time="30" cumHazard="0.4"/>
    </BaseCumHazardTables>"""
    )
    strata_attr = 'baselineStrataVariable="s"' if strata else ""
    return f"""<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header/>
  <DataDictionary>
    <DataField name="age" optype="continuous" dataType="double"/>
    <DataField name="g" optype="categorical" dataType="integer">
      <Value value="1"/><Value value="2"/>
    </DataField>
    <DataField name="t" optype="continuous" dataType="double"/>
    <DataField name="s" optype="categorical" dataType="string">
      <Value value="A"/><Value value="B"/><Value value="C"/>
    </DataField>
    <DataField name="h" optype="continuous" dataType="double"/>
  </DataDictionary>
  <GeneralRegressionModel modelType="CoxRegression" functionName="regression"
      endTimeVariable="t" {strata_attr}>
    <MiningSchema>
      <MiningField name="age"/><MiningField name="g"/><MiningField name="t"/>
      <MiningField name="s"/><MiningField name="h" usageType="predicted"/>
    </MiningSchema>
    <Output>
      <OutputField name="hazard" feature="predictedValue"/>
    </Output>
    <ParameterList>
      <Parameter name="p0" referencePoint="50"/><Parameter name="p1" referencePoint="0.4"/>
    </ParameterList>
    <FactorList><Predictor name="g"/></FactorList>
    <CovariateList><Predictor name="age"/></CovariateList>
    <PPMatrix>
      <PPCell value="1" predictorName="age" parameterName="p0"/>
      <PPCell value="2" predictorName="g" parameterName="p1"/>
    </PPMatrix>
    <ParamMatrix>
      <PCell parameterName="p0" beta="0.02"/><PCell parameterName="p1" beta="0.5"/>
    </ParamMatrix>
    {tables}
  </GeneralRegressionModel>
</PMML>""".encode()


def test_cox_by_hand():
    scorer = NativePmmlScorer(cox_doc())
    age = [60.0, 60.0, 40.0, 60.0, 60.0, 60.0, 60.0, np.nan, 60.0]
    g = [1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0]
    t = [25.0, 30.0, 5.0, 101.0, 9.0, 5.0, 60.0, 3.0, np.nan]
    s = ["A", "A", "A", "A", "A", "B", "B", "A", "A"]
    features = {
        "age": np.array(age),
        "g": np.array(g),
        "t": np.array(t),
        "s": np.array(s, dtype=object),
    }
    pred = scorer.predict(features, len(age))
    reference = 0.02 * 50 + 0.5 * 0.4

    def hazard(a, group, h0):
        return h0 * math.exp(0.02 * a + 0.5 * (group == 2) - reference)

    want = [
        hazard(60, 1, 0.25),  # the cell at 20 (cells are sorted by time)
        hazard(60, 2, 0.4),  # exactly at a cell's time
        hazard(40, 2, 0.0),  # before the first cell: 0
        np.nan,  # after the stratum's maxTime
        0.0,  # before the first cell
        hazard(60, 2, 0.2),
        np.nan,  # after stratum B's maxTime
        0.0,  # before the first cell: 0 whatever the covariates
        np.nan,  # no time
    ]
    assert_close(pred.value, want, ULPS)


def test_cox_unknown_stratum_and_single_table():
    scorer = NativePmmlScorer(cox_doc())
    features = {
        "age": np.array([60.0, 60.0]),
        "g": np.array([1.0, 1.0]),
        "t": np.array([20.0, 20.0]),
        "s": np.array(["C", None], dtype=object),
    }
    assert np.isnan(scorer.predict(features, 2).value).all()
    single = NativePmmlScorer(cox_doc(strata=False))
    features["t"] = np.array([35.0, 45.0])
    value = single.predict(features, 2).value
    assert_close(value, [0.4 * math.exp(0.02 * 60 - 1.2), np.nan], PMML_DOUBLE)


# ----------------------------------------------------------------------------- refused


@pytest.mark.parametrize(
    ("doc", "error", "match"),
    [
        (grm_doc(model_type="fancy"), UnsupportedPmmlError, 'modelType="fancy"'),
        (grm_doc(attrs='linkFunction="power"'), InvalidModelError, "no linkParameter"),
        (grm_doc(attrs='linkFunction="negbin"'), InvalidModelError, "no distParameter"),
        (grm_doc(), InvalidModelError, "no linkFunction"),
        (
            grm_doc(function="classification", classes=("a", "b"), attrs='linkFunction="logit"'),
            InvalidModelError,
            "no single category without ParamMatrix cells",
        ),
        (
            grm_doc(model_type="regression").replace(b'<Predictor name="z"/>', b""),
            InvalidModelError,
            "in no FactorList or CovariateList",
        ),
        (
            grm_doc(model_type="regression", function="classification", classes=ABC),
            InvalidModelError,
            "for classification",
        ),
        (
            cox_doc().replace(b'maxTime="50"', b""),
            InvalidModelError,
            "has no maxTime",
        ),
    ],
    ids=[
        "model-type",
        "power-parameter",
        "negbin-parameter",
        "no-link",
        "no-reference",
        "unlisted-predictor",
        "regression-classifier",
        "no-max-time",
    ],
)
def test_refused(doc, error, match):
    with pytest.raises(error, match=match):
        NativePmmlScorer(doc)
