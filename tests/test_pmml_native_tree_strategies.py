"""TreeModel missing value strategies in byom's native PMML evaluator: weightedConfidence,
aggregateNodes, missingValuePenalty and the confidence Output, checked by hand, against a
per-row reference written here, and against pypmml where pypmml implements the same thing.

pypmml's weightedConfidence does not recurse: it scores the UNKNOWN children by their own
ScoreDistribution. The trees compared with it are built so that this is the same as recursing
(a child reached through an UNKNOWN split only splits further on the same field, and every
parent's counts are its children's sums), or their first split never sees a NULL."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from helpers import PMML_DOUBLE, assert_close
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pmml_reference import predict_both, scorer_pair

from byom.errors import InvalidModelError, UnsupportedPmmlError
from byom.pmml.scorer import NativePmmlScorer

CLASSES = ("A", "B")


@dataclass
class N:
    """A tree node: predicate (field, operator, value) or None for True, and class counts."""

    id: str
    predicate: tuple[str, str, object] | None
    counts: tuple[float, float]
    children: list[N] = field(default_factory=list)
    default: str | None = None

    @property
    def total(self) -> float:
        return sum(self.counts)

    @property
    def probabilities(self) -> np.ndarray:
        return np.array(self.counts) / self.total

    @property
    def confidences(self) -> np.ndarray:
        return 0.9 * self.probabilities  # distinct from the probabilities

    @property
    def score(self) -> str:
        return CLASSES[int(np.argmax(self.counts))]


def _leaf(id: str, predicate, a: float, b: float) -> N:
    return N(id, predicate, (a, b))


def _split(id: str, predicate, children: list[N], default: str | None = None) -> N:
    a = sum(c.counts[0] for c in children)
    b = sum(c.counts[1] for c in children)
    return N(id, predicate, (a, b), children, default)


def _general(defaults: bool = False) -> N:
    """x at the root, then y under x < 5 and color under x >= 5."""
    return _split(
        "root",
        None,
        [
            _split(
                "n1",
                ("x", "lessThan", 5),
                [
                    _leaf("l1", ("y", "lessThan", 2), 15, 5),
                    _leaf("l2", ("y", "greaterOrEqual", 2), 10, 30),
                ],
                "l2" if defaults else None,
            ),
            _split(
                "n2",
                ("x", "greaterOrEqual", 5),
                [
                    _leaf("l3", ("color", "equal", "red"), 2, 8),
                    _leaf("l4", ("color", "equal", "green"), 10, 2),
                    _leaf("l5", ("color", "equal", "blue"), 17, 1),
                ],
                "l5" if defaults else None,
            ),
        ],
        "n2" if defaults else None,
    )


def _x_only() -> N:
    """Every split on x: a NULL x is NULL all the way down."""
    return _split(
        "root",
        None,
        [
            _split(
                "n1",
                ("x", "lessThan", 5),
                [
                    _leaf("l1", ("x", "lessThan", 2), 15, 5),
                    _leaf("l2", ("x", "greaterOrEqual", 2), 10, 30),
                ],
            ),
            _split(
                "n2",
                ("x", "greaterOrEqual", 5),
                [
                    _leaf("l3", ("x", "lessThan", 8), 20, 4),
                    _leaf("l4", ("x", "greaterOrEqual", 8), 9, 7),
                ],
            ),
        ],
    )


def _xml(node: N, record_counts: bool) -> str:
    if node.predicate is None:
        predicate = "<True/>"
    else:
        f, op, v = node.predicate
        predicate = f'<SimplePredicate field="{f}" operator="{op}" value="{v}"/>'
    attrs = f'id="{node.id}" score="{node.score}"'
    if record_counts:
        attrs += f' recordCount="{node.total:g}"'
    if node.default:
        attrs += f' defaultChild="{node.default}"'
    dist = "".join(
        f'<ScoreDistribution value="{c}" recordCount="{n:g}" confidence="{conf!r}"/>'
        for c, n, conf in zip(CLASSES, node.counts, node.confidences.tolist(), strict=True)
    )
    inner = "".join(_xml(c, record_counts) for c in node.children)
    return f"<Node {attrs}>{predicate}{dist}{inner}</Node>"


def _pmml(root: N, strategy: str, extra: str = "", record_counts: bool = True) -> bytes:
    return f"""<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header/>
  <DataDictionary>
    <DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="y" optype="continuous" dataType="double"/>
    <DataField name="color" optype="categorical" dataType="string">
      <Value value="red"/><Value value="green"/><Value value="blue"/>
    </DataField>
    <DataField name="label" optype="categorical" dataType="string">
      <Value value="A"/><Value value="B"/>
    </DataField>
  </DataDictionary>
  <TreeModel functionName="classification" missingValueStrategy="{strategy}" {extra}>
    <MiningSchema>
      <MiningField name="x"/><MiningField name="y"/><MiningField name="color"/>
      <MiningField name="label" usageType="target"/>
    </MiningSchema>
    <Output>
      <OutputField name="pred" feature="predictedValue"/>
      <OutputField name="conf" feature="confidence"/>
      <OutputField name="pA" feature="probability" value="A"/>
      <OutputField name="pB" feature="probability" value="B"/>
      <OutputField name="node" feature="entityId"/>
    </Output>
    {_xml(root, record_counts)}
  </TreeModel>
