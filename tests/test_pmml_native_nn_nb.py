"""Native NeuralNetwork and NaiveBayesModel: agreement with pypmml on generated inputs (NULLs and
unseen categories included), and hand computations for what pypmml cannot check.

Known pypmml differences the generators avoid (the native results follow the PMML spec):
* pypmml does not round `float` fields to float32; generated floats are float32 numbers.
* pypmml's NaiveBayes PoissonDistribution overflows the JVM stack; checked by hand instead.
* pypmml's NaiveBayes predicts NaN when an integer-typed categorical input is NULL (missing
  values are to be ignored) or when every class' density is below the threshold (the threshold
  is to replace it); the generators keep such inputs present and within range.
* Where every class is impossible (probabilities NaN) pypmml still names the first class as the
  label; native predicts no label.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import PMML_DOUBLE, ULPS, assert_close, corpus_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pmml_reference import assert_numbers_agree, predict_both, scorer_pair
from test_pmml_corpus import _read_csv

from byom.errors import InvalidModelError, InvalidValueError, UnsupportedPmmlError
from byom.pmml.scorer import NativePmmlScorer

ACTIVATIONS = ["threshold", "logistic", "tanh", "identity", "exponential", "reciprocal",
               "square", "Gauss", "sine", "cosine", "Elliott", "arctan", "rectifier",
               "radialBasis"]  # fmt: skip

_HIDDEN = [[0.5, -0.25, 0.75], [-1.0, 0.5, 0.125], [0.3, 0.2, -0.6], [0.9, -0.8, 0.05]]


def nn_doc(activation: str, function: str = "regression", norm: str = "none") -> bytes:
    """Inputs x1 (NormContinuous), x2 (float), color (NormDiscrete); a hidden layer of
    `activation`; an identity output mapped back through NormContinuous (regression), or three
    logistic outputs normalized by `norm` (classification)."""
    if function == "regression":
        target = '<DataField name="y" optype="continuous" dataType="double"/>'
    else:
        target = (
            '<DataField name="y" optype="categorical" dataType="string">'
            '<Value value="a"/><Value value="b"/><Value value="c"/></DataField>'
        )
    extra = ""
    if activation == "radialBasis":
        extra = ' width="1.5" altitude="2.0"'
    elif activation == "threshold":
        extra = ' threshold="0.25"'
    hidden = []
    for j, row in enumerate(_HIDDEN):
        cons = "".join(f'<Con from="i{k}" weight="{v}"/>' for k, v in enumerate(row))
        width = ' width="0.75"' if activation == "radialBasis" and j == 0 else ""
        hidden.append(f'<Neuron id="h{j}" bias="{0.1 * (j - 1)}"{width}>{cons}</Neuron>')
    if function == "regression":
        cons = "".join(f'<Con from="h{j}" weight="{0.3 * (j + 1) * (-1) ** j}"/>' for j in range(4))
        # A skip connection from an input straight to the output layer.
        out_layer = (
            '<NeuralLayer activationFunction="identity"><Neuron id="o0" bias="0.2">'
            f'{cons}<Con from="i0" weight="0.05"/></Neuron></NeuralLayer>'
        )
        outputs = (
            '<NeuralOutput outputNeuron="o0"><DerivedField optype="continuous" '
            'dataType="double"><NormContinuous field="y"><LinearNorm orig="10" norm="-1"/>'
            '<LinearNorm orig="30" norm="1"/></NormContinuous></DerivedField></NeuralOutput>'
        )
    else:
        neurons = "".join(
            f'<Neuron id="o{c}" bias="{0.1 * c}">'
            + "".join(f'<Con from="h{j}" weight="{0.2 * (j + 1) - 0.3 * c}"/>' for j in range(4))
            + "</Neuron>"
            for c in range(3)
        )
        out_layer = (
            f'<NeuralLayer activationFunction="logistic" normalizationMethod="{norm}">'
            f"{neurons}</NeuralLayer>"
        )
        outputs = "".join(
            f'<NeuralOutput outputNeuron="o{c}"><DerivedField optype="categorical" '
            f'dataType="string"><NormDiscrete field="y" value="{v}"/></DerivedField>'
            "</NeuralOutput>"
            for c, v in enumerate("abc")
        )
    return f"""<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header/>
  <DataDictionary>
    <DataField name="x1" optype="continuous" dataType="double"/>
    <DataField name="x2" optype="continuous" dataType="float"/>
    <DataField name="color" optype="categorical" dataType="string">
      <Value value="red"/><Value value="blue"/>
    </DataField>
    {target}
  </DataDictionary>
  <NeuralNetwork functionName="{function}" activationFunction="{activation}"{extra}>
    <MiningSchema>
      <MiningField name="x1"/><MiningField name="x2"/><MiningField name="color"/>
      <MiningField name="y" usageType="target"/>
    </MiningSchema>
    <NeuralInputs>
      <NeuralInput id="i0"><DerivedField optype="continuous" dataType="double">
        <NormContinuous field="x1"><LinearNorm orig="0" norm="0"/><LinearNorm orig="10" norm="1"/>
        </NormContinuous></DerivedField></NeuralInput>
      <NeuralInput id="i1"><DerivedField optype="continuous" dataType="double">
        <FieldRef field="x2"/></DerivedField></NeuralInput>
      <NeuralInput id="i2"><DerivedField optype="continuous" dataType="double">
        <NormDiscrete field="color" value="red"/></DerivedField></NeuralInput>
    </NeuralInputs>
    <NeuralLayer>{"".join(hidden)}</NeuralLayer>
    {out_layer}
    <NeuralOutputs>{outputs}</NeuralOutputs>
  </NeuralNetwork>
