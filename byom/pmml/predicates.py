"""Predicates (tree nodes, segments): three-valued, over whole columns or a subset of rows.

A compiled predicate returns two boolean masks over the rows asked for: where it is TRUE and
where it is UNKNOWN (a missing value was compared); FALSE is the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

import numpy as np
import pandas as pd

from byom.pmml.fields import is_missing, parse_value
from byom.pmml.scope import Context, Scope
from byom.pmml.xml import child, text_of

Masks = tuple[np.ndarray, np.ndarray]

_ORDERING = {
    "lessThan": np.less,
    "lessOrEqual": np.less_equal,
    "greaterThan": np.greater,
    "greaterOrEqual": np.greater_equal,
}
PREDICATE_TAGS = {"SimplePredicate", "CompoundPredicate", "SimpleSetPredicate", "True", "False"}


class Predicate:
    def __call__(self, scope: Scope, rows: np.ndarray | None) -> Masks:
        raise NotImplementedError


def _take(column: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
    return column if rows is None else column[rows]


def _size(scope: Scope, rows: np.ndarray | None) -> int:
    return scope.n if rows is None else len(rows)


class Constant(Predicate):
    def __init__(self, value: bool) -> None:
        self.value = value

    def __call__(self, scope: Scope, rows: np.ndarray | None) -> Masks:
        n = _size(scope, rows)
        return np.full(n, self.value), np.zeros(n, bool)


@dataclass
class Simple(Predicate):
    field: str
    operator: str
    value: object
    numeric: bool

    def __call__(self, scope: Scope, rows: np.ndarray | None) -> Masks:
        column = _take(scope.get(self.field), rows)
        missing = is_missing(column)
        if self.operator == "isMissing":
            return missing, np.zeros(len(column), bool)
        if self.operator == "isNotMissing":
            return ~missing, np.zeros(len(column), bool)
        value: Any = self.value
        if column.dtype != object and not self.numeric:
            value = float(value)
        if column.dtype == object:
            column = np.where(missing, "", column)
            if self.numeric:
                value = _text(value)
        if self.operator == "equal":
            hit = column == value
        elif self.operator == "notEqual":
            hit = column != value
        else:
            hit = _ORDERING[self.operator](column, value)
        return np.asarray(hit, bool) & ~missing, missing


def _text(value: object) -> str:
    v = float(value)  # type: ignore[arg-type]
    return str(int(v)) if v.is_integer() else repr(v)


class SetPredicate(Predicate):
    def __init__(self, field: str, values: list[object], negate: bool, numeric: bool) -> None:
        self.field, self.negate, self.numeric = field, negate, numeric
        self.values = np.array(values, dtype=np.float64 if numeric else object)

    def __call__(self, scope: Scope, rows: np.ndarray | None) -> Masks:
        column = _take(scope.get(self.field), rows)
        missing = is_missing(column)
        if column.dtype == object:
            hit = (
                pd.Series(column, dtype=object)
                .isin([_text(v) for v in self.values] if self.numeric else list(self.values))
                .to_numpy()
            )
        else:
            hit = np.isin(column, self.values.astype(column.dtype))
        return (hit != self.negate) & ~missing, missing


class Compound(Predicate):
    def __init__(self, operator: str, parts: list[Predicate]) -> None:
        self.operator, self.parts = operator, parts

    def __call__(self, scope: Scope, rows: np.ndarray | None) -> Masks:
        results = [p(scope, rows) for p in self.parts]
        if self.operator == "surrogate":
            true, unknown = results[0]
            true, unknown = true.copy(), unknown.copy()
            for t, u in results[1:]:
                true = np.where(unknown, t, true)
                unknown = unknown & u
            return true, unknown
        true, unknown = results[0]
        if self.operator == "and":
            false = ~true & ~unknown
            for t, u in results[1:]:
                f = ~t & ~u
                false = false | f
                true = true & t
            return true & ~false, ~true & ~false
        if self.operator == "or":
            for t, u in results[1:]:
                unknown = unknown | u
                true = true | t
            return true, unknown & ~true
        # xor: unknown if any part is unknown
        for t, u in results[1:]:
            true = true ^ t
            unknown = unknown | u
        return true & ~unknown, unknown


def compile_predicate(ctx: Context, element: Element) -> Predicate:
    ctx.nest(element)
    try:
        return _compile_predicate(ctx, element)
    finally:
        ctx.nesting = max(ctx.nesting - 1, 0)


def _compile_predicate(ctx: Context, element: Element) -> Predicate:
    tag = element.tag
    if tag == "True":
        return Constant(True)
    if tag == "False":
        return Constant(False)
    if tag == "SimplePredicate":
        name = _known(ctx, element)
        operator = element.get("operator", "")
        if operator not in ("equal", "notEqual", "isMissing", "isNotMissing", *_ORDERING):
            raise ctx.doc.unsupported(element, f'SimplePredicate operator="{operator}"')
        data_type = ctx.type_of(name)
        numeric = data_type != "string"
        value: object = None
        if operator not in ("isMissing", "isNotMissing"):
            text = element.get("value")
            if text is None:
                raise ctx.doc.invalid(element, "has no value")
            try:
                value = parse_value(text, data_type)
            except ValueError:
                raise ctx.doc.invalid(element, f"compares {name} with {text!r}") from None
            if not numeric and operator in _ORDERING:
                raise ctx.doc.unsupported(element, f"{operator} on the string field {name!r}")
        return Simple(name, operator, value, numeric)
    if tag == "SimpleSetPredicate":
        name = _known(ctx, element)
        operator = element.get("booleanOperator", "isIn")
        array = child(element, "Array")
        if array is None or operator not in ("isIn", "isNotIn"):
            raise ctx.doc.invalid(element, "needs an Array and booleanOperator isIn or isNotIn")
        data_type = ctx.type_of(name)
        tokens = parse_array(array)
        numeric = data_type != "string"
        values: list[Any] = [parse_value(t, data_type) for t in tokens] if numeric else [*tokens]
        return SetPredicate(name, values, operator == "isNotIn", numeric)
    if tag == "CompoundPredicate":
        operator = element.get("booleanOperator", "")
        if operator not in ("and", "or", "xor", "surrogate"):
            raise ctx.doc.unsupported(element, f'CompoundPredicate booleanOperator="{operator}"')
        parts = [compile_predicate(ctx, c) for c in element if c.tag in PREDICATE_TAGS]
        if len(parts) < 2:
            raise ctx.doc.invalid(element, "needs at least two predicates")
        return Compound(operator, parts)
    raise ctx.doc.unsupported(element)


def _known(ctx: Context, element: Element) -> str:
    name = element.get("field", "")
    if name not in ctx.types:
        raise ctx.doc.invalid(element, f"refers to field {name!r}, which is not defined")
    return name


_TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"|(\S+)')


def parse_array(array: Element) -> list[str]:
    return [
        q.replace('\\"', '"') if q or (m.group(0) == '""') else u
        for m in _TOKEN.finditer(text_of(array))
        for q, u in [(m.group(1), m.group(2))]
    ]


def find_predicate(element: Element) -> Element | None:
    for c in element:
        if c.tag in PREDICATE_TAGS:
            return c
    return None
