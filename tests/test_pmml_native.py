"""byom's native PMML evaluator (byom.pmml), called directly: the corpus, sklearn2pmml exports,
agreement with pypmml on generated inputs, and hostile or broken documents."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import LINEAR_PMML, corpus_dir
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_zoo import NAMES, TOLERANCE, build
from pmml_reference import assert_numbers_agree, predict_both
from test_pmml_corpus import _acceptable, _cases, _read_csv, _tolerance

from byom import config
from byom.errors import (
    InvalidModelError,
    InvalidValueError,
    UnsafeModelError,
    UnsupportedPmmlError,
)
from byom.inputs import InputBinder
from byom.outputs import json_rows
from byom.pmml.scorer import NativePmmlScorer
from byom.scorers import load_scorer, scorer_cache
from byom.scorers.pypmml import PypmmlScorer


def _features(scorer, table) -> dict[str, np.ndarray]:
    binder = InputBinder("m", scorer.inputs)
    return binder.by_name(table.column_names, [table.column(i) for i in range(table.num_columns)])


# ----------------------------------------------------------------------------- 1. corpus


@pytest.mark.parametrize("name", _cases())
def test_corpus_case_natively(name):
    folder = corpus_dir() / name
    try:
        scorer = NativePmmlScorer((folder / "model.pmml").read_bytes())
    except UnsupportedPmmlError as exc:
        pytest.skip(f"not supported natively yet: {exc.what}")
    case = json.loads((folder / "case.json").read_text())
    precision, zero = _tolerance(case)
    inputs = _read_csv(folder / "input.csv")
    pred = scorer.predict(_features(scorer, inputs), inputs.num_rows)
    got = [json.loads(r) for r in json_rows(pred).to_pylist()]
    expected = _read_csv(folder / "expected.csv").to_pylist()
    failures = {
        column: sum(
            not _acceptable(want[column], have.get(column), precision, zero)
            for want, have in zip(expected, got, strict=True)
        )
        for column in expected[0]  # every column, even those upstream leaves out
    }
    assert not {c: bad for c, bad in failures.items() if bad}


def test_native_schema_matches_pypmml():
    """Same inputs, target, classes and output names as the pypmml scorer reports."""
    root = corpus_dir()
    compared = 0
    for name in _cases():
        blob = (root / name / "model.pmml").read_bytes()
        try:
            native = NativePmmlScorer(blob)
        except UnsupportedPmmlError:
            continue
        jvm = PypmmlScorer(blob)
        assert native.describe() == jvm.describe(), name
        assert native.inputs == jvm.inputs, name
        compared += 1
    assert compared >= 23


# ----------------------------------------------------------------------------- 2. model zoo


def _zoo_features(scorer, data) -> dict[str, np.ndarray]:
    return {
        i.name: data[i.name].to_numpy(dtype=object if i.type == "string" else np.float64)
        for i in scorer.inputs
    }


@pytest.mark.parametrize("name", NAMES)
def test_sklearn2pmml_export_matches_native_library(name):
    zoo = build(name)
    assert zoo.pmml is not None
    scorer = NativePmmlScorer(zoo.pmml)
    data = zoo.data.reset_index(drop=True)
    pred = scorer.predict(_zoo_features(scorer, data), len(data))
    tol = TOLERANCE[name]["pmml"]
    if zoo.task == "regression":
        assert pred.value is not None
        np.testing.assert_allclose(pred.value, zoo.native_pred, rtol=0, atol=tol)
        return
    assert pred.probabilities is not None and pred.labels is not None
    assert list(pred.classes) == zoo.classes
    np.testing.assert_allclose(pred.probabilities, zoo.native_proba, rtol=0, atol=tol)
    np.testing.assert_array_equal(pred.labels.to_numpy(zero_copy_only=False), zoo.native_pred)


# ----------------------------------------------------------------------------- 3. vs pypmml


def _tree_pmml() -> bytes:
    return (corpus_dir() / "rattle__DecisionTreeAuto" / "model.pmml").read_bytes()


_values = st.one_of(st.none(), st.floats(-50, 5000, allow_nan=False, width=32))


def _agree(blob: bytes, rows: list[dict[str, object]], null_if_missing: bool = False) -> None:
    """Native and pypmml predict the same. With null_if_missing, rows the native evaluator
    leaves without a prediction must hold a NULL, and are not compared (see the forest test)."""
    both = predict_both(blob, rows)
    assert both is not None, "the rows are valid: both evaluators score them"
    a, b = both
    if a.value is not None:
        assert_numbers_agree(a, b)
    else:
        mine, theirs = a.labels.to_pylist(), b.labels.to_pylist()
        if null_if_missing:
            for i, row in enumerate(rows):
                if mine[i] is None:
                    assert any(v is None for v in row.values())
                    theirs[i] = None
        assert mine == theirs


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.fixed_dictionaries(
            {"x": _values, "z": _values, "color": st.sampled_from(["red", "blue", None])}
        ),
        min_size=1,
        max_size=20,
    )
)
def test_regression_agrees_with_pypmml(rows):
    _agree(LINEAR_PMML, rows)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_tree_agrees_with_pypmml(data):
    blob = _tree_pmml()
    scorer = NativePmmlScorer(blob)
    strategies = {}
    for _, spec in scorer.plan.inputs:  # values inside the declared ranges: others are invalid
        if spec.valid:
            strategies[spec.name] = st.one_of(st.none(), st.sampled_from(spec.valid))
        else:
            low, high, _, _ = spec.intervals[0] if spec.intervals else (-50.0, 5000.0, 1, 1)
            strategies[spec.name] = st.one_of(st.none(), st.floats(low, high))
    row = st.fixed_dictionaries(strategies)
    _agree(blob, data.draw(st.lists(row, min_size=1, max_size=20)))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.one_of(st.none(), st.floats(-3, 3, width=32)), min_size=8,
                         max_size=8), min_size=1, max_size=20))  # fmt: skip
def test_forest_with_nulls_agrees_with_pypmml(rows):
    """A 25-tree sklearn forest, through the leaf bitmasks. Its trees declare
    missingValueStrategy="nullPrediction" and its Segmentation missingPredictionTreatment=
    "returnMissing": per PMML, a split on a NULL makes the whole row's prediction NULL. pypmml
    still predicts a class there, so such rows are only checked to hold a NULL."""
    blob = build("sklearn_random_forest").pmml
    _agree(blob, [{f"x{j:02d}": v for j, v in enumerate(r)} for r in rows], True)


# ----------------------------------------------------------------------------- 4. hostile


def _tree_doc(nodes: str, strategy: str = "defaultChild") -> bytes:
    return f"""<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <DataDictionary>
    <DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="y" optype="continuous" dataType="double"/>
  </DataDictionary>
  <TreeModel functionName="regression" missingValueStrategy="{strategy}">
    <MiningSchema><MiningField name="x"/><MiningField name="y" usageType="target"/></MiningSchema>
    {nodes}
  </TreeModel>