</PMML>""".encode()


# ----------------------------------------------------------------------------- reference


def _test(predicate, row) -> bool | None:
    if predicate is None:
        return True
    f, op, v = predicate
    x = row.get(f)
    if x is None:
        return None
    if op == "equal":
        return x == v
    return x < v if op == "lessThan" else x >= v


def _reference(root: N, strategy: str, row: dict, penalty: float = 1.0):
    """(label, confidence, probabilities, entity) for one row, the plain recursive way."""
    reached: list[tuple[N, float]] = []
    spread = False
    levels = 0

    def walk(node: N, w: float) -> None:
        nonlocal spread, levels
        if not node.children:
            reached.append((node, w))
            return
        seen = False
        for c in node.children:
            status = _test(c.predicate, row)
            if status is None and strategy == "defaultChild":
                levels += 1
                walk(next(d for d in node.children if d.id == node.default), w)
                return
            if status is False:
                continue
            if status is None:
                spread = True
            partial = seen or status is None
            walk(c, w * c.total / node.total if partial and strategy == "weightedConfidence" else w)
            seen = seen or status is None
            if status:
                return

    walk(root, 1.0)
    if not reached:
        return None, None, (None, None), None
    if not spread:
        (node, _) = reached[0]
        conf = node.confidences[CLASSES.index(node.score)] * penalty**levels
        return node.score, conf, tuple(node.probabilities), node.id
    if strategy == "aggregateNodes":
        counts = sum(np.array(n.counts) for n, _ in reached if not n.children)
        best = int(np.argmax(counts))
        return CLASSES[best], counts[best] / counts.sum(), tuple(counts / counts.sum()), None
    score = sum(n.confidences * w for n, w in reached)
    proba = sum(n.probabilities * w for n, w in reached) / sum(w for _, w in reached)
    best = int(np.argmax(score))
    return CLASSES[best], score[best], tuple(proba), None


# ----------------------------------------------------------------------------- helpers


def _features(rows: list[dict]) -> dict[str, np.ndarray]:
    def num(name: str) -> np.ndarray:
        return np.array([np.nan if r.get(name) is None else r[name] for r in rows], np.float64)

    return {
        "x": num("x"),
        "y": num("y"),
        "color": np.array([r.get("color") for r in rows], dtype=object),
    }


def _columns(pred) -> dict[str, list]:
    return {name: column.to_pylist() for name, column in pred.outputs.items()}


def _close(a, b, row: dict) -> None:
    assert_close(a, b, PMML_DOUBLE, err_msg=str(row))


def _agree_with_reference(root: N, strategy: str, rows: list[dict], extra: str = "") -> None:
    scorer = NativePmmlScorer(_pmml(root, strategy, extra))
    penalty = float(extra.split('"')[1]) if "missingValuePenalty" in extra else 1.0
    got = _columns(scorer.predict(_features(rows), len(rows)))
    for i, row in enumerate(rows):
        label, conf, (pa, pb), entity = _reference(root, strategy, row, penalty)
        assert got["pred"][i] == label, (row, got["pred"][i], label)
        _close(got["conf"][i], conf, row)
        _close([got["pA"][i], got["pB"][i]], [pa, pb], row)
        assert got["node"][i] == entity, row


def _agree_with_pypmml(blob: bytes, rows: list[dict], spread_rows: list[bool]) -> None:
    """Labels and confidences everywhere; probabilities and node ids only where no split was
    UNKNOWN (pypmml leaves them out for a combined prediction)."""
    both = predict_both(blob, rows)
    if both is None:
        return
    have, want = (_columns(p) for p in both)
    for i, spread in enumerate(spread_rows):
        assert have["pred"][i] == want["pred"][i], rows[i]
        _close(have["conf"][i], want["conf"][i], rows[i])
        if not spread:
            _close([have["pA"][i], have["pB"][i]], [want["pA"][i], want["pB"][i]], rows[i])
            assert have["node"][i] == want["node"][i], rows[i]


def _spread(root: N, row: dict) -> bool:
    """Whether the row meets an UNKNOWN split on its way."""
    node = root
    while node.children:
        statuses = [_test(c.predicate, row) for c in node.children]
        if True in statuses:
            node = node.children[statuses.index(True)]
        else:
            return None in statuses
    return False


_number = st.one_of(st.none(), st.floats(-1, 10, allow_nan=False, width=32))
_known = st.floats(-1, 10, allow_nan=False, width=32)
_color = st.sampled_from(["red", "green", "blue", None, None, "purple"])
_fast = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _rows(x=_number, color=_color):
    row = st.fixed_dictionaries({"x": x, "y": _number, "color": color})
    return st.lists(row, min_size=1, max_size=15)


# ----------------------------------------------------------------------------- by hand


def test_weighted_confidence_by_hand():
    scorer = NativePmmlScorer(_pmml(_general(), "weightedConfidence"))
    rows = [
        {"x": None, "y": 1.0, "color": "red"},  # n1 (0.6) -> l1, n2 (0.4) -> l3
        {},  # every leaf, by its share of the 100 records
        {"x": 3.0},  # n1 -> l1 (20/60), l2 (40/60)
        {"x": 3.0, "y": 1.0},  # no UNKNOWN: l1 itself
    ]
    got = _columns(scorer.predict(_features(rows), len(rows)))
    assert got["pred"] == ["A", "A", "B", "A"]
    assert_close(got["conf"], [0.477, 0.486, 0.525, 0.675], PMML_DOUBLE)
    assert_close(got["pA"], [0.53, 0.54, 25 / 60, 0.75], PMML_DOUBLE)
    assert got["node"] == [None, None, None, "l1"]


def test_aggregate_nodes_by_hand():
    scorer = NativePmmlScorer(_pmml(_general(), "aggregateNodes"))
    rows = [{"x": None, "y": 1.0, "color": "red"}, {}, {"x": 3.0}, {"x": 7.0, "color": "blue"}]
    got = _columns(scorer.predict(_features(rows), len(rows)))
    # l1 + l3 = (17, 13); all leaves = (54, 46); l1 + l2 = (25, 35); l5 alone.
    assert got["pred"] == ["A", "A", "B", "A"]
    assert_close(got["conf"], [17 / 30, 0.54, 35 / 60, 0.9 * 17 / 18], PMML_DOUBLE)
    assert_close(got["pB"], [13 / 30, 0.46, 35 / 60, 1 / 18], PMML_DOUBLE)
    assert got["node"] == [None, None, None, "l5"]


def test_missing_value_penalty_by_hand():
    scorer = NativePmmlScorer(
        _pmml(_general(defaults=True), "defaultChild", 'missingValuePenalty="0.5"')
    )
    rows = [{}, {"x": 7.0}, {"x": 7.0, "color": "blue"}, {"x": 1.0}]
    got = _columns(scorer.predict(_features(rows), len(rows)))
    # Two defaultChild steps to l5, one to l5, none, one to l2.
    assert got["node"] == ["l5", "l5", "l5", "l2"]
    assert_close(got["conf"], [0.85 * 0.25, 0.85 * 0.5, 0.85, 0.9 * 0.75 * 0.5], PMML_DOUBLE)
    assert_close(got["pA"], [17 / 18, 17 / 18, 17 / 18, 0.25], PMML_DOUBLE)


def test_record_counts_fall_back_to_score_distributions():
    """Without Node recordCount, a node's records are its ScoreDistribution's."""
    with_counts = NativePmmlScorer(_pmml(_general(), "weightedConfidence"))
    without = NativePmmlScorer(_pmml(_general(), "weightedConfidence", record_counts=False))
    rows = [{}, {"x": 3.0}, {"x": None, "y": 5.0, "color": "green"}]
    a = _columns(with_counts.predict(_features(rows), 3))
    b = _columns(without.predict(_features(rows), 3))
    assert a == b


@pytest.mark.parametrize("strategy", ["weightedConfidence", "aggregateNodes"])
def test_spreading_strategies_refused_for_regression(strategy):
    blob = _pmml(_general(), strategy).replace(
        b'functionName="classification"', b'functionName="regression"'
    )
    with pytest.raises(UnsupportedPmmlError, match=f'missingValueStrategy="{strategy}"'):
        NativePmmlScorer(blob)


@pytest.mark.parametrize("penalty", ["1.5", "-0.1", "x"])
def test_bad_missing_value_penalty_refused(penalty):
    with pytest.raises(InvalidModelError, match="missingValuePenalty"):
        NativePmmlScorer(_pmml(_general(), "none", f'missingValuePenalty="{penalty}"'))


def test_weighted_confidence_without_counts_refused():
    blob = _pmml(_general(), "weightedConfidence", record_counts=False)
    blob = blob.replace(b'<ScoreDistribution value="A" recordCount="15"', b"<X").replace(
        b'<ScoreDistribution value="B" recordCount="5" confidence="0.225"/>', b""
    )
    blob = blob.replace(b'<X confidence="0.675"/>', b"")
    with pytest.raises(InvalidModelError, match="recordCount"):
        NativePmmlScorer(blob)


# ----------------------------------------------------------------------------- properties


@_fast
@given(
    strategy=st.sampled_from(["weightedConfidence", "aggregateNodes"]),
    rows=_rows(color=st.sampled_from(["red", "green", "blue", None])),
)
def test_spreading_agrees_with_reference(strategy, rows):
    _agree_with_reference(_general(), strategy, rows)


@_fast
@given(rows=_rows(color=st.sampled_from(["red", "green", "blue", None])))
def test_penalty_agrees_with_reference(rows):
    _agree_with_reference(
        _general(defaults=True), "defaultChild", rows, 'missingValuePenalty="0.75"'
    )


@_fast
@given(rows=_rows())
def test_aggregate_nodes_agrees_with_pypmml(rows):
    root = _general()
    _agree_with_pypmml(_pmml(root, "aggregateNodes"), rows, [_spread(root, r) for r in rows])


@_fast
@given(rows=_rows())
def test_weighted_confidence_on_one_field_agrees_with_pypmml(rows):
    root = _x_only()
    _agree_with_pypmml(_pmml(root, "weightedConfidence"), rows, [_spread(root, r) for r in rows])


@_fast
@given(rows=_rows(x=_known))
def test_weighted_confidence_below_a_known_split_agrees_with_pypmml(rows):
    root = _general()
    _agree_with_pypmml(_pmml(root, "weightedConfidence"), rows, [_spread(root, r) for r in rows])


@_fast
@given(rows=_rows())
def test_penalty_agrees_with_pypmml(rows):
    root = _general(defaults=True)
    blob = _pmml(root, "defaultChild", 'missingValuePenalty="0.75"')
    _agree_with_pypmml(blob, rows, [False] * len(rows))


# ----------------------------------------------------------------------------- MiningModel

_SEGMENTS = [  # (segment predicate, weight, split point, scores: root, below, above)
    ("<True/>", 1.0, 2.0, (1.0, -3.0, 4.0)),
    ('<SimplePredicate field="y" operator="greaterThan" value="0"/>', 2.5, 5.0, (2.0, 0.5, 7.0)),
    ("<True/>", 0.5, 7.5, (-1.0, 3.0, 3.5)),
    ('<SimplePredicate field="y" operator="lessOrEqual" value="4"/>', 3.0, 1.0, (0.0, 6.0, -2.0)),
]


def _ensemble(method: str, function: str) -> bytes:
    segments = []
    for i, (predicate, weight, cut, (root, below, above)) in enumerate(_SEGMENTS):
        if function == "regression":
            scores = [f'score="{s}"' for s in (root, below, above)]
            dist = ["", "", ""]
        else:
            scores = [f'score="{"A" if s > 1 else "B"}"' for s in (root, below, above)]
            dist = [
                f'<ScoreDistribution value="A" recordCount="{1 + abs(s):g}"/>'
                f'<ScoreDistribution value="B" recordCount="{1 + i:g}"/>'
                for s in (root, below, above)
            ]
        segments.append(f"""
      <Segment id="s{i}" weight="{weight}">{predicate}
        <TreeModel functionName="{function}" noTrueChildStrategy="returnLastPrediction">
          <MiningSchema><MiningField name="x"/><MiningField name="label" usageType="target"/>
          </MiningSchema>
          <Node {scores[0]}><True/>{dist[0]}
            <Node {scores[1]}><SimplePredicate field="x" operator="lessThan" value="{cut}"/>
              {dist[1]}</Node>
            <Node {scores[2]}><SimplePredicate field="x" operator="greaterOrEqual" value="{cut}"/>
              {dist[2]}</Node>
          </Node>
        </TreeModel>
      </Segment>""")
    target = (
        '<DataField name="label" optype="continuous" dataType="double"/>'
        if function == "regression"
        else '<DataField name="label" optype="categorical" dataType="string">'
        '<Value value="A"/><Value value="B"/></DataField>'
    )
    return f"""<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header/>
  <DataDictionary>
    <DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="y" optype="continuous" dataType="double"/>
    {target}
  </DataDictionary>
  <MiningModel functionName="{function}">
    <MiningSchema>
      <MiningField name="x"/><MiningField name="y"/><MiningField name="label" usageType="target"/>
    </MiningSchema>
    <Segmentation multipleModelMethod="{method}">{"".join(segments)}
    </Segmentation>
  </MiningModel>