</PMML>""".encode()


def _counts(pairs: dict[str, tuple[int, int, int]]) -> str:
    return "".join(
        f'<PairCounts value="{v}"><TargetValueCounts>'
        + "".join(
            f'<TargetValueCount value="{c}" count="{n}"/>'
            for c, n in zip(("no", "yes", "maybe"), counts, strict=True)
        )
        + "</TargetValueCounts></PairCounts>"
        for v, counts in pairs.items()
    )


def nb_doc(poisson: bool = False, discretize: bool = False) -> bytes:
    """Gaussian `age`, categorical `color` (string) and `size` (integer) with zero counts, and
    optionally Poisson `visits` or a Discretize of `age` into bins."""
    gauss = "".join(
        f'<TargetValueStat value="{c}"><GaussianDistribution mean="{m}" variance="{v}"/>'
        "</TargetValueStat>"
        for c, m, v in (("no", 30, 25), ("yes", 45, 100), ("maybe", 38, 9))
    )
    inputs = (
        f'<BayesInput fieldName="age"><TargetValueStats>{gauss}</TargetValueStats></BayesInput>'
    )
    if poisson:
        stats = "".join(
            f'<TargetValueStat value="{c}"><PoissonDistribution mean="{m}"/></TargetValueStat>'
            for c, m in (("no", 2.5), ("yes", 6), ("maybe", 4))
        )
        inputs += (
            f'<BayesInput fieldName="visits"><TargetValueStats>{stats}</TargetValueStats>'
            "</BayesInput>"
        )
    if discretize:
        inputs += (
            '<BayesInput fieldName="age"><DerivedField optype="categorical" dataType="string">'
            '<Discretize field="age"><DiscretizeBin binValue="young"><Interval closure='
            '"openOpen" rightMargin="35"/></DiscretizeBin><DiscretizeBin binValue="old">'
            '<Interval closure="closedOpen" leftMargin="35"/></DiscretizeBin></Discretize>'
            "</DerivedField>" + _counts({"young": (12, 5, 2), "old": (4, 22, 5)}) + "</BayesInput>"
        )
    inputs += '<BayesInput fieldName="color">'
    inputs += _counts({"red": (10, 0, 3), "blue": (5, 20, 4), "green": (1, 7, 0)})
    inputs += '</BayesInput><BayesInput fieldName="size">'
    inputs += _counts({"1": (8, 2, 1), "2": (4, 12, 5), "3": (4, 13, 1)}) + "</BayesInput>"
    return f"""<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header/>
  <DataDictionary>
    <DataField name="age" optype="continuous" dataType="double"/>
    <DataField name="visits" optype="continuous" dataType="integer"/>
    <DataField name="color" optype="categorical" dataType="string">
      <Value value="red"/><Value value="blue"/><Value value="green"/>
    </DataField>
    <DataField name="size" optype="categorical" dataType="integer">
      <Value value="1"/><Value value="2"/><Value value="3"/>
    </DataField>
    <DataField name="y" optype="categorical" dataType="string">
      <Value value="no"/><Value value="yes"/><Value value="maybe"/>
    </DataField>
  </DataDictionary>
  <NaiveBayesModel functionName="classification" threshold="0.001">
    <MiningSchema>
      <MiningField name="age"/>{'<MiningField name="visits"/>' if poisson else ""}
      <MiningField name="color"/><MiningField name="size"/>
      <MiningField name="y" usageType="target"/>
    </MiningSchema>
    <BayesInputs>{inputs}</BayesInputs>
    <BayesOutput fieldName="y"><TargetValueCounts>
      <TargetValueCount value="no" count="16"/><TargetValueCount value="yes" count="27"/>
      <TargetValueCount value="maybe" count="7"/>
    </TargetValueCounts></BayesOutput>
  </NaiveBayesModel>
