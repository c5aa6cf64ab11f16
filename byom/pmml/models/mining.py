"""MiningModel: a Segmentation of models combined by its multipleModelMethod.

Segments are summed in document order (in float32 under x-mathContext="float", as XGBoost
does). When every segment is a numeric-split TreeModel with a True predicate, all trees are
traversed together (`byom.pmml.forest.Forest`), and where the combination is a sum they are
scored as one tree ensemble by the compiled kernel instead (`byom.pmml.forest.lower`): it
accumulates the same sums, which the same finishing steps turn into the result.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element

import numpy as np

from byom.pmml.models.base import ModelPlan, ModelResult, labels_from_probabilities
from byom.pmml.models.regression import sorted_classes
from byom.pmml.predicates import Constant, Predicate, compile_predicate, find_predicate
from byom.pmml.scope import Context, Scope
from byom.pmml.xml import child, children

if TYPE_CHECKING:
    from byom.pmml.forest import LoweredForest

REGRESSION_METHODS = {
    "sum",
    "weightedSum",
    "average",
    "weightedAverage",
    "median",
    "weightedMedian",
    "max",
    "modelChain",
    "selectFirst",
}
CLASSIFICATION_METHODS = {
    "majorityVote",
    "weightedMajorityVote",
    "average",
    "weightedAverage",
    "median",
    "max",
    "modelChain",
    "selectFirst",
}
#: Older spellings of PMML 4.4's methods.
ALIASES = {"x-weightedSum": "weightedSum", "x-weightedMedian": "weightedMedian"}
#: selectAll yields one result per chosen segment, not one per row: byom's scorers return one.
REFUSED = {"selectAll": "returns every chosen segment's result, not one per row"}


class MiningModel(ModelPlan):
    def __init__(self, ctx: Context, element: Element) -> None:
        from byom.pmml.models import compile_model

        super().__init__(ctx, element)
        segmentation = child(element, "Segmentation")
        if segmentation is None:
            raise ctx.doc.invalid(element, "has no Segmentation")
        self.method = segmentation.get("multipleModelMethod", "")
        self.method = ALIASES.get(self.method, self.method)
        if self.method in REFUSED:
            raise ctx.doc.unsupported(
                segmentation, f'multipleModelMethod="{self.method}" ({REFUSED[self.method]})'
            )
        allowed = REGRESSION_METHODS if self.function == "regression" else CLASSIFICATION_METHODS
        if self.method not in allowed:
            raise ctx.doc.unsupported(
                segmentation, f'multipleModelMethod="{self.method}" for {self.function}'
            )
        self.missing_treatment = segmentation.get("missingPredictionTreatment", "continue")
        if self.missing_treatment not in ("returnMissing", "skipSegment", "continue"):
            raise ctx.doc.unsupported(segmentation, "missingPredictionTreatment")
        self.segments: list[tuple[Predicate, float, ModelPlan]] = []
        for segment in children(segmentation, "Segment"):
            predicate_element = find_predicate(segment)
            if predicate_element is None:
                raise ctx.doc.invalid(segment, "has no predicate")
            predicate = compile_predicate(ctx, predicate_element)
            model_element = next(
                (c for c in segment if c.tag not in ("Extension",) and c is not predicate_element),
                None,
            )
            if model_element is None:
                raise ctx.doc.invalid(segment, "has no model")
            weight = float(segment.get("weight", "1"))
            self.segments.append((predicate, weight, compile_model(ctx, model_element)))
        if not self.segments:
            raise ctx.doc.invalid(segmentation, "has no Segment")
        if self.function == "classification" and not self.classes:
            if self.method == "modelChain" or self.method == "selectFirst":
                labels = [
                    c
                    for _, _, m in self.segments
                    if m.function == "classification"
                    for c in m.classes
                ]
            else:
                labels = [c for _, _, m in self.segments for c in m.classes]
            self.classes = tuple(sorted_classes(labels, self))
        self.forest = None
        #: The forest lowered to the tree kernel, when exact (decided here, at load).
        self.lowered: LoweredForest | None = None
        if self.method not in ("modelChain", "selectFirst") and len(self.segments) > 1:
            from byom.pmml.forest import Forest, lower
            from byom.pmml.models.tree import TreeModel

            trees = [
                m
                for p, _, m in self.segments
                if isinstance(p, Constant)
                and p.value
                and isinstance(m, TreeModel)
                and m.binary is not None
                and not m.outputs
                and m.targets is None
            ]
            if len(trees) == len(self.segments):
                self.forest = Forest(trees)
                self.lowered = lower(self)
        self.compile_outputs(ctx)

    def final_outputs(self) -> list[str]:
        """The OutputFields a caller sees, as JPMML reports them: for a model chain those of its
        last segments (from the last one whose predicate is True), for selectFirst those of its
        first ones (up to the first True one), then the model's own."""
        names = []
        for model in self._reported_segments():
            if isinstance(model, MiningModel):
                names += model.final_outputs()
            else:
                names += [o.name for o in model.outputs if o.final]
        names += [o.name for o in self.outputs if o.final]
        return list(dict.fromkeys(names))

    def _reported_segments(self) -> list[ModelPlan]:
        """The segments whose output fields JPMML nests into this model's (see final_outputs)."""
        if self.method not in ("modelChain", "selectFirst"):
            return []
        ordered = self.segments[::-1] if self.method == "modelChain" else self.segments
        picked = []
        for predicate, _, model in ordered:
            picked.append(model)
            if isinstance(predicate, Constant) and predicate.value:
                break
        return picked[::-1] if self.method == "modelChain" else picked

    def evaluate(self, scope: Scope) -> tuple[ModelResult, dict[str, np.ndarray]]:
        result, values = super().evaluate(scope)
        if result.nested:
            values = {**result.nested, **values}
        return result, values

    def _segment_results(self, scope: Scope) -> list[tuple[np.ndarray, float, ModelResult]]:
        results = []
        if self.forest is not None:
            leaves = self.forest.leaves(scope)
            everywhere = np.ones(scope.n, bool)
            values = self.forest.values(leaves)
            if values is not None:
                for i, (_, weight, _) in enumerate(self.segments):
                    results.append((everywhere, weight, ModelResult(scope.n, value=values[:, i])))
                return results
            for i, (_, weight, model) in enumerate(self.segments):
                results.append((everywhere, weight, model.result(leaves[:, i], False)))  # type: ignore[attr-defined]
            return results
        for predicate, weight, model in self.segments:
            chosen, _ = predicate(scope, None)
            result, outputs = model.evaluate(scope)
            if self.method == "modelChain":
                for o in model.outputs:  # only the segment's own fields feed later segments
                    scope.set(o.name, outputs[o.name])
            if self.method in ("modelChain", "selectFirst"):
                result = replace(result, nested=outputs)
            results.append((chosen, weight, result))
        return results

    def score(self, scope: Scope) -> ModelResult:
        n = scope.n
        if self.lowered is not None:
            total, count, missing = self.lowered.sums(scope)
            if self.function == "regression":
                return ModelResult(n, value=self._finish_values(total[:, 0], count, missing))
            return self._finish_classes(total, count, missing)
        results = self._segment_results(scope)
        if self.method in ("modelChain", "selectFirst"):
            out = self._select(results, n, last=self.method == "modelChain")
            return replace(out, nested=self._nested(results, n))
        if self.function == "regression":
            return ModelResult(n, value=self._combine_values(results, n))
        return self._combine_classes(results, n)

    def _nested(
        self, results: list[tuple[np.ndarray, float, ModelResult]], n: int
    ) -> dict[str, np.ndarray]:
        """The reported segments' output columns, missing on rows where the segment did not
        give the result (its predicate was not TRUE, or selectFirst took an earlier one)."""
        reported = {id(m) for m in self._reported_segments()}
        taken = np.zeros(n, bool)
        nested: dict[str, np.ndarray] = {}
        for (_, _, model), (chosen, _, r) in zip(self.segments, results, strict=True):
            ran = chosen & ~taken if self.method == "selectFirst" else chosen
            if self.method == "selectFirst":
                taken |= chosen
            if id(model) not in reported or not r.nested:
                continue
            for name, column in r.nested.items():
                if not ran.all():
                    column = column.astype(object if column.dtype == object else np.float64)
                    column[~ran] = None if column.dtype == object else np.nan
                nested.setdefault(name, column)
        return nested

    def _select(
        self, results: list[tuple[np.ndarray, float, ModelResult]], n: int, last: bool
    ) -> ModelResult:
        ordered = results[::-1] if last else results
        taken = np.zeros(n, bool)
        out = ModelResult(n, classes=self.classes)
        for chosen, _, r in ordered:
            pick = chosen & ~taken
            if not pick.any():
                continue
            if pick.all() and not taken.any():
                out = r
                if self.function == "classification" and r.classes != self.classes:
                    out = _reorder(r, self.classes)
                return out
            out = _merge(
                out, _reorder(r, self.classes) if r.probabilities is not None else r, pick, n
            )
            taken |= pick
        return out

    def _combine_values(
        self, results: list[tuple[np.ndarray, float, ModelResult]], n: int
    ) -> np.ndarray:
        dtype: Any = np.float32 if self.float_math else np.float64
        values: list[tuple[np.ndarray, float, Any]] = []
        for chosen, weight, r in results:
            v = r.value if r.value is not None else np.full(n, np.nan)
            values.append((chosen, weight, v.astype(dtype, copy=False)))
        if self.method in ("sum", "weightedSum", "average", "weightedAverage"):
            total: Any = np.zeros(n, dtype=dtype)
            count: Any = np.zeros(n, dtype=dtype)
            missing = np.zeros(n, bool)
            weighted = self.method in ("weightedAverage", "weightedSum")
            for chosen, weight, v in values:
                w = dtype(weight) if weighted else dtype(1)
                bad = chosen & np.isnan(v)
                missing |= bad
                use = chosen & ~bad
                if use.all():
                    total = total + (v * w if weighted else v)
                    count = count + w
                else:
                    term = v * w if weighted else v
                    total = total + np.where(use, term, dtype(0))
                    count = count + np.where(use, w, dtype(0))
            return self._finish_values(total, count, missing)
        stacked = np.column_stack([np.where(c, v, np.nan) for c, _, v in values])
        if self.method == "median":
            return _nanmedian(stacked)
        if self.method == "weightedMedian":
            return _weighted_median(stacked, np.array([w for _, w, _ in values]))
        return _nanmax(stacked)

    def _finish_values(self, total: Any, count: Any, missing: np.ndarray) -> np.ndarray:
        """A sum or average from its accumulated total, count and missing segments."""
        if self.method in ("sum", "weightedSum"):
            out = total
        else:  # rows no segment scored divide 0 by 0: they become NULL just below
            with np.errstate(invalid="ignore", divide="ignore"):
                out = total / count
        if self.missing_treatment == "returnMissing":
            out = np.where(missing, np.nan, out)
        return np.where(count == 0, np.nan, out)

    def _combine_classes(
        self, results: list[tuple[np.ndarray, float, ModelResult]], n: int
    ) -> ModelResult:
        k = len(self.classes)
        if self.method == "median":
            return self._median_classes(results, n, k)
        index = {c: j for j, c in enumerate(self.classes)}
        total = np.zeros((n, k))
        weights = np.zeros(n)
        missing = np.zeros(n, bool)
        for chosen, weight, r in results:
            w = weight if self.method.startswith("weighted") else 1.0
            if self.method in ("majorityVote", "weightedMajorityVote"):
                labels = r.labels if r.labels is not None else np.full(n, None, object)
                cols = np.array([index.get(v, -1) if v is not None else -1 for v in labels])
                ok = chosen & (cols >= 0)
                missing |= chosen & (cols < 0)
                np.add.at(total, (np.flatnonzero(ok), cols[ok]), w)
                weights += np.where(ok, w, 0.0)
            else:
                p = _reorder(r, self.classes).probabilities
                assert p is not None
                bad = np.isnan(p).any(axis=1)
                missing |= chosen & bad
                ok = chosen & ~bad
                if self.method == "max":
                    total = np.where(ok[:, None], np.maximum(total, np.nan_to_num(p)), total)
                    weights += ok
                else:
                    total = total + np.where(ok[:, None], np.nan_to_num(p) * w, 0.0)
                    weights += np.where(ok, w, 0.0)
        return self._finish_classes(total, weights, missing)

    def _finish_classes(
        self, total: np.ndarray, weights: np.ndarray, missing: np.ndarray
    ) -> ModelResult:
        """Probabilities and labels from the accumulated votes or probabilities and weights."""
        n = len(weights)
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.method == "max":
                proba = total / total.sum(axis=1, keepdims=True)
            else:
                proba = total / weights[:, None]
        if self.missing_treatment == "returnMissing":
            proba[missing] = np.nan
        proba[weights == 0] = np.nan
        labels = labels_from_probabilities(proba, self.classes)
        return ModelResult(n, labels=labels, classes=self.classes, probabilities=proba)

    def _median_classes(
        self, results: list[tuple[np.ndarray, float, ModelResult]], n: int, k: int
    ) -> ModelResult:
        """Per class, the median of the chosen segments' probabilities (not renormalized)."""
        stacked = np.full((n, len(results), k), np.nan)
        missing = np.zeros(n, bool)
        for i, (chosen, _, r) in enumerate(results):
            p = _reorder(r, self.classes).probabilities
            assert p is not None
            bad = np.isnan(p).any(axis=1)
            missing |= chosen & bad
            stacked[:, i] = np.where((chosen & ~bad)[:, None], p, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            proba = np.nanmedian(stacked, axis=1) if len(results) else np.full((n, k), np.nan)
        if self.missing_treatment == "returnMissing":
            proba[missing] = np.nan
        labels = labels_from_probabilities(proba, self.classes)
        return ModelResult(n, labels=labels, classes=self.classes, probabilities=proba)


def _nanmedian(stacked: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN
        return np.nanmedian(stacked, axis=1)


def _nanmax(stacked: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmax(stacked, axis=1)


def _weighted_median(stacked: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per row, the smallest value whose cumulative weight (values in ascending order, NaN
    skipped) reaches half of the row's total weight; NaN where no value."""
    order = np.argsort(stacked, axis=1, kind="stable")  # NaN last
    values = np.take_along_axis(stacked, order, axis=1)
    w = np.where(np.isnan(values), 0.0, weights[order])
    cumulative = np.cumsum(w, axis=1)
    half = cumulative[:, -1:] / 2
    index = np.argmax(cumulative >= half, axis=1)
    out = values[np.arange(len(values)), index]
    return np.where(cumulative[:, -1] > 0, out, np.nan)


def _reorder(r: ModelResult, classes: tuple[str, ...]) -> ModelResult:
    if r.probabilities is None or r.classes == classes:
        return r
    p = np.zeros((r.n, len(classes)))
    for j, c in enumerate(r.classes):
        if c in classes:
            p[:, classes.index(c)] = r.probabilities[:, j]
    p[np.isnan(r.probabilities).any(axis=1)] = np.nan
    return ModelResult(r.n, r.value, r.labels, classes, p, r.entities)


def _merge(out: ModelResult, r: ModelResult, pick: np.ndarray, n: int) -> ModelResult:
    if r.value is not None:
        base = out.value if out.value is not None else np.full(n, np.nan)
        out.value = np.where(pick, r.value, base)
    if r.labels is not None:
        base_labels = out.labels if out.labels is not None else np.full(n, None, object)
        out.labels = np.where(pick, r.labels, base_labels)
    if r.probabilities is not None:
        base_p = out.probabilities
        if base_p is None:
            base_p = np.full(r.probabilities.shape, np.nan)
        out.probabilities = np.where(pick[:, None], r.probabilities, base_p)
    return out


def compile_mining(ctx: Context, element: Element) -> ModelPlan:
    return MiningModel(ctx, element)