</PMML>""".encode()


def test_default_child_cycle_refused():
    # The default child names the node itself: following it would never end.
    doc = _tree_doc(
        '<Node id="1" score="0" defaultChild="1"><True/>'
        '<Node id="2" score="1"><SimplePredicate field="x" operator="lessThan" value="0"/></Node>'
        '<Node id="3" score="2"><True/></Node></Node>'
    )
    with pytest.raises(InvalidModelError, match=r"line 9.*defaultChild '1'.*not one of its"):
        NativePmmlScorer(doc)


def test_default_child_missing_refused():
    doc = _tree_doc(
        '<Node id="1" score="0" defaultChild="9"><True/>'
        '<Node id="2" score="1"><SimplePredicate field="x" operator="lessThan" value="0"/></Node>'
        "</Node>"
    )
    with pytest.raises(InvalidModelError, match="defaultChild '9'"):
        NativePmmlScorer(doc)


def test_default_child_followed_for_missing_values():
    doc = _tree_doc(
        '<Node id="1" score="0" defaultChild="3"><True/>'
        '<Node id="2" score="1"><SimplePredicate field="x" operator="lessThan" value="0"/></Node>'
        '<Node id="3" score="2"><SimplePredicate field="x" operator="greaterOrEqual" value="0"/>'
        "</Node></Node>"
    )
    pred = NativePmmlScorer(doc).predict({"x": np.array([-1.0, 1.0, np.nan])}, 3)
    np.testing.assert_array_equal(pred.value, [1.0, 2.0, 2.0])


def test_deep_tree_refused_not_crashed():
    depth = 5000
    nodes = '<Node score="1"><True/>' * depth + "</Node>" * depth
    with pytest.raises(InvalidModelError, match="nested deeper"):
        NativePmmlScorer(_tree_doc(nodes, "none"))


def test_truncated_xml_refused():
    with pytest.raises(InvalidModelError, match="not well-formed XML"):
        NativePmmlScorer(LINEAR_PMML[: len(LINEAR_PMML) // 2])


@pytest.mark.parametrize(
    "doc",
    [
        b'<?xml version="1.0"?><!DOCTYPE PMML [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;">]>'
        b'<PMML version="4.4">&c;</PMML>',
        b'<?xml version="1.0"?><!DOCTYPE PMML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<PMML version="4.4"><Header description="&xxe;"/></PMML>',
    ],
    ids=["billion-laughs", "external-entity"],
)
def test_entities_refused(doc):
    with pytest.raises(UnsafeModelError, match="forbidden XML feature"):
        NativePmmlScorer(doc)


def test_unknown_model_element_is_unsupported_with_line():
    doc = LINEAR_PMML.replace(b"RegressionModel", b"FancyModel")
    with pytest.raises(UnsupportedPmmlError, match=r"unknown element <FancyModel> \(line 12\)"):
        NativePmmlScorer(doc)


def test_unknown_function_is_unsupported():
    doc = LINEAR_PMML.replace(
        b"<MiningSchema>",
        b'<LocalTransformations><DerivedField name="w" optype="continuous" dataType="double">'
        b'<Apply function="fancy"><FieldRef field="x"/></Apply></DerivedField>'
        b"</LocalTransformations><MiningSchema>",
    )
    with pytest.raises(UnsupportedPmmlError, match='function "fancy"'):
        NativePmmlScorer(doc)


#: A model pypmml scores; the test unregisters its native compiler.
_SCORECARD = b"""<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header/>
  <DataDictionary>
    <DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="score" optype="continuous" dataType="double"/>
  </DataDictionary>
  <Scorecard functionName="regression" useReasonCodes="false" initialScore="1">
    <MiningSchema><MiningField name="x"/><MiningField name="score" usageType="target"/>
    </MiningSchema>
    <Characteristics><Characteristic name="c">
      <Attribute partialScore="2"><SimplePredicate field="x" operator="lessThan" value="0"/>
      </Attribute>
      <Attribute partialScore="5"><True/></Attribute>
    </Characteristic></Characteristics>
  </Scorecard>
