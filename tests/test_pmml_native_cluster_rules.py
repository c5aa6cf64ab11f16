"""ClusteringModel and RuleSetModel in byom's native PMML evaluator: agreement with pypmml (the
reference) on generated inputs with NULLs and unseen categories, and refused documents."""

from __future__ import annotations

import pytest
from helpers import PMML_DOUBLE, assert_close
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pmml_reference import predict_both, row_features, scorer_pair

from byom.errors import InvalidModelError, InvalidValueError, UnsupportedPmmlError
from byom.pmml.scorer import NativePmmlScorer

_HEAD = (
    '<?xml version="1.0"?>\n<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">\n  <Header/>\n'
)


def _clustering(measure: str, kind: str = "distance", extra: str = "", text: bool = False) -> bytes:
    """With `text`, the fourth field is a string category (pypmml cannot read string centers)."""
    color = (
        '<DataField name="color" optype="categorical" dataType="string">'
        '<Value value="1"/><Value value="2"/><Value value="3"/></DataField>'
        if text
        else '<DataField name="color" optype="continuous" dataType="integer"/>'
    )
    kind_of_array = "string" if text else "real"
    fields = (
        '<ClusteringField field="a" fieldWeight="2"/>'
        '<ClusteringField field="b" compareFunction="gaussSim" similarityScale="1.5"/>'
        '<ClusteringField field="c" fieldWeight="0.5"/>'
        '<ClusteringField field="color" compareFunction="delta"/>'
    )
    return f"""{_HEAD}
  <DataDictionary>
    <DataField name="a" optype="continuous" dataType="double"/>
    <DataField name="b" optype="continuous" dataType="float"/>
    <DataField name="c" optype="continuous" dataType="double"/>
    {color}
  </DataDictionary>
  <ClusteringModel functionName="clustering" modelClass="centerBased" numberOfClusters="3">
    <MiningSchema>
      <MiningField name="a"/><MiningField name="b"/><MiningField name="c"/>
      <MiningField name="color"/>
    </MiningSchema>
    <Output>
      <OutputField name="cluster" feature="predictedValue"/>
      <OutputField name="shown" feature="predictedDisplayValue"/>
      <OutputField name="to_k1" feature="clusterAffinity" value="k1"/>
      <OutputField name="to_k2" feature="clusterAffinity" value="k2"/>
      <OutputField name="to_k3" feature="clusterAffinity" value="k3"/>
    </Output>
    <ComparisonMeasure kind="{kind}">{measure}</ComparisonMeasure>
    {fields}{extra}
    <Cluster name="one" id="k1"><Array n="4" type="{kind_of_array}">1.5 -2 3 1</Array></Cluster>
    <Cluster name="two" id="k2"><Array n="4" type="{kind_of_array}">-1 0.25 -4 "2"</Array></Cluster>
    <Cluster id="k3"><Array n="4" type="{kind_of_array}">0 1 0 3</Array></Cluster>
  </ClusteringModel>
</PMML>""".encode()


_MEASURES = [
    "<euclidean/>",
    "<squaredEuclidean/>",
    "<cityBlock/>",
    "<chebychev/>",
    '<minkowski p-parameter="3"/>',
]
_WEIGHTS = '<MissingValueWeights><Array n="4" type="real">1 2 0.5 1</Array></MissingValueWeights>'


def _binary_clustering(measure: str, array: str = "real") -> bytes:
    """Double fields and real arrays: pypmml cannot read int arrays (ClassCastException)."""
    names = ["p", "q", "r", "s"]
    fields = "".join(
        f'<DataField name="{n}" optype="continuous" dataType="double"/>' for n in names
    )
    mining = "".join(f'<MiningField name="{n}"/>' for n in names)
    clustering = "".join(f'<ClusteringField field="{n}"/>' for n in names)
    return f"""{_HEAD}
  <DataDictionary>{fields}</DataDictionary>
  <ClusteringModel functionName="clustering" modelClass="centerBased" numberOfClusters="3">
    <MiningSchema>{mining}</MiningSchema>
    <Output>
      <OutputField name="cluster" feature="predictedValue"/>
      <OutputField name="to_1" feature="clusterAffinity" value="1"/>
      <OutputField name="to_2" feature="clusterAffinity" value="2"/>
      <OutputField name="to_3" feature="clusterAffinity" value="3"/>
    </Output>
    <ComparisonMeasure kind="similarity">{measure}</ComparisonMeasure>
    {clustering}
    <Cluster name="x"><Array n="4" type="{array}">1 0 1 1</Array></Cluster>
    <Cluster name="y"><Array n="4" type="{array}">0 1 1 0</Array></Cluster>
    <Cluster name="z"><Array n="4" type="{array}">0 0 0 1</Array></Cluster>
  </ClusteringModel>
</PMML>""".encode()


