"""ClusteringModel (centerBased): every row against every cluster center at once.

For each ClusteringField the compare function gives an (rows x clusters) matrix; the
ComparisonMeasure folds them into one (rows x clusters) distance or similarity matrix, from which
the winning cluster (nearest, or most similar; the first on ties) is an argmin / argmax. Rows whose
measure cannot be computed for any cluster (every field missing) get no prediction.

Outputs: predictedValue and entityId are the cluster's id (its `id`, else its 1-based position),
predictedDisplayValue its name (NULL without one, as in pypmml), clusterId the 1-based position,
affinity and clusterAffinity the measure for the winning cluster or, with `value=`, for the cluster
of that id (or name).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

import numpy as np
import pandas as pd

from byom.pmml.fields import is_missing
from byom.pmml.models.base import ModelPlan, ModelResult, OutputFieldPlan
from byom.pmml.predicates import parse_array
from byom.pmml.scope import Context, Scope
from byom.pmml.xml import child, children

DISTANCES = {"euclidean", "squaredEuclidean", "chebychev", "cityBlock", "minkowski"}
SIMILARITIES = {"simpleMatching", "jaccard", "tanimoto", "binarySimilarity"}
COMPARE_FUNCTIONS = {"absDiff", "gaussSim", "delta", "equal", "table"}
#: binarySimilarity's parameters, in the order of the counts (a11, a10, a01, a00).
_BINARY_PARAMS = (("c11", "c10", "c01", "c00"), ("d11", "d10", "d01", "d00"))


@dataclass
class _Field:
    name: str
    numeric: bool
    weight: float
    compare: str
    scale: float | None
    #: compare="table": the field's values (rows and columns of the matrix) and the matrix.
    values: list[Any] = field(default_factory=list)
    table: np.ndarray | None = None


@dataclass
class ClusterResult(ModelResult):
    #: (n, clusters) distances or similarities.
    measures: np.ndarray | None = None
    #: Per row, the winning cluster's position (-1: none).
    winner: np.ndarray | None = None


def _number(ctx: Context, element: Element, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ctx.doc.invalid(element, f"holds {text!r}, which is not a number") from None
    if math.isnan(value):
        raise ctx.doc.invalid(element, "holds NaN")
    return value


def _array(ctx: Context, element: Element | None, size: int, what: str) -> list[str]:
    if element is None:
        raise ctx.doc.invalid(ctx.doc.root, f"has no Array for {what}")
    kind = element.get("type", "real")
    if kind not in ("real", "int", "string"):
        raise ctx.doc.unsupported(element, f'Array type="{kind}"')
    tokens = parse_array(element)
    declared = element.get("n")
    if declared is not None and declared.strip() != str(len(tokens)):
        raise ctx.doc.invalid(element, f'says n="{declared}" but holds {len(tokens)} values')
    if len(tokens) != size:
        raise ctx.doc.invalid(element, f"holds {len(tokens)} values, {what} needs {size}")
    return tokens


class ClusteringModel(ModelPlan):
    FUNCTIONS = ("clustering",)

    def __init__(self, ctx: Context, element: Element) -> None:
        super().__init__(ctx, element)
        model_class = element.get("modelClass", "centerBased")
        if model_class != "centerBased":
            raise ctx.doc.unsupported(element, f'ClusteringModel modelClass="{model_class}"')
        measure = child(element, "ComparisonMeasure")
        if measure is None:
            raise ctx.doc.invalid(element, "has no ComparisonMeasure")
        self.kind = measure.get("kind", "distance")
        metric = next((c for c in measure if c.tag in DISTANCES | SIMILARITIES), None)
        if metric is None or self.kind not in ("distance", "similarity"):
            raise ctx.doc.unsupported(measure, "this ComparisonMeasure")
        self.metric = metric.tag
        self.p = 2.0
        if metric.tag == "minkowski":
            if metric.get("p-parameter") is None:
                raise ctx.doc.invalid(metric, "has no p-parameter")
            self.p = _number(ctx, metric, metric.get("p-parameter", ""))
        if self.metric == "minkowski" and self.p <= 0:
            raise ctx.doc.invalid(metric, f"has p={self.p}, which is not positive")
        self.binary = [
            [_number(ctx, metric, metric.get(f"{a}-parameter", "0")) for a in names]
            for names in _BINARY_PARAMS
        ]
        self.fields = self._fields(ctx, element, measure.get("compareFunction", "absDiff"))
        if not self.fields:
            raise ctx.doc.invalid(element, "has no ClusteringField")
        m = len(self.fields)
        weights = child(element, "MissingValueWeights")
        if weights is not None:
            tokens = _array(ctx, child(weights, "Array"), m, "MissingValueWeights")
            self.missing_weights = np.array([_number(ctx, weights, t) for t in tokens])
        else:
            self.missing_weights = np.ones(m)
        self._clusters(ctx, element, m)
        self.compile_outputs(ctx)

    def _fields(self, ctx: Context, element: Element, default_compare: str) -> list[_Field]:
        """The center fields, each with its weight, compare function and scale."""
        fields: list[_Field] = []
        for f in children(element, "ClusteringField"):
            if f.get("isCenterField", "true") == "false":
                continue
            name = f.get("field", "")
            if name not in ctx.types:
                raise ctx.doc.invalid(f, f"refers to field {name!r}, which is not defined")
            compare = f.get("compareFunction", default_compare)
            if compare not in COMPARE_FUNCTIONS:
                raise ctx.doc.unsupported(f, f'compareFunction="{compare}"')
            numeric = ctx.type_of(name) != "string"
            if not numeric and compare in ("absDiff", "gaussSim"):
                raise ctx.doc.invalid(f, f"compares the string field {name!r} by {compare}")
            scale = f.get("similarityScale")
            plan = _Field(
                name,
                numeric,
                _number(ctx, f, f.get("fieldWeight", "1")),
                compare,
                _number(ctx, f, scale) if scale is not None else None,
            )
            if compare == "gaussSim" and not plan.scale:
                raise ctx.doc.invalid(f, "uses gaussSim without a non-zero similarityScale")
            if compare == "table":
                self._table(ctx, f, plan)
            fields.append(plan)
        return fields

    def _clusters(self, ctx: Context, element: Element, m: int) -> None:
        """Each Cluster's center, id and name, in document order."""
        clusters = children(element, "Cluster")
        if not clusters:
            raise ctx.doc.invalid(element, "has no Cluster")
        centers: list[list[Any]] = []
        ids, names = [], []
        for i, c in enumerate(clusters):
            if child(c, "Covariances") is not None or child(c, "KohonenMap") is not None:
                raise ctx.doc.unsupported(c, "Cluster with Covariances or KohonenMap")
            tokens = _array(ctx, child(c, "Array"), m, "a center of the ClusteringFields")
            centers.append(
                [
                    _number(ctx, c, t) if fld.numeric else t
                    for t, fld in zip(tokens, self.fields, strict=True)
                ]
            )
            cid = c.get("id") or str(i + 1)
            ids.append(cid)
            names.append(c.get("name"))
        self.centers = centers
        self.ids = np.array([*ids, None], dtype=object)
        self.names = np.array([*names, None], dtype=object)
        self._index = {
            **{n: i for i, n in enumerate(names) if n},
            **{d: i for i, d in enumerate(ids)},
        }

    def _table(self, ctx: Context, element: Element, plan: _Field) -> None:
        spec = ctx.fields.get(plan.name)
        comparisons = child(element, "Comparisons")
        matrix = child(comparisons if comparisons is not None else element, "Matrix")
        if spec is None or not spec.valid or matrix is None:
            raise ctx.doc.invalid(element, 'uses compareFunction="table" without a Comparisons '
                                  "Matrix and the field's values")  # fmt: skip
        k = len(spec.valid)
        table = np.full((k, k), float(matrix.get("offDiagDefault", "nan")))
        np.fill_diagonal(table, float(matrix.get("diagDefault", "nan")))
        arrays = children(matrix, "Array")
        if arrays:
            if len(arrays) != k:
                raise ctx.doc.invalid(matrix, f"has {len(arrays)} rows, the field has {k} values")
            for r, a in enumerate(arrays):
                table[r] = [_number(ctx, a, t) for t in _array(ctx, a, k, "a Matrix row")]
        for cell in children(matrix, "MatCell"):
            r, c = int(cell.get("row", "0")) - 1, int(cell.get("col", "0")) - 1
            if not (0 <= r < k and 0 <= c < k):
                raise ctx.doc.invalid(cell, "is outside the Matrix")
            table[r, c] = _number(ctx, cell, (cell.text or "").strip())
        plan.values = [spec.constant(v) for v in spec.valid]
        plan.table = table

    def compile_outputs(self, ctx: Context, extra: dict[str, str] | None = None) -> None:
        super().compile_outputs(
            ctx,
            {
                "predictedValue": "string",
                "predictedDisplayValue": "string",
                "clusterId": "integer",
                "affinity": "double",
                "clusterAffinity": "double",
            },
        )
        for plan in self.outputs:
            by_value = plan.value is not None and plan.feature in ("affinity", "clusterAffinity")
            if by_value and plan.value not in self._index:
                raise ctx.doc.invalid(
                    self.element, f"has OutputField {plan.name!r} for an unknown cluster"
                )

    # ------------------------------------------------------------------ evaluation

    def _compare(self, f: _Field, j: int, scope: Scope) -> tuple[np.ndarray, np.ndarray]:
        """(n, clusters) compare values of field j and the rows where it is missing."""
        column = scope.get(f.name)
        missing = np.asarray(is_missing(column), bool)
        centers = [c[j] for c in self.centers]
        if f.compare == "table":
            assert f.table is not None
            index = pd.Index(f.values)
            rows = index.get_indexer(pd.Index(column))  # -1: not a listed value
            cols = index.get_indexer(pd.Index(centers))
            out = f.table[np.maximum(rows, 0)][:, np.maximum(cols, 0)]
            out[rows < 0] = np.nan
            out[:, cols < 0] = np.nan
            return out, missing
        if f.numeric:
            dtype: Any = np.float32 if self.float_math else np.float64
            x = column.astype(dtype, copy=False)
            c = np.array(centers, dtype=dtype)
            diff = x[:, None] - c[None, :]
            if f.compare == "absDiff":
                return np.abs(diff), missing
            if f.compare == "gaussSim":
                assert f.scale is not None
                return np.exp(-math.log(2) * diff * diff / (f.scale * f.scale)), missing
            equal = diff == 0
        else:
            x = np.where(missing, "", column).astype(object)
            equal = x[:, None] == np.array(centers, dtype=object)[None, :]
        if f.compare == "equal":
            return equal.astype(np.float64), missing
        return (~equal).astype(np.float64), missing  # delta

    def measures(self, scope: Scope) -> np.ndarray:
        """(n, clusters) distances or similarities; NaN where a row has no measure."""
        n, k = scope.n, len(self.centers)
        if self.metric in SIMILARITIES:
            return self._similarity(scope)
        total = np.zeros((n, k))
        present_weight = np.zeros(n)
        for j, f in enumerate(self.fields):
            value, missing = self._compare(f, j, scope)
            value = np.abs(value.astype(np.float64, copy=False))
            value = np.where(missing[:, None], 0.0, value)
            if self.metric in ("euclidean", "squaredEuclidean"):
                term = f.weight * value * value
            elif self.metric == "minkowski":
                term = f.weight * value**self.p
            else:
                term = f.weight * value
            total = np.maximum(total, term) if self.metric == "chebychev" else total + term
            present_weight += np.where(missing, 0.0, self.missing_weights[j])
        with np.errstate(divide="ignore", invalid="ignore"):
            adjust = self.missing_weights.sum() / present_weight
        adjust[present_weight == 0] = np.nan
        total = total * adjust[:, None]
        if self.metric == "euclidean":
            return np.sqrt(total)
        if self.metric == "minkowski":
            return total ** (1.0 / self.p)
        return total

    def _similarity(self, scope: Scope) -> np.ndarray:
        n, k = scope.n, len(self.centers)
        counts = np.zeros((4, n, k))  # a11, a10, a01, a00
        present = np.zeros(n, bool)
        for j, f in enumerate(self.fields):
            column = scope.get(f.name)
            missing = np.asarray(is_missing(column), bool)
            if f.numeric:
                x = np.where(missing, 0.0, column.astype(np.float64)) != 0
                y = np.array([c[j] for c in self.centers], dtype=np.float64) != 0
            else:
                x = np.where(missing, "", column).astype(object) == "1"
                y = np.array([c[j] for c in self.centers], dtype=object) == "1"
            keep = ~missing[:, None]
            xs, ys = x[:, None], y[None, :]
            counts[0] += keep & xs & ys
            counts[1] += keep & xs & ~ys
            counts[2] += keep & ~xs & ys
            counts[3] += keep & ~xs & ~ys
            present |= ~missing
        a11, a10, a01, a00 = counts
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.metric == "simpleMatching":
                out = (a11 + a00) / (a11 + a10 + a01 + a00)
            elif self.metric == "jaccard":
                out = a11 / (a11 + a10 + a01)
            elif self.metric == "tanimoto":
                out = (a11 + a00) / (a11 + 2 * (a10 + a01) + a00)
            else:
                (c11, c10, c01, c00), (d11, d10, d01, d00) = self.binary
                out = (c11 * a11 + c10 * a10 + c01 * a01 + c00 * a00) / (
                    d11 * a11 + d10 * a10 + d01 * a01 + d00 * a00
                )
        out[~present] = np.nan
        return out

    def score(self, scope: Scope) -> ModelResult:
        n = scope.n
        measures = self.measures(scope)
        invalid = np.isnan(measures).all(axis=1)  # a cluster without a measure never wins
        if self.kind == "distance":
            winner = np.where(np.isnan(measures), np.inf, measures).argmin(axis=1)
        else:
            winner = np.where(np.isnan(measures), -np.inf, measures).argmax(axis=1)
        winner = np.where(invalid, -1, winner)
        ids = self.ids[winner]  # -1 picks the trailing None
        return ClusterResult(n, labels=ids, entities=ids, measures=measures, winner=winner)

    def _output(self, plan: OutputFieldPlan, result: ModelResult, scope: Scope) -> np.ndarray:
        assert isinstance(result, ClusterResult)
        assert result.winner is not None and result.measures is not None
        winner = result.winner
        if plan.feature == "predictedDisplayValue":
            return self.names[winner]
        if plan.feature == "clusterId":
            return np.where(winner >= 0, winner + 1.0, np.nan)
        if plan.feature in ("affinity", "clusterAffinity"):
            if plan.value is not None:
                return result.measures[:, self._index[plan.value]]
            picked = result.measures[np.arange(result.n), np.maximum(winner, 0)]
            return np.where(winner >= 0, picked, np.nan)
        return super()._output(plan, result, scope)


def compile_clustering(ctx: Context, element: Element) -> ModelPlan:
    return ClusteringModel(ctx, element)
