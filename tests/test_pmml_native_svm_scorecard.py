"""byom's native SupportVectorMachineModel and Scorecard: the corpus SVMs and hand-written
documents against pypmml on generated inputs (NULLs, unseen categories), and hand-computed
scorecard results (scores, reason-code ranking)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import PMML_DOUBLE, ULPS, assert_close, corpus_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pmml_reference import predict_both, row_features, scorer_pair

from byom.errors import InvalidModelError
from byom.pmml.scope import Scope
from byom.pmml.scorer import NativePmmlScorer

_FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_float32 = st.one_of(st.none(), st.floats(-25, 25, allow_nan=False, width=32))


def _both(blob: bytes, rows: list[dict[str, object]]):
    """Native and pypmml predictions, and the native votes per row and category (one-against-
    one SVMs; else None), or three Nones where both raise InvalidValueError."""
    both = predict_both(blob, rows)
    if both is None:
        return None, None, None
    native, _ = scorer_pair(blob)
    return *both, _votes(native, row_features(native, rows), len(rows))


def _votes(native: NativePmmlScorer, features: dict[str, np.ndarray], n: int):
    model = native.plan.model
    if not getattr(model, "voting", False):
        return None
    scope = Scope(n, native.plan.prepare(features, n), model.local, model.treatments)
    values, missing = model.decision_values(scope)
    votes = np.zeros((n, len(model.categories)))
    for j, m in enumerate(model.machines):
        first = values[:, j] > m.threshold if model.max_wins else values[:, j] < m.threshold
        votes[:, model.categories.index(m.target)] += first
        votes[:, model.categories.index(m.alternate)] += ~first
    votes[missing] = np.nan
    return votes, model.categories


def _agree_classes(a, b, votes) -> None:
    """Same probabilities (vote shares) and labels; a tie of votes goes to the first class
    listed (PMML) where pypmml picks by its hash map's order, so tied rows compare votes only."""
    # A binary model without classificationMethod: pypmml reports no probabilities where the
    # native scorer gives the vote shares (1 / 0), as JPMML does (rattle__KernlabSVMAudit).
    if b.probabilities is not None:
        assert_close(a.probabilities, b.probabilities, PMML_DOUBLE)  # pypmml's None: NaN
    mine, theirs = a.labels.to_pylist(), b.labels.to_pylist()
    for i, (x, y) in enumerate(zip(mine, theirs, strict=True)):
        v = votes[0][i] if votes is not None else None
        if v is not None and not np.isnan(v).any() and (v == v.max()).sum() > 1:
            tied = [c for c, k in zip(votes[1], v, strict=True) if k == v.max()]
            assert x == tied[0] and y in tied, i
            continue
        assert x == y, i


# ----------------------------------------------------------------------------- SVM: hand-written

KERNELS = {
    "linear": "<LinearKernelType/>",
    "poly": '<PolynomialKernelType gamma="0.7" coef0="0.3" degree="3"/>',
    "rbf": '<RadialBasisKernelType gamma="0.9"/>',
    "sigmoid": '<SigmoidKernelType gamma="0.4" coef0="-0.1"/>',
}
_MACHINES = {
    "OneAgainstAll": [("a", None, "0.1"), ("b", None, "-0.2"), ("c", None, "0.05")],
    "OneAgainstOne": [("a", "b", "0.1"), ("a", "c", "-0.2"), ("b", "c", "0.05")],
    "binary": [("a", "b", "0.1")],
    "regression": [(None, None, "1.5")],
}
_COEFFICIENTS = ["0.5 -1.25 0.75", "-0.4 0.9 -0.3", "1.1 0.2 -0.6"]


