"""TreeModel, evaluated without per-row Python.

Every strategy goes through `_walk`, which descends node by node carrying the row indices that
reached each node (one numpy call per node, not per row). Trees whose splits are all numeric
comparisons (what sklearn2pmml writes for scikit-learn, LightGBM and XGBoost) are also compiled
into flat arrays of binary decisions (`BinaryTree`), which `byom.pmml.forest` traverses for many
trees and rows at once. Both produce, per row, the index of the node whose score is the result
(-1: no prediction); scores, labels and probabilities are then table lookups.

missingValueStrategy="weightedConfidence" and "aggregateNodes" (classification only) send a row
whose split is UNKNOWN down several children at once: `_spread` carries (row, weight) pairs
node by node, and the reached nodes are combined per row with `np.add.at`. Rows that meet no
UNKNOWN split get the plain single-node result. Per PMML, weightedConfidence follows the
UNKNOWN child and its later siblings that are not FALSE (up to the first TRUE one), each weighted
by its recordCount over the parent's, recursively; a class's confidence is its ScoreDistribution
confidence (its probability where none is given), the prediction is the class of highest summed
confidence and the probabilities are the weighted average. aggregateNodes follows the same
children and sums the ScoreDistribution recordCounts of the leaves reached. The Output feature
"confidence" is the reached node's ScoreDistribution confidence of the predicted class (NULL
where none is given), times missingValuePenalty per defaultChild taken on the way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

import numpy as np

from byom.errors import InvalidModelError
from byom.pmml.fields import parse_value
from byom.pmml.models.base import ModelPlan, ModelResult, OutputFieldPlan
from byom.pmml.models.regression import sorted_classes
from byom.pmml.predicates import Constant, Predicate, Simple, compile_predicate, find_predicate
from byom.pmml.scope import Context, Scope
from byom.pmml.xml import children

MAX_DEPTH = 250
MISSING_STRATEGIES = {
    "none",
    "lastPrediction",
    "nullPrediction",
    "defaultChild",
    "weightedConfidence",
    "aggregateNodes",
}
#: Strategies that follow several children of a node at once (classification only).
SPREADING = ("weightedConfidence", "aggregateNodes")


@dataclass
class _Node:
    index: int
    id: str | None
    predicate: Predicate
    score: str | None
    distribution: list[tuple[str, float, float | None]]
    children: list[_Node] = field(default_factory=list)
    default_child: str | None = None
    element: Element | None = None
    record_count: float | None = None
    #: ScoreDistribution confidences, by class.
    confidences: dict[str, float] = field(default_factory=dict)


@dataclass
class TreeResult(ModelResult):
    """A tree's result, with the confidence of its predicted class (NaN where none)."""

    confidence: np.ndarray | None = None


@dataclass
class BinaryTree:
    """A tree as binary decisions `x <= threshold`, for `byom.pmml.forest`.

    Codes >= 0 are decision indices; a code c < 0 is the outcome -(c + 1): an index into
    `outcomes`, which holds the tree node whose score is the result, or -1 for none."""

    fields: list[str] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)
    le_next: list[int] = field(default_factory=list)
    gt_next: list[int] = field(default_factory=list)
    nan_next: list[int] = field(default_factory=list)
    outcomes: list[int] = field(default_factory=list)
    start: int = 0


