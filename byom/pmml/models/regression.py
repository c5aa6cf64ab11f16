"""RegressionModel: one RegressionTable per class (classification) or one table (regression)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

import numpy as np

from byom.pmml import floatmath
from byom.pmml.models.base import ModelPlan, ModelResult, labels_from_probabilities
from byom.pmml.scope import Context, Scope
from byom.pmml.xml import children

NORMALIZATIONS = {
    "none",
    "softmax",
    "logit",
    "exp",
    "simplemax",
    "probit",
    "cloglog",
    "cauchit",
    "loglog",
}


@dataclass
class _Table:
    intercept: float
    category: str | None
    numeric: list[tuple[str, float, float]]  # field, exponent, coefficient
    categorical: list[tuple[str, object, float]]  # field, value, coefficient
    terms: list[tuple[list[str], float]]  # fields multiplied, coefficient


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return np.asarray(ndtr(x))


def _link(method: str, y: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        if method == "logit" or method == "softmax":
            return 1.0 / (1.0 + np.exp(-y))
        if method == "exp":
            return np.exp(y)
        if method == "probit":
            return _normal_cdf(y)
        if method == "cloglog":
            return 1.0 - np.exp(-np.exp(y))
        if method == "loglog":
            return np.exp(-np.exp(-y))
        if method == "cauchit":
            return 0.5 + np.arctan(y) / np.pi
    return y


class RegressionModel(ModelPlan):
    def __init__(self, ctx: Context, element: Element) -> None:
        super().__init__(ctx, element)
        self.method = element.get("normalizationMethod", "none")
        if self.method not in NORMALIZATIONS:
            raise ctx.doc.unsupported(element, f'normalizationMethod="{self.method}"')
        self.tables: list[_Table] = []
        for table in children(element, "RegressionTable"):
            numeric, categorical, terms = [], [], []
            for p in table:
                if p.tag == "NumericPredictor":
                    name = self._field(ctx, p, p.get("name", ""))
                    numeric.append(
                        (name, float(p.get("exponent", "1")), float(p.get("coefficient", "0")))
                    )
                elif p.tag == "CategoricalPredictor":
                    name = self._field(ctx, p, p.get("name", ""))
                    from byom.pmml.fields import parse_value

                    value = parse_value(p.get("value", ""), ctx.type_of(name))
                    categorical.append((name, value, float(p.get("coefficient", "0"))))
                elif p.tag == "PredictorTerm":
                    names = [
                        self._field(ctx, r, r.get("field", "")) for r in children(p, "FieldRef")
                    ]
                    terms.append((names, float(p.get("coefficient", "0"))))
                elif p.tag != "Extension":
                    raise ctx.doc.unsupported(p)
            category = table.get("targetCategory")
            self.tables.append(
                _Table(
                    float(table.get("intercept", "0")),
                    self.canonical(category) if category is not None else None,
                    numeric,
                    categorical,
                    terms,
                )
            )
        if not self.tables:
            raise ctx.doc.invalid(element, "has no RegressionTable")
        if self.function == "classification":
            if any(t.category is None for t in self.tables):
                raise ctx.doc.invalid(element, "has a RegressionTable without targetCategory")
            if not self.classes:
                self.classes = tuple(sorted_classes([t.category or "" for t in self.tables], self))
        self.compile_outputs(ctx)

    @staticmethod
    def _field(ctx: Context, element: Element, name: str) -> str:
        if name not in ctx.types:
            raise ctx.doc.invalid(element, f"refers to field {name!r}, which is not defined")
        return name

    def _table_value(self, table: _Table, scope: Scope) -> np.ndarray:
        if self.float_math:
            return self._float_table_value(table, scope)
        y: Any = np.full(scope.n, table.intercept, dtype=np.float64)
        for name, exponent, coefficient in table.numeric:
            x: Any = scope.get(name).astype(np.float64, copy=False)
            y = y + coefficient * (x if exponent == 1 else x**exponent)
        for name, value, coefficient in table.categorical:
            column = scope.get(name)
            # A missing category adds nothing (as pypmml scores it).
            y = y + coefficient * (column == value).astype(np.float64)
        for names, coefficient in table.terms:
            product: Any = np.ones(scope.n, dtype=np.float64)
            for name in names:
                product = product * scope.get(name).astype(np.float64, copy=False)
            y = y + coefficient * product
        return y

    def _float_table_value(self, table: _Table, scope: Scope) -> np.ndarray:
        """JPMML's float RegressionTable: each term rounded to float and added in document
        order (numeric, categorical, terms), the intercept last."""
        f32 = np.float32
        y: Any = np.zeros(scope.n, dtype=f32)
        for name, exponent, coefficient in table.numeric:
            x: Any = scope.get(name).astype(f32, copy=False)
            if exponent != 1:
                x = np.power(x.astype(np.float64), float(exponent)).astype(f32)
            y = y + f32(coefficient) * x
        for name, value, coefficient in table.categorical:
            y = y + np.where(scope.get(name) == value, f32(coefficient), f32(0))
        for names, coefficient in table.terms:
            product: Any = np.full(scope.n, f32(coefficient))
            for name in names:
                product = product * scope.get(name).astype(f32, copy=False)
            y = y + product
        if table.intercept != 0:
            y = y + f32(table.intercept)
        return y.astype(f32, copy=False)

    def score(self, scope: Scope) -> ModelResult:
        n = scope.n
        if self.function == "regression":
            y = self._table_value(self.tables[0], scope)
            if self.method != "none":
                y = (
                    floatmath.inverse_link(self.method, y)
                    if self.float_math
                    else _link(self.method, y)
                )
            return ModelResult(n, value=y)
        ys = np.column_stack([self._table_value(t, scope) for t in self.tables])
        if self.float_math:
            p = self._float_probabilities(ys)
        else:
            p = self._probabilities(ys.astype(np.float64))
        order = [t.category for t in self.tables]
        proba = np.full((n, len(self.classes)), 0.0)
        for j, c in enumerate(order):
            if c in self.classes:
                proba[:, self.classes.index(c)] = p[:, j]
        proba[np.isnan(ys).any(axis=1)] = np.nan
        return ModelResult(
            n,
            labels=labels_from_probabilities(proba, self.classes),
            classes=self.classes,
            probabilities=proba,
        )

    def _probabilities(self, ys: np.ndarray) -> np.ndarray:
        k = ys.shape[1]
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            if self.method == "softmax":
                shifted = np.exp(ys - ys.max(axis=1, keepdims=True))
                return shifted / shifted.sum(axis=1, keepdims=True)
            if self.method == "simplemax":
                return ys / ys.sum(axis=1, keepdims=True)
            p = np.empty_like(ys)
            p[:, : k - 1] = _link(self.method, ys[:, : k - 1])
            p[:, k - 1] = 1.0 - p[:, : k - 1].sum(axis=1)
            if self.method == "exp" and k > 2:
                p[:, k - 1] = _link("exp", ys[:, k - 1])
            return p

    def _float_probabilities(self, ys: np.ndarray) -> np.ndarray:
        """JPMML's float classification (RegressionTableUtil): two classes get the link of the
        first table and 1 - p (softmax too, when the second table is empty); more classes get
        softmax or simplemax, or every link value normalized to sum to one."""
        f32 = np.float32
        k = ys.shape[1]
        method = self.method
        if k == 2 and method == "softmax" and self._empty_second_table():
            method = "logit"
        if k == 2 and method not in ("softmax", "simplemax"):
            first = ys[:, 0] if method != "none" else np.clip(ys[:, 0], f32(0), f32(1))
            if method != "none":
                first = floatmath.inverse_link(method, first)
            return np.column_stack([first, (f32(1) - first).astype(f32)])
        if method == "softmax":
            return floatmath.softmax(ys)
        if method == "simplemax":
            return floatmath.simplemax(ys)
        if method == "none":
            p = ys.astype(f32, copy=True)
            rest = p[:, 0].copy()
            for j in range(1, k - 1):
                rest = (rest + p[:, j]).astype(f32)
            p[:, k - 1] = f32(1) - rest
            return p
        return floatmath.simplemax(floatmath.inverse_link(method, ys))

    def _empty_second_table(self) -> bool:
        t = self.tables[1]
        return not (t.numeric or t.categorical or t.terms) and t.intercept == 0


def sorted_classes(values: list[str], model: ModelPlan) -> list[str]:
    unique = list(dict.fromkeys(values))
    if model.numeric_target:
        try:
            return sorted(unique, key=float)
        except ValueError:
            pass
    return sorted(unique)


def compile_regression(ctx: Context, element: Element) -> ModelPlan:
    return RegressionModel(ctx, element)