def svm_doc(
    kernel: str = "rbf",
    method: str = "OneAgainstAll",
    max_wins: bool = False,
    representation: str = "SupportVectors",
) -> bytes:
    """Three vector fields: a derived field, a float field and a CategoricalPredictor; vectors
    as REAL-SparseArray and dense Array."""
    regression = method == "regression"
    machines = []
    for i, (target, alternate, b) in enumerate(_MACHINES[method]):
        attrs = f' targetCategory="{target}"' if target else ""
        attrs += f' alternateTargetCategory="{alternate}"' if alternate else ""
        vectors = ""
        if representation == "SupportVectors":
            ids = "".join(f'<SupportVector vectorId="v{j}"/>' for j in (i, i + 1, (i + 2) % 4))
            vectors = f"<SupportVectors>{ids}</SupportVectors>"
        coefficients = "".join(f'<Coefficient value="{c}"/>' for c in _COEFFICIENTS[i].split())
        machines.append(
            f"<SupportVectorMachine{attrs}>{vectors}"
            f'<Coefficients absoluteValue="{b}">{coefficients}</Coefficients>'
            "</SupportVectorMachine>"
        )
    target = (
        '<DataField name="y" optype="continuous" dataType="double"/>'
        if regression
        else '<DataField name="y" optype="categorical" dataType="string">'
        + "".join(f'<Value value="{c}"/>' for c in ("ab" if method == "binary" else "abc"))
        + "</DataField>"
    )
    classification = "" if regression or method == "binary" else f' classificationMethod="{method}"'
    return f"""<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header/>
  <DataDictionary>
    <DataField name="x1" optype="continuous" dataType="double"/>
    <DataField name="x2" optype="continuous" dataType="float"/>
    <DataField name="color" optype="categorical" dataType="string">
      <Value value="red"/><Value value="blue"/>
    </DataField>
    {target}
  </DataDictionary>
  <SupportVectorMachineModel functionName="{"regression" if regression else "classification"}"
      {classification} maxWins="{str(max_wins).lower()}" svmRepresentation="{representation}">
    <MiningSchema>
      <MiningField name="x1"/><MiningField name="x2"/><MiningField name="color"/>
      <MiningField name="y" usageType="target"/>
    </MiningSchema>
    <Output>
      <OutputField name="Predicted_y" feature="predictedValue"/>
    </Output>
    <LocalTransformations>
      <DerivedField name="x1s" optype="continuous" dataType="double">
        <Apply function="/"><FieldRef field="x1"/><Constant dataType="double">10</Constant></Apply>
      </DerivedField>
    </LocalTransformations>
    {KERNELS[kernel]}
    <VectorDictionary numberOfVectors="4">
      <VectorFields numberOfFields="3">
        <FieldRef field="x1s"/><FieldRef field="x2"/>
        <CategoricalPredictor name="color" value="red" coefficient="1"/>
      </VectorFields>
      <VectorInstance id="v0"><REAL-SparseArray n="3"><Indices>1 3</Indices>
        <REAL-Entries>0.5 1</REAL-Entries></REAL-SparseArray></VectorInstance>
      <VectorInstance id="v1"><Array n="3" type="real">-0.3 0.8 0</Array></VectorInstance>
      <VectorInstance id="v2"><REAL-SparseArray n="3"><Indices>2</Indices>
        <REAL-Entries>-1.2</REAL-Entries></REAL-SparseArray></VectorInstance>
      <VectorInstance id="v3"><Array n="3" type="real">1.0 0.25 1</Array></VectorInstance>
    </VectorDictionary>
    {"".join(machines)}
  </SupportVectorMachineModel>
</PMML>""".encode()


_svm_rows = st.lists(
    st.fixed_dictionaries(
        {"x1": _float32, "x2": _float32, "color": st.sampled_from(["red", "blue", None])}
    ),
    min_size=1,
    max_size=25,
)
_VARIANTS = [
    (k, m, w, "SupportVectors")
    for k in KERNELS
    for m in ("OneAgainstAll", "OneAgainstOne", "binary", "regression")
    for w in (False, True)
] + [("linear", m, False, "Coefficients") for m in ("OneAgainstAll", "OneAgainstOne")]


@_FAST
@given(st.sampled_from(_VARIANTS), _svm_rows)
def test_svm_agrees_with_pypmml(variant, rows):
    a, b, votes = _both(svm_doc(*variant), rows)
    if variant[1] == "regression":
        assert_close(a.value, b.value, PMML_DOUBLE)
    else:
        _agree_classes(a, b, votes)


def test_svm_kernels_by_hand():
    """One row, x = (x1/10, x2, color == red) = (0.5, -1, 1); machine 0 of the regression
    uses vectors v0 = (0.5, 0, 1), v1 = (-0.3, 0.8, 0), v2 = (0, -1.2, 0)."""
    x = np.array([0.5, -1.0, 1.0])
    vectors = np.array([[0.5, 0, 1], [-0.3, 0.8, 0], [0, -1.2, 0]])
    c = np.array([0.5, -1.25, 0.75])
    dot = vectors @ x
    expected = {
        "linear": dot,
        "poly": (0.7 * dot + 0.3) ** 3,
        "rbf": np.exp(-0.9 * ((vectors - x) ** 2).sum(axis=1)),
        "sigmoid": np.tanh(0.4 * dot - 0.1),
    }
    row = {"x1": np.array([5.0]), "x2": np.array([-1.0]), "color": np.array(["red"], object)}
    for kernel, k in expected.items():
        pred = NativePmmlScorer(svm_doc(kernel, "regression")).predict(row, 1)
        assert_close(pred.value, [c @ k + 1.5], ULPS)