class TreeModel(ModelPlan):
    def __init__(self, ctx: Context, element: Element) -> None:
        super().__init__(ctx, element)
        self.missing_strategy = element.get("missingValueStrategy", "none")
        if self.missing_strategy not in MISSING_STRATEGIES:
            raise ctx.doc.unsupported(element, f'missingValueStrategy="{self.missing_strategy}"')
        if self.missing_strategy in SPREADING and self.function != "classification":
            raise ctx.doc.unsupported(
                element, f'missingValueStrategy="{self.missing_strategy}" for {self.function}'
            )
        try:
            self.penalty = float(element.get("missingValuePenalty", "1"))
        except ValueError:
            self.penalty = float("nan")
        if not 0.0 <= self.penalty <= 1.0:
            raise ctx.doc.invalid(
                element, f'has missingValuePenalty="{element.get("missingValuePenalty")}"'
            )
        self.no_true_child = element.get("noTrueChildStrategy", "returnNullPrediction")
        if self.no_true_child not in ("returnNullPrediction", "returnLastPrediction"):
            raise ctx.doc.unsupported(element, f'noTrueChildStrategy="{self.no_true_child}"')
        roots = children(element, "Node")
        if len(roots) != 1:
            raise ctx.doc.invalid(element, f"has {len(roots)} root Nodes, not one")
        self.nodes: list[_Node] = []
        self.root = self._read(ctx, roots[0], 0)
        self._check_default_children(ctx)
        if self.function == "classification" and not self.classes:
            labels = [n.score for n in self.nodes if n.score is not None]
            labels += [c for n in self.nodes for c, _, _ in n.distribution]
            self.classes = tuple(sorted_classes(labels, self))
        self._tables(ctx)
        if self.missing_strategy == "weightedConfidence":
            self._check_record_counts(ctx)
        self.binary = self._binary()
        self.compile_outputs(ctx)

    def compile_outputs(self, ctx: Context, extra: dict[str, str] | None = None) -> None:
        confidence = {"confidence": "double"} if self.function == "classification" else {}
        super().compile_outputs(ctx, confidence)

    # ------------------------------------------------------------------ compile

    def _read(self, ctx: Context, element: Element, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            raise ctx.doc.invalid(element, f"is nested deeper than {MAX_DEPTH} levels")
        predicate_element = find_predicate(element)
        if predicate_element is None:
            raise ctx.doc.invalid(element, "has no predicate")
        score = element.get("score")
        distribution = []
        confidences: dict[str, float] = {}
        for d in children(element, "ScoreDistribution"):
            probability = d.get("probability")
            if d.get("confidence") is not None:
                confidences[self.canonical(d.get("value", ""))] = float(d.get("confidence", ""))
            distribution.append(
                (
                    self.canonical(d.get("value", "")),
                    float(d.get("recordCount", "0")),
                    float(probability) if probability is not None else None,
                )
            )
        node = _Node(
            len(self.nodes),
            element.get("id"),
            compile_predicate(ctx, predicate_element),
            self.canonical(score)
            if score is not None and self.function == "classification"
            else score,
            distribution,
            default_child=element.get("defaultChild"),
            element=element,
            record_count=float(element.get("recordCount", ""))
            if element.get("recordCount") is not None
            else None,
            confidences=confidences,
        )
        self.nodes.append(node)
        for c in children(element, "Node"):
            node.children.append(self._read(ctx, c, depth + 1))
        for c in element:
            if c.tag in ("Partition", "Regression", "DecisionTree"):
                raise ctx.doc.unsupported(c, f"<{c.tag}> inside a tree Node")
        return node

    def _check_default_children(self, ctx: Context) -> None:
        for node in self.nodes:
            if node.default_child is None:
                if self.missing_strategy == "defaultChild" and node.children:
                    assert node.element is not None
                    raise ctx.doc.invalid(
                        node.element,
                        "has children but no defaultChild, which the tree's "
                        'missingValueStrategy="defaultChild" needs',
                    )
                continue
            if not any(c.id == node.default_child for c in node.children):
                assert node.element is not None
                raise ctx.doc.invalid(
                    node.element,
                    f"names defaultChild {node.default_child!r}, which is not one of its children",
                )

    def _tables(self, ctx: Context) -> None:
        count = len(self.nodes)
        self.entity_table = np.array([n.id for n in self.nodes] + [None], dtype=object)
        if self.function == "regression":
            values = np.full(count + 1, np.nan, dtype=np.float32 if self.float_math else np.float64)
            for n in self.nodes:
                if n.score is not None:
                    try:
                        values[n.index] = float(
                            parse_value(n.score, "float" if self.float_math else "double")
                        )
                    except ValueError:
                        assert n.element is not None
                        raise ctx.doc.invalid(n.element, f"has score {n.score!r}") from None
            self.value_table = values
            return
        k = len(self.classes)
        proba = np.full((count + 1, k), np.nan)
        labels = np.full(count + 1, None, dtype=object)
        for n in self.nodes:
            row = np.zeros(k)
            if n.distribution:
                total = sum(c for _, c, _ in n.distribution)
                for label, c, p in n.distribution:
                    if label in self.classes:
                        row[self.classes.index(label)] = (
                            p if p is not None else (c / total if total else 0.0)
                        )
            elif n.score in self.classes:
                row[self.classes.index(n.score)] = 1.0
            proba[n.index] = row
            if n.score is not None:
                labels[n.index] = n.score
            elif n.distribution:
                labels[n.index] = self.classes[int(np.argmax(row))]
        self.proba_table = proba
        self.label_table = labels
        # Per node: each class's confidence (NaN where not given), the confidence of the node's
        # own label, each class's recordCount, and whether the node is a leaf.
        confidence = np.full((count + 1, k), np.nan)
        counts = np.zeros((count + 1, k))
        for n in self.nodes:
            for label, value in n.confidences.items():
                if label in self.classes:
                    confidence[n.index, self.classes.index(label)] = value
            for label, c, _ in n.distribution:
                if label in self.classes:
                    counts[n.index, self.classes.index(label)] += c
        column = np.array([self.classes.index(v) if v in self.classes else k for v in labels])
        padded = np.column_stack([confidence, np.full(count + 1, np.nan)])
        self.label_confidence_table = padded[np.arange(count + 1), column]
        # weightedConfidence: a class's confidence, or its probability where none is given.
        self.spread_confidence_table = np.where(np.isnan(confidence), proba, confidence)
        self.count_table = counts
        self.is_leaf = np.array([not n.children for n in self.nodes] + [False])

    def _check_record_counts(self, ctx: Context) -> None:
        """weightedConfidence weighs children by their share of the parent's recordCount: every
        split Node and its children need a count (recordCount, else their ScoreDistribution's)."""
        self.counts: list[float] = []
        for n in self.nodes:
            c = n.record_count
            if c is None and n.distribution:
                c = sum(count for _, count, _ in n.distribution)
            self.counts.append(np.nan if c is None else c)
        for n in self.nodes:
            if not n.children:
                continue
            for m in [n, *n.children]:
                if not np.isfinite(self.counts[m.index]) or (m is n and self.counts[m.index] <= 0):
                    assert m.element is not None
                    raise ctx.doc.invalid(
                        m.element,
                        'has no recordCount, which missingValueStrategy="weightedConfidence" needs',
                    )

    def _binary(self) -> BinaryTree | None:
        """Flat binary decisions, when every split is an ordering of a numeric field."""
        if self.missing_strategy in ("defaultChild", *SPREADING) or self.treatments or self.local:
            return None
        if not isinstance(self.root.predicate, Constant) or not self.root.predicate.value:
            return None
        for node in self.nodes[1:]:
            p = node.predicate
            if isinstance(p, Constant):
                continue
            if not (isinstance(p, Simple) and p.numeric and p.operator in _FLIPPED):
                return None
        tree = BinaryTree()

        def outcome(node_index: int) -> int:
            # A fresh outcome per use: the decisions form a proper tree (no shared leaves),
            # which the forest's leaf bitmasks rely on.
            tree.outcomes.append(node_index)
            return -len(tree.outcomes)

        def build(node: _Node) -> int:
            if not node.children:
                return outcome(node.index)
            reachable = []
            for c in node.children:
                if isinstance(c.predicate, Constant) and not c.predicate.value:
                    continue
                reachable.append(c)
                if isinstance(c.predicate, Constant):
                    break  # later siblings are never tested
            nxt: int | None = None
            if not reachable or not isinstance(reachable[-1].predicate, Constant):
                nxt = outcome(node.index if self.no_true_child == "returnLastPrediction" else -1)
            for c in reversed(reachable):
                sub = build(c)
                p = c.predicate
                if isinstance(p, Constant):
                    nxt = sub
                    continue
                assert isinstance(p, Simple) and nxt is not None
                if self.missing_strategy == "none":
                    unknown = nxt
                elif self.missing_strategy == "lastPrediction":
                    unknown = outcome(node.index)
                else:
                    unknown = outcome(-1)
                threshold = float(p.value)  # type: ignore[arg-type]
                if p.operator in ("lessThan", "greaterOrEqual"):
                    threshold = float(np.nextafter(threshold, -np.inf))
                flipped = _FLIPPED[p.operator]
                tree.fields.append(p.field)
                tree.thresholds.append(threshold)
                tree.le_next.append(nxt if flipped else sub)
                tree.gt_next.append(sub if flipped else nxt)
                tree.nan_next.append(unknown)
                nxt = len(tree.fields) - 1
            assert nxt is not None
            return nxt

        tree.start = build(self.root)
        return tree

    # ------------------------------------------------------------------ evaluation

    def leaves(self, scope: Scope, levels: np.ndarray | None = None) -> np.ndarray:
        """Per row, the index of the node whose score is the result (-1: none). `levels`, if
        given, counts per row the defaultChild steps taken (for missingValuePenalty)."""
        if self.binary is not None:
            from byom.pmml.forest import Forest

            return Forest([self]).leaves(scope)[:, 0]
        out = np.full(scope.n, -1, dtype=np.int64)
        true, _ = self.root.predicate(scope, None)
        self._walk(self.root, np.flatnonzero(true), scope, out, levels)
        return out

    def _walk(
        self,
        node: _Node,
        rows: np.ndarray,
        scope: Scope,
        out: np.ndarray,
        levels: np.ndarray | None = None,
    ) -> None:
        # An explicit stack: deep trees must not exhaust Python's recursion limit.
        stack = [(node, rows)]
        while stack:
            node, rows = stack.pop()
            if rows.size == 0:
                continue
            if not node.children:
                out[rows] = node.index
                continue
            remaining = rows
            for c in node.children:
                if remaining.size == 0:
                    break
                true, unknown = c.predicate(scope, remaining)
                if true.any():
                    stack.append((c, remaining[true]))
                if unknown.any() and self.missing_strategy != "none":
                    lost = remaining[unknown]
                    if self.missing_strategy == "lastPrediction":
                        out[lost] = node.index
                    elif self.missing_strategy == "nullPrediction":
                        out[lost] = -1
                    else:  # defaultChild
                        default = next(d for d in node.children if d.id == node.default_child)
                        stack.append((default, lost))
                        if levels is not None:
                            levels[lost] += 1
                    remaining = remaining[~true & ~unknown]
                else:
                    remaining = remaining[~true]
            if remaining.size:
                last = self.no_true_child == "returnLastPrediction"
                out[remaining] = node.index if last else -1

    def _spread(
        self, scope: Scope
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """weightedConfidence / aggregateNodes: per row, the node of the plain result (-1: none),
        whether the row met an UNKNOWN split, and the (rows, nodes, weights) of the nodes
        reached, one triple per row and node (no per-row Python: one numpy pass per node)."""
        n = scope.n
        out = np.full(n, -1, dtype=np.int64)
        spread = np.zeros(n, bool)
        weighted = self.missing_strategy == "weightedConfidence"
        last = self.no_true_child == "returnLastPrediction"
        reached_rows: list[np.ndarray] = []
        reached_nodes: list[np.ndarray] = []
        reached_weights: list[np.ndarray] = []
        true, _ = self.root.predicate(scope, None)
        rows = np.flatnonzero(true)
        stack = [(self.root, rows, np.ones(len(rows)))]
        while stack:
            node, rows, weights = stack.pop()
            if rows.size == 0:
                continue
            if not node.children:
                out[rows] = node.index
                reached_rows.append(rows)
                reached_nodes.append(np.full(rows.size, node.index))
                reached_weights.append(weights)
                continue
            remaining, w = rows, weights
            unknown_seen = np.zeros(rows.size, bool)
            followed = np.zeros(rows.size, bool)
            for c in node.children:
                if remaining.size == 0:
                    break
                true, unknown = c.predicate(scope, remaining)
                follow = true | unknown
                if follow.any():
                    # A child followed after an UNKNOWN sibling (or itself UNKNOWN) counts for
                    # its share of the parent's records; a plain TRUE child for all of them.
                    partial = (unknown_seen | unknown)[follow]
                    child_w = w[follow]
                    if weighted:
                        share = self.counts[c.index] / self.counts[node.index]
                        child_w = np.where(partial, child_w * share, child_w)
                    stack.append((c, remaining[follow], child_w))
                    followed |= follow
                if unknown.any():
                    spread[remaining[unknown]] = True
                    unknown_seen |= unknown
                keep = ~true
                remaining, w = remaining[keep], w[keep]
                unknown_seen, followed = unknown_seen[keep], followed[keep]
            stuck = ~followed
            if last and stuck.any():
                out[remaining[stuck]] = node.index
                reached_rows.append(remaining[stuck])
                reached_nodes.append(np.full(int(stuck.sum()), node.index))
                reached_weights.append(w[stuck])
        if not reached_rows:
            empty = np.zeros(0, dtype=np.int64)
            return out, spread, empty, empty, np.zeros(0)
        return (
            out,
            spread,
            np.concatenate(reached_rows),
            np.concatenate(reached_nodes),
            np.concatenate(reached_weights),
        )

    def result(
        self, leaves: np.ndarray, entities: bool = True, levels: np.ndarray | None = None
    ) -> ModelResult:
        """Scores, labels and probabilities of the nodes in `leaves`; node ids if `entities`;
        `levels`: defaultChild steps per row, for missingValuePenalty."""
        n = len(leaves)
        index = np.where(leaves < 0, len(self.nodes), leaves)
        ids = self.entity_table[index] if entities else None
        if self.function == "regression":
            return ModelResult(n, value=self.value_table[index], entities=ids)
        confidence = self.label_confidence_table[index]
        if levels is not None and self.penalty != 1.0:
            confidence = confidence * self.penalty**levels
        return TreeResult(
            n,
            labels=self.label_table[index],
            classes=self.classes,
            probabilities=self.proba_table[index],
            entities=ids,
            confidence=confidence,
        )

    def score(self, scope: Scope) -> ModelResult:
        if self.missing_strategy in SPREADING:
            return self._spread_result(scope)
        if self.missing_strategy == "defaultChild" and self.penalty != 1.0:
            levels = np.zeros(scope.n, dtype=np.int64)
            return self.result(self.leaves(scope, levels), levels=levels)
        return self.result(self.leaves(scope))

    def _spread_result(self, scope: Scope) -> ModelResult:
        leaves, spread, rows, nodes, weights = self._spread(scope)
        result = self.result(leaves)
        assert isinstance(result, TreeResult)
        if not spread.any():
            return result
        n, k = scope.n, len(self.classes)
        keep = spread[rows]
        rows, nodes, weights = rows[keep], nodes[keep], weights[keep]
        if self.missing_strategy == "aggregateNodes":
            leaf = self.is_leaf[nodes]
            counts = np.zeros((n, k))
            np.add.at(counts, rows[leaf], self.count_table[nodes[leaf]])
            total = counts.sum(axis=1, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                probabilities = counts / total
            score = counts
        else:
            score = np.zeros((n, k))
            np.add.at(score, rows, self.spread_confidence_table[nodes] * weights[:, None])
            summed = np.zeros((n, k))
            np.add.at(summed, rows, self.proba_table[nodes] * weights[:, None])
            total_w = np.zeros(n)
            np.add.at(total_w, rows, weights)
            with np.errstate(invalid="ignore", divide="ignore"):
                probabilities = summed / total_w[:, None]
        best = score.argmax(axis=1) if k else np.zeros(n, dtype=np.int64)
        top = score[np.arange(n), best] if k else np.zeros(n)
        found = spread & (top > 0)
        lost = spread & ~found
        labels = result.labels
        assert labels is not None and result.probabilities is not None
        labels = labels.copy()
        labels[found] = np.array(self.classes, dtype=object)[best[found]]
        labels[lost] = None
        proba = result.probabilities.copy()
        proba[found] = probabilities[found]
        proba[lost] = np.nan
        confidence = (
            result.confidence.copy() if result.confidence is not None else np.full(n, np.nan)
        )
        if self.missing_strategy == "aggregateNodes":
            with np.errstate(invalid="ignore", divide="ignore"):
                confidence[found] = top[found] / score[found].sum(axis=1)
        else:
            confidence[found] = top[found]
        confidence[lost] = np.nan
        entities = result.entities
        assert entities is not None
        entities = entities.copy()
        entities[spread] = None
        return TreeResult(
            n,
            labels=labels,
            classes=self.classes,
            probabilities=proba,
            entities=entities,
            confidence=confidence,
        )

    def _output(self, plan: OutputFieldPlan, result: ModelResult, scope: Scope) -> np.ndarray:
        if plan.feature == "confidence":
            if isinstance(result, TreeResult) and result.confidence is not None:
                return result.confidence
            return np.full(result.n, np.nan)
        return super()._output(plan, result, scope)


#: Whether a comparison's TRUE side is `x > threshold` once written as `x <= threshold'`.
_FLIPPED = {"lessOrEqual": False, "lessThan": False, "greaterThan": True, "greaterOrEqual": True}


def compile_tree(ctx: Context, element: Element) -> ModelPlan:
    try:
        return TreeModel(ctx, element)
    except RecursionError:
        raise InvalidModelError(f"{ctx.doc.who}: a TreeModel is nested too deeply") from None
