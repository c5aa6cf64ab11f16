"""NaiveBayesModel, on a logarithmic scale over whole columns.

Per row and class: ln(prior count) from BayesOutput, plus, for each BayesInput in the document's
order, ln P(input value | class):

* categorical inputs (PairCounts): count / (the class' count summed over the input's PairCounts);
  a zero (or absent) count is replaced by the model's threshold. A value without PairCounts
  (and a missing value) adds nothing. An optional DerivedField (Discretize) maps the value to
  the PairCounts' values first.
* continuous inputs (TargetValueStats): the Gaussian density, or the Poisson probability of the
  value's integer part, raised to the threshold when below it. A missing value adds nothing.

Probabilities are the softmax of the sums (max subtracted, classes summed in BayesOutput order),
as JPMML computes them. Each input is a table lookup: one (values + 1, classes) table of
logarithms, the last row zeros for values that add nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

import numpy as np
import pandas as pd

from byom.pmml.expressions import EXPRESSION_TAGS, compile_expression
from byom.pmml.fields import is_missing, parse_value
from byom.pmml.models.base import ModelPlan, ModelResult, labels_from_probabilities
from byom.pmml.models.regression import sorted_classes
from byom.pmml.scope import Context, Expr, Scope
from byom.pmml.xml import child, children

_EPSILON = 2.0**-53  # a count this close to zero is zero (as commons-math's Precision.EPSILON)


@dataclass
class _Discrete:
    field: str
    #: PairCounts value (as the field's type) -> row of `table`.
    rows: dict[Any, int]
    #: (values + 1, classes) logarithms; the last row zeros.
    table: np.ndarray
    expression: Expr | None
    numeric: bool


@dataclass
class _Continuous:
    field: str
    #: Per class: ("gauss", mean, variance) / ("poisson", mean, 0) / None (adds nothing).
    distributions: list[tuple[str, float, float] | None]


def _count(ctx: Context, element: Element) -> float:
    text = element.get("count")
    if text is None:
        raise ctx.doc.invalid(element, "has no count")
    try:
        return float(text)
    except ValueError:
        raise ctx.doc.invalid(element, f'has count="{text}", which is not a number') from None


class NaiveBayesModel(ModelPlan):
    def __init__(self, ctx: Context, element: Element) -> None:
        super().__init__(ctx, element)
        if self.function != "classification":
            raise ctx.doc.invalid(element, f'has functionName="{self.function}"')
        threshold = element.get("threshold")
        if threshold is None:
            raise ctx.doc.invalid(element, "has no threshold")
        self.threshold = float(threshold)
        output = child(element, "BayesOutput")
        counts = child(output, "TargetValueCounts") if output is not None else None
        if output is None or counts is None:
            raise ctx.doc.invalid(element, "has no BayesOutput with TargetValueCounts")
        name = output.get("fieldName", output.get("field"))
        if self.target is not None and name is not None and name != self.target:
            raise ctx.doc.invalid(output, f"names {name!r}, which is not the model's target")
        prior = [(self.canonical(c.get("value", "")), _count(ctx, c)) for c in counts]
        if not prior:
            raise ctx.doc.invalid(counts, "has no TargetValueCount")
        #: The classes in BayesOutput order: the order of the log sums and the softmax.
        self.order = tuple(dict.fromkeys(c for c, _ in prior))
        if not self.classes:
            self.classes = tuple(sorted_classes(list(self.order), self))
        k = len(self.order)
        with np.errstate(divide="ignore"):
            self.prior = np.log(np.array([c for _, c in prior]))
        self.inputs: list[_Discrete | _Continuous] = []
        bayes_inputs = child(element, "BayesInputs")
        if bayes_inputs is None:
            raise ctx.doc.invalid(element, "has no BayesInputs")
        found = list(children(bayes_inputs, "BayesInput"))
        for extension in children(bayes_inputs, "Extension"):  # R's pmml package (PMML < 4.2)
            found += children(extension, "BayesInput")
        for bayes_input in found:
            self.inputs.append(self._read_input(ctx, bayes_input, k))
        self.compile_outputs(ctx)

    def _class_index(self, ctx: Context, element: Element) -> int:
        label = self.canonical(element.get("value", ""))
        if label not in self.order:
            raise ctx.doc.invalid(element, f"names class {label!r}, which BayesOutput lacks")
        return self.order.index(label)

    def _read_input(self, ctx: Context, element: Element, k: int) -> _Discrete | _Continuous:
        name = element.get("fieldName", element.get("field", ""))
        if name not in ctx.types:
            raise ctx.doc.invalid(element, f"refers to field {name!r}, which is not defined")
        stats = child(element, "TargetValueStats")
        if stats is not None:
            distributions: list[tuple[str, float, float] | None] = [None] * k
            for stat in children(stats, "TargetValueStat"):
                j = self._class_index(ctx, stat)
                distributions[j] = self._distribution(ctx, stat)
            return _Continuous(name, distributions)
        expression: Expr | None = None
        value_type = ctx.type_of(name)
        derived = child(element, "DerivedField")
        if derived is not None:
            inner = next((c for c in derived if c.tag in EXPRESSION_TAGS), None)
            if inner is None or inner.tag != "Discretize":
                raise ctx.doc.unsupported(
                    derived, "a BayesInput DerivedField other than Discretize"
                )
            expression = compile_expression(ctx, inner)[0]
            value_type = derived.get("dataType", "string")
        pairs = children(element, "PairCounts")
        counts = np.zeros((len(pairs), k))
        rows: dict[Any, int] = {}
        for i, pair in enumerate(pairs):
            value = parse_value(pair.get("value", ""), value_type)
            rows.setdefault(value, i)
            target_counts = child(pair, "TargetValueCounts")
            if target_counts is None:
                raise ctx.doc.invalid(pair, "has no TargetValueCounts")
            for c in children(target_counts, "TargetValueCount"):
                counts[i, self._class_index(ctx, c)] = _count(ctx, c)
        sums = np.zeros(k)
        for i in range(len(pairs)):  # each class' sum in the document's order
            sums = sums + counts[i]
        with np.errstate(divide="ignore", invalid="ignore"):
            probability = np.where(np.abs(counts) <= _EPSILON, self.threshold, counts / sums)
            table = np.vstack([np.log(probability), np.zeros((1, k))])
        numeric = value_type in ("double", "float", "integer", "boolean")
        return _Discrete(name, rows, table, expression, numeric)

    def _distribution(self, ctx: Context, stat: Element) -> tuple[str, float, float]:
        gauss = child(stat, "GaussianDistribution")
        if gauss is not None:
            mean, variance = gauss.get("mean"), gauss.get("variance")
            if mean is None or variance is None:
                raise ctx.doc.invalid(gauss, "needs mean and variance")
            if float(variance) <= 0:
                raise ctx.doc.invalid(gauss, "has a variance that is not positive")
            return ("gauss", float(mean), float(variance))
        poisson = child(stat, "PoissonDistribution")
        if poisson is not None:
            mean = poisson.get("mean")
            if mean is None:
                raise ctx.doc.invalid(poisson, "needs a mean")
            return ("poisson", float(mean), 0.0)
        other = next((c for c in stat if c.tag != "Extension"), stat)
        raise ctx.doc.unsupported(other, f"<{other.tag}> in a NaiveBayesModel TargetValueStat")

    # ------------------------------------------------------------------ evaluation

    def _discrete(self, item: _Discrete, scope: Scope) -> np.ndarray:
        column = scope.get(item.field)
        if item.expression is not None:
            column = item.expression(scope)
        missing = is_missing(column)
        keys = pd.Series(column, dtype=np.float64 if item.numeric else object)
        if item.numeric and column.dtype == object:
            keys = pd.to_numeric(pd.Series(column, dtype=object), errors="coerce")
        found = keys.map(item.rows).to_numpy(dtype=np.float64, na_value=np.nan)
        last = len(item.table) - 1
        index = np.where(np.isnan(found) | missing, last, np.nan_to_num(found, nan=last))
        return item.table[index.astype(np.intp)]

    def _continuous(self, item: _Continuous, scope: Scope) -> np.ndarray:
        x = scope.get(item.field)
        if x.dtype == object:
            x = pd.to_numeric(pd.Series(x, dtype=object), errors="coerce").to_numpy(np.float64)
        x = x.astype(np.float64, copy=False)
        present = ~np.isnan(x)
        out = np.zeros((len(x), len(item.distributions)))
        with np.errstate(all="ignore"):
            for j, distribution in enumerate(item.distributions):
                if distribution is None:
                    continue
                kind, mean, variance = distribution
                p = _gauss(x, mean, variance) if kind == "gauss" else _poisson(x, mean)
                p = np.where(p < self.threshold, self.threshold, p)
                out[:, j] = np.where(present, np.log(p), 0.0)
        return out

    def score(self, scope: Scope) -> ModelResult:
        n = scope.n
        logs = np.broadcast_to(self.prior, (n, len(self.order))).copy()
        for item in self.inputs:
            if isinstance(item, _Discrete):
                logs += self._discrete(item, scope)
            else:
                logs += self._continuous(item, scope)
        with np.errstate(invalid="ignore"):
            top = logs.max(axis=1, keepdims=True)
            p = np.exp(logs - top)
            total = p[:, 0].copy()
            for j in range(1, p.shape[1]):
                total += p[:, j]
            p = p / total[:, None]
        p[~np.isfinite(top[:, 0])] = np.nan  # every class impossible: no prediction
        proba = np.zeros((n, len(self.classes)))
        for j, c in enumerate(self.order):
            if c in self.classes:
                proba[:, self.classes.index(c)] = p[:, j]
        proba[np.isnan(p).any(axis=1)] = np.nan
        return ModelResult(
            n,
            labels=labels_from_probabilities(proba, self.classes),
            classes=self.classes,
            probabilities=proba,
        )


def _gauss(x: np.ndarray, mean: float, variance: float) -> np.ndarray:
    """The normal density as commons-math computes it."""
    sd = float(np.sqrt(variance))
    z = (x - mean) / sd
    return np.exp(-0.5 * z * z - (np.log(sd) + 0.5 * np.log(2.0 * np.pi)))


def _poisson(x: np.ndarray, mean: float) -> np.ndarray:
    from scipy.stats import poisson

    k = np.trunc(x)
    return np.asarray(poisson.pmf(np.nan_to_num(k, nan=-1.0), mean))


def compile_naive_bayes(ctx: Context, element: Element) -> ModelPlan:
    return NaiveBayesModel(ctx, element)