</PMML>""".encode()


@_fast
@given(
    method=st.sampled_from(["weightedSum", "weightedMedian", "median"]),
    rows=st.lists(st.fixed_dictionaries({"x": _number, "y": _number}), min_size=1, max_size=15),
)
def test_regression_ensemble_methods_agree_with_pypmml(method, rows):
    native, jvm = scorer_pair(_ensemble(method, "regression"))
    features = _features(rows)
    want = jvm.predict(features, len(rows)).value
    have = native.predict(features, len(rows)).value
    assert_close(have, want, PMML_DOUBLE)


@_fast
@given(rows=st.lists(st.fixed_dictionaries({"x": _number, "y": _number}), min_size=1, max_size=15))
def test_classification_median_agrees_with_pypmml(rows):
    native, jvm = scorer_pair(_ensemble("median", "classification"))
    features = _features(rows)
    want, have = jvm.predict(features, len(rows)), native.predict(features, len(rows))
    assert have.labels is not None and want.labels is not None
    assert have.labels.to_pylist() == want.labels.to_pylist()
    assert_close(have.probabilities, want.probabilities, PMML_DOUBLE)


def test_older_weighted_sum_spelling_is_weighted():
    """x-weightedSum (PMML 4.3's name) weighs the segments; pypmml ignores its weights."""
    rows = [{"x": 3.0, "y": 1.0}, {}]
    old = NativePmmlScorer(_ensemble("x-weightedSum", "regression")).predict(_features(rows), 2)
    new = NativePmmlScorer(_ensemble("weightedSum", "regression")).predict(_features(rows), 2)
    assert old.value is not None and old.value.tolist() == [4 + 2.5 * 0.5 + 0.5 * 3 - 2 * 3, 0.5]
    assert new.value is not None and new.value.tolist() == old.value.tolist()


def test_weighted_median_by_hand():
    """x = 3, y = 1: the segments predict 4 (weight 1), 0.5 (2.5), 3 (0.5) and -2 (3). In
    order, the cumulative weights are -2: 3, 0.5: 5.5, 3: 6, 4: 7; half of 7 is reached at 0.5."""
    scorer = NativePmmlScorer(_ensemble("weightedMedian", "regression"))
    pred = scorer.predict(_features([{"x": 3.0, "y": 1.0}]), 1)
    assert pred.value is not None and pred.value.tolist() == [0.5]


def test_select_all_refused_by_name():
    blob = _ensemble("selectAll", "regression")
    with pytest.raises(UnsupportedPmmlError, match='multipleModelMethod="selectAll"'):
        NativePmmlScorer(blob)