</PMML>""".encode()


# ----------------------------------------------------------------------------- vs pypmml


def _agree(blob: bytes, rows: list[dict[str, object]]) -> None:
    both = predict_both(blob, rows)
    if both is None:
        return
    a, b = both
    if assert_numbers_agree(a, b, PMML_DOUBLE):
        return
    assert a.probabilities is not None and b.probabilities is not None
    none = np.isnan(b.probabilities).all(axis=1)
    mine, theirs = a.labels.to_pylist(), b.labels.to_pylist()
    assert [m for m, skip in zip(mine, none, strict=True) if not skip] == [
        t for t, skip in zip(theirs, none, strict=True) if not skip
    ]
    assert all(m is None for m, skip in zip(mine, none, strict=True) if skip)


_settings = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_f32 = st.floats(-20, 20, width=32)


@_settings
@given(
    st.sampled_from(ACTIVATIONS),
    st.sampled_from([("regression", "none"), ("classification", "softmax"),
                     ("classification", "simplemax"), ("classification", "none")]),
    st.lists(
        st.fixed_dictionaries(
            {
                "x1": st.one_of(st.none(), _f32),
                "x2": st.one_of(st.none(), _f32),
                "color": st.sampled_from(["red", "blue", None, "purple"]),
            }
        ),
        min_size=1,
        max_size=15,
    ),
)  # fmt: skip
def test_network_agrees_with_pypmml(activation, kind, rows):
    _agree(nn_doc(activation, *kind), rows)


_CORPUS_MODELS = [
    "knime__NeuralNetworkIris",
    "rapidminer__NeuralNetworkIris",
    "rattle__NeuralNetworkAudit",
    "rattle__NeuralNetworkAuto",
    "rattle__NeuralNetworkIris",
    "rattle__NaiveBayesAudit",
    "rattle__NaiveBayesIris",
]


@_settings
@given(st.sampled_from(_CORPUS_MODELS), st.data())
def test_corpus_models_agree_with_pypmml(name, data):
    folder = corpus_dir() / name
    blob = (folder / "model.pmml").read_bytes()
    native, _ = scorer_pair(blob)
    table = _read_csv(folder / "input.csv")
    strategies = {}
    for i in native.inputs:
        if i.type == "string":
            values = sorted(set(i.categories) | {"unseen"})
            strategies[i.name] = st.one_of(st.none(), st.sampled_from(values))
        else:  # within the training data's range: far outside, every density underflows
            column = table.column(i.name).to_numpy(zero_copy_only=False).astype(np.float64)
            low, high = float(np.nanmin(column)), float(np.nanmax(column))
            strategies[i.name] = st.one_of(st.none(), st.floats(low, high))
    rows = data.draw(st.lists(st.fixed_dictionaries(strategies), min_size=1, max_size=15))
    _agree(blob, rows)


@_settings
@given(
    st.booleans(),
    st.lists(
        st.fixed_dictionaries(
            {
                "age": st.one_of(st.none(), st.floats(0, 120)),
                "color": st.sampled_from(["red", "blue", "green", None, "purple"]),
                "size": st.sampled_from(["1", "2", "3"]),  # pypmml: NULL makes all NaN
            }
        ),
        min_size=1,
        max_size=15,
    ),
)
def test_naive_bayes_agrees_with_pypmml(discretize, rows):
    _agree(nb_doc(discretize=discretize), rows)


# ----------------------------------------------------------------------------- by hand


def _log_gauss(x: float, mean: float, variance: float) -> float:
    return -0.5 * (x - mean) ** 2 / variance - 0.5 * math.log(2 * math.pi * variance)


def test_naive_bayes_poisson_and_missing_by_hand():
    scorer = NativePmmlScorer(nb_doc(poisson=True))
    features = {
        "age": np.array([31.0, np.nan, 1e6]),
        "visits": np.array([4.0, 7.0, np.nan]),
        "color": np.array(["red", None, "green"], dtype=object),
        "size": np.array(["2", "1", None], dtype=object),
    }
    pred = scorer.predict(features, 3)
    classes = ("no", "yes", "maybe")
    prior = {"no": 16, "yes": 27, "maybe": 7}
    gauss = {"no": (30, 25), "yes": (45, 100), "maybe": (38, 9)}
    poisson = {"no": 2.5, "yes": 6.0, "maybe": 4.0}
    color = {"red": (10, 0, 3), "green": (1, 7, 0)}
    color_sums = (16, 27, 7)
    size = {"1": (8, 2, 1), "2": (4, 12, 5)}
    size_sums = (16, 27, 7)

    def expected(age, visits, c, s):
        logs = []
        for j, k in enumerate(classes):
            total = math.log(prior[k])
            if age is not None:
                total += math.log(max(math.exp(_log_gauss(age, *gauss[k])), 0.001))
            if visits is not None:
                m, v = poisson[k], int(visits)
                total += math.log(max(math.exp(v * math.log(m) - m - math.lgamma(v + 1)), 0.001))
            if c is not None:
                count = color[c][j]
                total += math.log(count / color_sums[j] if count else 0.001)
            if s is not None:
                total += math.log(size[s][j] / size_sums[j])
            logs.append(total)
        top = max(logs)
        e = [math.exp(v - top) for v in logs]
        return [v / sum(e) for v in e]

    want = [
        expected(31.0, 4.0, "red", "2"),
        expected(None, 7.0, None, "1"),  # NULLs add nothing
        expected(1e6, None, "green", None),  # density 0: the threshold replaces it
    ]
    assert_close(pred.probabilities, want, PMML_DOUBLE)
    assert pred.labels.to_pylist() == [classes[int(np.argmax(w))] for w in want]
    # 7.9 is no value of an integer field: refused, not truncated (pypmml truncates to 7).
    with pytest.raises(InvalidValueError, match="visits"):
        scorer.predict({**features, "visits": np.array([4.0, 7.9, np.nan])}, 3)


def test_radial_basis_by_hand():
    scorer = NativePmmlScorer(nn_doc("radialBasis"))
    x1, x2 = 4.0, -1.5
    inputs = [x1 / 10, x2, 1.0]  # color red
    hidden = []
    for j, row in enumerate(_HIDDEN):
        width = 0.75 if j == 0 else 1.5
        z = sum((v - w) ** 2 for v, w in zip(inputs, row, strict=True))
        hidden.append(math.exp(len(row) * math.log(2.0) - z / (2 * width**2)))
    out = 0.2 + sum(0.3 * (j + 1) * (-1) ** j * h for j, h in enumerate(hidden)) + 0.05 * inputs[0]
    want = 10 + (out + 1) * 10  # NormContinuous -1..1 back to 10..30
    features = {"x1": np.array([x1]), "x2": np.array([x2]), "color": np.array(["red"], object)}
    assert_close(scorer.predict(features, 1).value, [want], ULPS)


def test_knime_network_sums_in_document_order():
    """KNIME's expected probabilities hold to 1e-15 only when each neuron sums its
    connections in the document's order."""
    folder = corpus_dir() / "knime__NeuralNetworkIris"
    scorer = NativePmmlScorer((folder / "model.pmml").read_bytes())
    table = _read_csv(folder / "input.csv")
    features = {i.name: table.column(i.name).to_numpy() for i in scorer.inputs}
    pred = scorer.predict(features, table.num_rows)
    expected = _read_csv(folder / "expected.csv")
    for j, c in enumerate(scorer.classes):
        want = expected.column(f"P (Species={c})").to_numpy()
        np.testing.assert_allclose(pred.probabilities[:, j], want, rtol=1e-15, atol=1e-15)


def test_unknown_activation_is_unsupported():
    doc = nn_doc("logistic").replace(b'activationFunction="logistic"', b'activationFunction="x"')
    with pytest.raises(UnsupportedPmmlError, match='activationFunction="x"'):
        NativePmmlScorer(doc)


def test_connection_from_a_later_neuron_refused():
    doc = nn_doc("logistic").replace(
        b'<Con from="i0" weight="0.5"/>', b'<Con from="o0" weight="1"/>'
    )
    with pytest.raises(InvalidModelError, match="comes from 'o0'"):
        NativePmmlScorer(doc)