def test_svm_binary_threshold_and_missing():
    """Binary: targetCategory where f(x) < threshold (0), alternate otherwise; maxWins flips
    the comparison. A missing FieldRef input leaves the row without a prediction."""
    row = {"x1": np.array([5.0, np.nan]), "x2": np.array([-1.0, 0.0])}
    row["color"] = np.array(["red", "red"], object)
    x = np.array([0.5, -1.0, 1.0])
    vectors = np.array([[0.5, 0, 1], [-0.3, 0.8, 0], [0, -1.2, 0]])
    f = np.array([0.5, -1.25, 0.75]) @ np.exp(-0.9 * ((vectors - x) ** 2).sum(axis=1)) + 0.1
    for max_wins in (False, True):
        pred = NativePmmlScorer(svm_doc("rbf", "binary", max_wins)).predict(row, 2)
        first = (f > 0) if max_wins else (f < 0)
        assert pred.labels.to_pylist() == ["a" if first else "b", None]
        want = [1.0, 0.0] if first else [0.0, 1.0]
        np.testing.assert_array_equal(pred.probabilities[0], want)
        assert np.isnan(pred.probabilities[1]).all()


def test_svm_unseen_category_raises_like_pypmml():
    rows = [{"x1": 1.0, "x2": 0.5, "color": "green"}]
    for method in ("OneAgainstOne", "regression"):
        assert _both(svm_doc("rbf", method), rows) == (None, None, None)


def test_svm_mismatched_support_vectors_refused():
    doc = svm_doc().replace(b'<SupportVector vectorId="v0"/>', b"", 1)
    with pytest.raises(InvalidModelError, match="SupportVectors but 3 Coefficients"):
        NativePmmlScorer(doc)
    doc = svm_doc().replace(b'<SupportVector vectorId="v0"/>', b'<SupportVector vectorId="v9"/>')
    with pytest.raises(InvalidModelError, match="'v9'"):
        NativePmmlScorer(doc)


# ----------------------------------------------------------------------------- SVM: corpus

_IRIS = ["knime__SupportVectorMachineIris", "rattle__KernlabSVMIris", "rattle__LibSVMIris"]
_iris_value = st.one_of(st.none(), st.floats(0.5, 7.5))


@_FAST
@given(
    st.sampled_from(_IRIS),
    st.lists(
        st.fixed_dictionaries(
            {
                f"{part}_{what}": _iris_value
                for part in ("Sepal", "Petal")
                for what in ("Length", "Width")
            }
        ),
        min_size=1,
        max_size=20,
    ),
)
def test_corpus_iris_svms_agree_with_pypmml(name, rows):
    blob = (corpus_dir() / name / "model.pmml").read_bytes()
    a, b, votes = _both(blob, rows)
    if a is not None:
        _agree_classes(a, b, votes)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_corpus_audit_svm_agrees_with_pypmml(data):
    """Categorical inputs (one-hot derived fields), an unseen category now and then."""
    blob = (corpus_dir() / "rattle__KernlabSVMAudit" / "model.pmml").read_bytes()
    scorer = NativePmmlScorer(blob)
    strategies = {}
    for _, spec in scorer.plan.inputs:
        if spec.data_type == "string":
            strategies[spec.name] = st.one_of(
                st.none(), st.sampled_from([*spec.valid, "Unseen"] if spec.valid else ["x"])
            )
        else:
            strategies[spec.name] = st.one_of(st.none(), st.floats(0, 100000, width=32))
    rows = data.draw(st.lists(st.fixed_dictionaries(strategies), min_size=1, max_size=10))
    a, b, votes = _both(blob, rows)
    if a is not None:
        _agree_classes(a, b, votes)


# ----------------------------------------------------------------------------- Scorecard


