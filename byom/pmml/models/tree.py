"""TreeModel, evaluated without per-row Python.

Every strategy goes through `_walk`, which descends node by node carrying the row indices that
reached each node (one numpy call per node, not per row). Trees whose splits are all numeric
comparisons (what sklearn2pmml writes for scikit-learn, LightGBM and XGBoost) are also compiled
into flat arrays of binary decisions (`BinaryTree`), which `byom.pmml.forest` traverses for many
trees and rows at once. Both produce, per row, the index of the node whose score is the result
(-1: no prediction); scores, labels and probabilities are then table lookups.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

import numpy as np

from byom.errors import InvalidModelError
from byom.pmml.fields import parse_value
from byom.pmml.models.base import ModelPlan, ModelResult
from byom.pmml.models.regression import sorted_classes
from byom.pmml.predicates import Constant, Predicate, Simple, compile_predicate, find_predicate
from byom.pmml.scope import Context, Scope
from byom.pmml.xml import children

MAX_DEPTH = 250
MISSING_STRATEGIES = {"none", "lastPrediction", "nullPrediction", "defaultChild"}


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
        self.binary = self._binary()
        self.compile_outputs(ctx)

    # ------------------------------------------------------------------ compile

    def _read(self, ctx: Context, element: Element, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            raise ctx.doc.invalid(element, f"is nested deeper than {MAX_DEPTH} levels")
        predicate_element = find_predicate(element)
        if predicate_element is None:
            raise ctx.doc.invalid(element, "has no predicate")
        score = element.get("score")
        distribution = []
        for d in children(element, "ScoreDistribution"):
            probability = d.get("probability")
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

    def _binary(self) -> BinaryTree | None:
        """Flat binary decisions, when every split is an ordering of a numeric field."""
        if self.missing_strategy == "defaultChild" or self.treatments or self.local:
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

    def leaves(self, scope: Scope) -> np.ndarray:
        """Per row, the index of the node whose score is the result (-1: none)."""
        if self.binary is not None:
            from byom.pmml.forest import Forest

            return Forest([self]).leaves(scope)[:, 0]
        out = np.full(scope.n, -1, dtype=np.int64)
        true, _ = self.root.predicate(scope, None)
        self._walk(self.root, np.flatnonzero(true), scope, out)
        return out

    def _walk(self, node: _Node, rows: np.ndarray, scope: Scope, out: np.ndarray) -> None:
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
                    remaining = remaining[~true & ~unknown]
                else:
                    remaining = remaining[~true]
            if remaining.size:
                last = self.no_true_child == "returnLastPrediction"
                out[remaining] = node.index if last else -1

    def result(self, leaves: np.ndarray, entities: bool = True) -> ModelResult:
        """Scores, labels and probabilities of the nodes in `leaves`; node ids if `entities`."""
        n = len(leaves)
        index = np.where(leaves < 0, len(self.nodes), leaves)
        ids = self.entity_table[index] if entities else None
        if self.function == "regression":
            return ModelResult(n, value=self.value_table[index], entities=ids)
        return ModelResult(
            n,
            labels=self.label_table[index],
            classes=self.classes,
            probabilities=self.proba_table[index],
            entities=ids,
        )

    def score(self, scope: Scope) -> ModelResult:
        return self.result(self.leaves(scope))


#: Whether a comparison's TRUE side is `x > threshold` once written as `x <= threshold'`.
_FLIPPED = {"lessOrEqual": False, "lessThan": False, "greaterThan": True, "greaterOrEqual": True}


def compile_tree(ctx: Context, element: Element) -> ModelPlan:
    try:
        return TreeModel(ctx, element)
    except RecursionError:
        raise InvalidModelError(f"{ctx.doc.who}: a TreeModel is nested too deeply") from None