_SIMILARITIES = [
    "<simpleMatching/>",
    "<jaccard/>",
    "<tanimoto/>",
    '<binarySimilarity c00-parameter="1" c01-parameter="0" c10-parameter="0" c11-parameter="2" '
    'd00-parameter="1" d01-parameter="1" d10-parameter="1" d11-parameter="2"/>',
]


def _ruleset(criterion: str, default: str = 'defaultScore="no" defaultConfidence="0.3"') -> bytes:
    return f"""{_HEAD}
  <DataDictionary>
    <DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="n" optype="continuous" dataType="integer"/>
    <DataField name="color" optype="categorical" dataType="string">
      <Value value="red"/><Value value="green"/><Value value="blue"/>
    </DataField>
    <DataField name="y" optype="categorical" dataType="string">
      <Value value="yes"/><Value value="no"/><Value value="maybe"/>
    </DataField>
  </DataDictionary>
  <RuleSetModel functionName="classification">
    <MiningSchema>
      <MiningField name="x"/><MiningField name="n"/><MiningField name="color"/>
      <MiningField name="y" usageType="target"/>
    </MiningSchema>
    <Output>
      <OutputField name="label" feature="predictedValue"/>
      <OutputField name="conf" feature="confidence"/>
    </Output>
    <RuleSet {default}>
      <RuleSelectionMethod criterion="{criterion}"/>
      <SimpleRule id="r1" score="yes" weight="0.7" confidence="0.9">
        <SimplePredicate field="x" operator="greaterThan" value="1"/>
      </SimpleRule>
      <CompoundRule>
        <SimplePredicate field="color" operator="equal" value="red"/>
        <SimpleRule id="r2" score="maybe" weight="0.8" confidence="0.6">
          <SimplePredicate field="n" operator="lessOrEqual" value="3"/>
        </SimpleRule>
        <SimpleRule id="r3" score="no" weight="0.4" confidence="0.75">
          <True/>
        </SimpleRule>
      </CompoundRule>
      <SimpleRule id="r4" score="maybe" weight="0.5" confidence="0.55">
        <CompoundPredicate booleanOperator="or">
          <SimpleSetPredicate field="color" booleanOperator="isIn">
            <Array n="2" type="string">green blue</Array>
          </SimpleSetPredicate>
          <SimplePredicate field="x" operator="lessThan" value="-2"/>
        </CompoundPredicate>
      </SimpleRule>
      <SimpleRule id="r5" score="no" weight="0.9" confidence="0.8">
        <SimplePredicate field="n" operator="greaterThan" value="5"/>
      </SimpleRule>
    </RuleSet>
  </RuleSetModel>
</PMML>""".encode()


def _agree(blob: bytes, rows: list[dict[str, object]], exact: set[str] = frozenset()) -> None:
    native, jvm = scorer_pair(blob)
    assert native.describe() == jvm.describe()
    both = predict_both(blob, rows)
    if both is None:
        return
    got, expected = both
    assert got.labels is not None and expected.labels is not None
    assert got.labels.to_pylist() == expected.labels.to_pylist()
    for name, column in expected.outputs.items():
        want, have = column.to_pylist(), got.outputs[name].to_pylist()
        if name in exact or any(isinstance(v, str) for v in want + have):
            assert [None if v is None else str(v) for v in have] == [
                None if v is None else str(v) for v in want
            ], name
        else:
            assert_close(have, want, PMML_DOUBLE, err_msg=name)