def scorecard_doc(
    fallback: bool = True, algorithm: str = "pointsBelow", reason_codes: bool = True
) -> bytes:
    """Characteristics on a number (with isMissing and a compound range), on a number with a
    ComplexPartialScore and per-Attribute reason codes, and on a category (a set predicate);
    without `fallback`, a missing status matches no Attribute."""
    tail = '<Attribute partialScore="0"><True/></Attribute>' if fallback else ""
    return f"""<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header/>
  <DataDictionary>
    <DataField name="age" optype="continuous" dataType="double"/>
    <DataField name="income" optype="continuous" dataType="double"/>
    <DataField name="status" optype="categorical" dataType="string">
      <Value value="single"/><Value value="married"/><Value value="divorced"/>
    </DataField>
    <DataField name="score" optype="continuous" dataType="double"/>
  </DataDictionary>
  <Scorecard functionName="regression" initialScore="500" baselineScore="12"
      useReasonCodes="{str(reason_codes).lower()}" reasonCodeAlgorithm="{algorithm}">
    <MiningSchema>
      <MiningField name="age"/><MiningField name="income"/><MiningField name="status"/>
      <MiningField name="score" usageType="target"/>
    </MiningSchema>
    <Output>
      <OutputField name="Final" feature="predictedValue" dataType="double"/>
      <OutputField name="Reason1" feature="reasonCode" rank="1" dataType="string"/>
      <OutputField name="Reason2" feature="reasonCode" rank="2" dataType="string"/>
      <OutputField name="Reason3" feature="reasonCode" rank="3" dataType="string"/>
    </Output>
    <Characteristics>
      <Characteristic name="ageScore" reasonCode="RC_AGE" baselineScore="20">
        <Attribute partialScore="5"><SimplePredicate field="age" operator="isMissing"/></Attribute>
        <Attribute partialScore="10">
          <SimplePredicate field="age" operator="lessThan" value="30"/></Attribute>
        <Attribute partialScore="25">
          <CompoundPredicate booleanOperator="and">
            <SimplePredicate field="age" operator="greaterOrEqual" value="30"/>
            <SimplePredicate field="age" operator="lessThan" value="50"/>
          </CompoundPredicate>
        </Attribute>
        <Attribute partialScore="30">
          <SimplePredicate field="age" operator="greaterOrEqual" value="50"/></Attribute>
      </Characteristic>
      <Characteristic name="incomeScore" baselineScore="15">
        <Attribute reasonCode="RC_INC_LOW" partialScore="3">
          <SimplePredicate field="income" operator="lessOrEqual" value="1000"/></Attribute>
        <Attribute reasonCode="RC_INC_MID">
          <SimplePredicate field="income" operator="lessOrEqual" value="2000"/>
          <ComplexPartialScore>
            <Apply function="*"><FieldRef field="income"/><Constant>0.01</Constant></Apply>
          </ComplexPartialScore>
        </Attribute>
        <Attribute reasonCode="RC_INC_HIGH" partialScore="20"><True/></Attribute>
      </Characteristic>
      <Characteristic name="statusScore" reasonCode="RC_STATUS">
        <Attribute partialScore="8">
          <SimplePredicate field="status" operator="equal" value="single"/></Attribute>
        <Attribute partialScore="14">
          <SimpleSetPredicate field="status" booleanOperator="isIn">
            <Array n="2" type="string">married divorced</Array></SimpleSetPredicate>
        </Attribute>
        {tail}
      </Characteristic>
    </Characteristics>
  </Scorecard>
</PMML>""".encode()


_SC_ROWS = {
    "age": np.array([25, 40, np.nan, 60, 35, 20.0]),
    "income": np.array([500, 1500, 3000, np.nan, 2000, 900.0]),
    "status": np.array(["single", "married", None, "divorced", "single", None], dtype=object),
}


def _scorecard(doc: bytes) -> dict[str, list]:
    pred = NativePmmlScorer(doc).predict(_SC_ROWS, 6)
    return {k: v.to_pylist() for k, v in pred.outputs.items()}