</PMML>"""


def test_unsupported_model_falls_back_to_pypmml(monkeypatch):
    from byom.pmml.models import MODEL_TYPES

    monkeypatch.delitem(MODEL_TYPES, "Scorecard", raising=False)
    blob = _SCORECARD
    with pytest.raises(UnsupportedPmmlError, match=r"<Scorecard> \(line \d+\)"):
        NativePmmlScorer(blob)
    scorer_cache.clear()
    monkeypatch.setattr(config, "PMML_FALLBACK", "pypmml")
    assert isinstance(load_scorer(blob), PypmmlScorer)
    scorer_cache.clear()
    monkeypatch.setattr(config, "PMML_FALLBACK", "none")
    with pytest.raises(UnsupportedPmmlError):
        load_scorer(blob)
    scorer_cache.clear()


def test_supported_model_loads_natively():
    scorer_cache.clear()
    assert isinstance(load_scorer(LINEAR_PMML), NativePmmlScorer)


def test_invalid_category_raises_like_pypmml_scorer():
    scorer = NativePmmlScorer(LINEAR_PMML)
    features = {
        "x": np.array([1.0, 1.0]),
        "z": np.array([0.0, 0.0]),
        "color": np.array(["red", "green"], dtype=object),
    }
    with pytest.raises(InvalidValueError, match=r"color = 'green' \(row 2 of the batch"):
        scorer.predict(features, 2)


def test_float_math_sums_trees_in_float32():
    zoo = build("xgboost_regressor")
    scorer = NativePmmlScorer(zoo.pmml)
    data = zoo.data.reset_index(drop=True)
    value = scorer.predict(_zoo_features(scorer, data), len(data)).value
    assert value is not None
    # Every value is a float32 number: the sum never left float32.
    np.testing.assert_array_equal(value, value.astype(np.float32).astype(np.float64))