_number = st.one_of(st.none(), st.floats(-6, 6, allow_nan=False, width=32))
_integer = st.one_of(st.none(), st.integers(-3, 8))
_color = st.sampled_from(["red", "green", "blue", None, None, "purple"])
_fast = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_fast
@given(
    measure=st.sampled_from(_MEASURES),
    extra=st.sampled_from(["", _WEIGHTS]),
    rows=st.lists(
        st.fixed_dictionaries(
            {"a": _number, "b": _number, "c": _integer, "color": st.integers(-3, 8)}
        ),
        min_size=1,
        max_size=12,
    ),
)
def test_distance_clustering_agrees_with_pypmml(measure, extra, rows):
    """NULLs in the double and float fields (missing value weights). pypmml reads a NULL of an
    integer field as a huge number (NaN cast to long), so the integer field is never NULL here."""
    _agree(_clustering(measure, extra=extra), rows)


@_fast
@given(
    measure=st.sampled_from(_SIMILARITIES),
    rows=st.lists(
        st.fixed_dictionaries({n: st.sampled_from([0, 1, 1, None]) for n in "pqrs"}),
        min_size=1,
        max_size=12,
    ),
)
def test_similarity_clustering_agrees_with_pypmml(measure, rows):
    _agree(_binary_clustering(measure), rows)


@_fast
@given(
    criterion=st.sampled_from(["firstHit", "weightedMax", "weightedSum"]),
    default=st.sampled_from(['defaultScore="no" defaultConfidence="0.3"', ""]),
    rows=st.lists(
        st.fixed_dictionaries({"x": _number, "n": st.integers(-3, 8), "color": _color}),
        min_size=1,
        max_size=12,
    ),
)
def test_ruleset_agrees_with_pypmml(criterion, default, rows):
    """NULLs in x and color; never in the integer n (pypmml reads a NULL integer as 0)."""
    _agree(_ruleset(criterion, default), rows)


# ----------------------------------------------------------------------------- by hand


@pytest.mark.parametrize("text", [False, True], ids=["integer", "string"])
def test_clustering_outputs_by_hand(text):
    scorer = NativePmmlScorer(_clustering("<squaredEuclidean/>", text=text))
    one = "1" if text else 1
    rows = [
        {"a": 1.5, "b": -2.0, "c": 3, "color": one},
        {"a": None, "b": None, "c": None},
        {"a": 0.0, "b": 1.0, "c": 0, "color": "3" if text else 3},
    ]
    pred = scorer.predict(row_features(scorer, rows), 3)
    assert pred.task == "clustering"
    assert pred.labels is not None and pred.labels.to_pylist() == ["k1", None, "k3"]
    assert pred.outputs["shown"].to_pylist() == ["one", None, None]  # k3 has no name
    # gaussSim of a zero difference is 1: the b field adds 1 to the distance to its own center.
    assert pred.outputs["to_k1"].to_pylist()[:2] == [1.0, None]
    assert pred.outputs["to_k3"].to_pylist()[2] == 1.0
    if text:
        with pytest.raises(InvalidValueError, match="color = 'purple'"):
            scorer.predict(row_features(scorer, [{"color": "purple"}]), 1)


def test_ruleset_first_hit_by_hand():
    scorer = NativePmmlScorer(_ruleset("firstHit"))
    rows = [{"x": 2.0}, {"color": "red", "n": 1}, {"color": "red", "n": 9}, {}]
    pred = scorer.predict(row_features(scorer, rows), 4)
    assert pred.labels is not None
    assert pred.labels.to_pylist() == ["yes", "maybe", "no", "no"]
    assert pred.outputs["conf"].to_pylist() == [0.9, 0.6, 0.75, 0.3]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (("1.5 -2 3 1", "1.5 -2 1"), InvalidModelError),  # too few values
        (("1.5 -2 3 1", "1.5 x 3 1"), InvalidModelError),  # not a number
        (('n="4" type="real">1.5', 'n="5" type="real">1.5'), InvalidModelError),
        (('value="k3"', 'value="k9"'), InvalidModelError),  # unknown cluster
        (('modelClass="centerBased"', 'modelClass="distributionBased"'), UnsupportedPmmlError),
        (("<squaredEuclidean/>", "<fancy/>"), UnsupportedPmmlError),
    ],
)
def test_broken_clustering_refused(change, error):
    blob = _clustering("<squaredEuclidean/>").replace(change[0].encode(), change[1].encode())
    with pytest.raises(error):
        NativePmmlScorer(blob)


def test_unknown_rule_selection_refused():
    with pytest.raises(UnsupportedPmmlError, match="RuleSelectionMethod"):
        NativePmmlScorer(_ruleset("bestOf"))