def test_scorecard_by_hand():
    """pointsBelow: points = baseline - partial per reason code; negative points drop out, zero
    stays; ties go to the code first in the document; missing ranks are NULL.
    Row 0: age 25 -> 10 (20-10=10), income 500 -> 3 (15-3=12), single -> 8 (12-8=4).
    Row 1: 40 -> 25 (-5), 1500 -> 1500*0.01=15 (0, RC_INC_MID), married -> 14 (-2).
    Row 2: missing age -> 5 (15), 3000 -> 20 (-5), missing status -> fallback 0 (12).
    Row 3: 60 -> 30, missing income -> the True Attribute, 20; divorced -> 14: all negative.
    Row 4: 35 -> 25 (-5), 2000 -> 20 (-5), single -> 8 (4).
    Row 5: 20 -> 10 (10), 900 -> 3 (12), missing status -> 0 (12): RC_INC_LOW before RC_STATUS."""
    out = _scorecard(scorecard_doc())
    assert out["Final"] == out["score"] == [521.0, 554.0, 525.0, 564.0, 553.0, 513.0]
    assert out["Reason1"] == ["RC_INC_LOW", "RC_INC_MID", "RC_AGE", None, "RC_STATUS", "RC_INC_LOW"]
    assert out["Reason2"] == ["RC_AGE", None, "RC_STATUS", None, None, "RC_STATUS"]
    assert out["Reason3"] == ["RC_STATUS", None, None, None, None, "RC_AGE"]
    # pointsAbove: partial - baseline.
    out = _scorecard(scorecard_doc(algorithm="pointsAbove"))
    assert out["Reason1"] == [None, "RC_AGE", "RC_INC_HIGH", "RC_AGE", "RC_AGE", None]
    assert out["Reason2"] == [None, "RC_STATUS", None, "RC_INC_HIGH", "RC_INC_MID", None]
    assert out["Reason3"] == [None, "RC_INC_MID", None, "RC_STATUS", None, None]
    # A Characteristic without a matching Attribute: no score, no reasons.
    out = _scorecard(scorecard_doc(fallback=False))
    assert out["Final"] == [521.0, 554.0, None, 564.0, 553.0, None]
    assert out["Reason1"] == ["RC_INC_LOW", "RC_INC_MID", None, None, "RC_STATUS", None]
    out = _scorecard(scorecard_doc(reason_codes=False))
    assert out["Final"][0] == 521.0 and out["Reason1"] == [None] * 6


def test_scorecard_without_baseline_refused():
    doc = scorecard_doc().replace(b' baselineScore="12"', b"")
    with pytest.raises(InvalidModelError, match="no baselineScore"):
        NativePmmlScorer(doc)
    NativePmmlScorer(scorecard_doc(reason_codes=False).replace(b' baselineScore="12"', b""))


def _reference_points(row: dict[str, object], algorithm: str) -> dict[str, float]:
    """Reason-code points of one row, computed directly from the document above."""
    age, income, status = row["age"], row["income"], row["status"]
    a = 5.0 if age is None else 10.0 if age < 30 else 25.0 if age < 50 else 30.0
    if income is not None and income <= 1000:
        i, code = 3.0, "RC_INC_LOW"
    elif income is not None and income <= 2000:
        i, code = float(np.float64(income) * 0.01), "RC_INC_MID"
    else:
        i, code = 20.0, "RC_INC_HIGH"
    s = {"single": 8.0, "married": 14.0, "divorced": 14.0}.get(status, 0.0)
    sign = 1.0 if algorithm == "pointsBelow" else -1.0
    return {"RC_AGE": sign * (20 - a), code: sign * (15 - i), "RC_STATUS": sign * (12 - s)}


@_FAST
@given(
    st.sampled_from(["pointsBelow", "pointsAbove"]),
    st.lists(
        st.fixed_dictionaries(
            {
                "age": st.one_of(st.none(), st.floats(0, 90)),
                "income": st.one_of(st.none(), st.floats(0, 4000)),
                "status": st.sampled_from(["single", "married", "divorced", None]),
            }
        ),
        min_size=1,
        max_size=20,
    ),
)
def test_scorecard_agrees_with_pypmml(algorithm, rows):
    """Scores always agree. Reason codes agree where the ranking is unambiguous: pypmml drops
    codes of zero points, pads missing ranks with its last code and breaks ties in reverse
    alphabetical order, so only ranks over distinct positive points are compared."""
    doc = scorecard_doc(algorithm=algorithm)
    a, b, _ = _both(doc, rows)
    assert_close(a.value, b.value, PMML_DOUBLE)
    for i, row in enumerate(rows):
        points = _reference_points(row, algorithm)
        ranked = sorted((p for p in points.values() if p > 0), reverse=True)
        if len(set(ranked)) != len(ranked):
            continue
        for r in range(min(3, len(ranked))):
            name = f"Reason{r + 1}"
            assert a.outputs[name][i].as_py() == b.outputs[name][i].as_py(), (i, name)


def test_scorecard_unseen_category_raises_like_pypmml():
    rows = [{"age": 30.0, "income": 100.0, "status": "widowed"}]
    assert _both(scorecard_doc(), rows) == (None, None, None)
