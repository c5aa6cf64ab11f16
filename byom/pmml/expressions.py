"""Expressions (DerivedField, OutputField transformedValue): compiled to whole-column closures.

Each compile function returns (closure, dataType). Missing values propagate as NaN / None;
booleans are 1.0 / 0.0 columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from xml.etree.ElementTree import Element

import numpy as np
import pandas as pd

from byom.pmml.fields import is_missing, numbers_as_text, parse_value
from byom.pmml.scope import Context, Expr, Scope
from byom.pmml.xml import child, children, text_of

EXPRESSION_TAGS = {
    "Constant",
    "FieldRef",
    "NormContinuous",
    "NormDiscrete",
    "Discretize",
    "MapValues",
    "Apply",
    "TextIndex",
    "Aggregate",
    "Lag",
}


def compile_derived_fields(ctx: Context, parent: Element | None) -> dict[str, Expr]:
    """DerivedFields of a TransformationDictionary or LocalTransformations, in order."""
    derived: dict[str, Expr] = {}
    if parent is None:
        return derived
    for element in children(parent, "DerivedField"):
        name = element.get("name")
        if not name:
            raise ctx.doc.invalid(element, "has no name")
        expr_element = _expression_child(ctx, element)
        data_type = element.get("dataType", "double")
        if data_type not in ("double", "float", "integer", "string", "boolean"):
            raise ctx.doc.unsupported(element, f'DerivedField dataType="{data_type}"')
        fn, _ = compile_expression(ctx, expr_element)
        derived[name] = _Derived(fn, data_type, _references(ctx, expr_element))
        ctx.declare(name, data_type, element.get("optype", "continuous"))
    return derived


def _expression_child(ctx: Context, element: Element) -> Element:
    for c in element:
        if c.tag in EXPRESSION_TAGS:
            return c
    raise ctx.doc.invalid(element, "has no expression")


class _Derived:
    """A DerivedField: its expression cast to its dataType, with the fields it reads (`deps`),
    which `Scope` computes first, without recursion."""

    def __init__(self, fn: Expr, data_type: str, deps: tuple[str, ...]) -> None:
        self.fn, self.data_type, self.deps = fn, data_type, deps

    def __call__(self, scope: Scope) -> np.ndarray:
        return as_type(self.fn(scope), self.data_type)


def _references(ctx: Context, element: Element) -> tuple[str, ...]:
    """The known fields an expression names anywhere inside (iterating, not recursing)."""
    names = []
    for e in element.iter():
        for attr in ("field", "textField"):
            value = e.get(attr)
            if value is not None and value in ctx.types:
                names.append(value)
    return tuple(dict.fromkeys(names))


def as_type(column: np.ndarray, data_type: str) -> np.ndarray:
    if data_type == "string":
        if column.dtype == object:
            return column
        return numbers_as_text(column)
    numbers = column
    if column.dtype == object:
        numbers = pd.to_numeric(pd.Series(column), errors="coerce").to_numpy(np.float64)
    if data_type == "float":
        return numbers.astype(np.float32, copy=False)
    if data_type == "integer":
        return np.trunc(numbers.astype(np.float64, copy=False))
    return numbers.astype(np.float64, copy=False)


def _text(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def compile_expression(ctx: Context, element: Element) -> tuple[Expr, str]:
    ctx.nest(element)
    try:
        return _compile_expression(ctx, element)
    finally:
        ctx.nesting = max(ctx.nesting - 1, 0)


def _compile_expression(ctx: Context, element: Element) -> tuple[Expr, str]:
    tag = element.tag
    if tag == "Constant":
        return _constant(ctx, element)
    if tag == "FieldRef":
        return _field_ref(ctx, element)
    if tag == "NormContinuous":
        return _norm_continuous(ctx, element), "double"
    if tag == "NormDiscrete":
        return _norm_discrete(ctx, element), "double"
    if tag == "Discretize":
        return _discretize(ctx, element)
    if tag == "MapValues":
        return _map_values(ctx, element)
    if tag == "Apply":
        return _apply(ctx, element)
    if tag == "TextIndex":
        from byom.pmml.text import compile_text_index

        term = next((c for c in element if c.tag in EXPRESSION_TAGS), None)
        if term is None:
            raise ctx.doc.invalid(element, "has no term expression")
        return compile_text_index(ctx, element, compile_expression(ctx, term)[0])
    raise ctx.doc.unsupported(element)


def _with_missing(fn: Expr, map_missing: object) -> Expr:
    if map_missing is None:
        return fn

    def filled(scope: Scope) -> np.ndarray:
        out = fn(scope)
        missing = is_missing(out)
        if not missing.any():
            return out
        out = out.copy()
        out[missing] = map_missing
        return out

    return filled


def _constant(ctx: Context, element: Element) -> tuple[Expr, str]:
    text = text_of(element)
    data_type = element.get("dataType")
    if data_type is None:
        try:
            float(text)
            data_type = "double"
        except ValueError:
            data_type = "string"
    missing = element.get("missing", "false") == "true"
    if data_type not in ("double", "float", "integer", "string", "boolean"):
        raise ctx.doc.unsupported(element, f'Constant dataType="{data_type}"')
    value = None if missing else parse_value(text, data_type)
    dtype: type = object if data_type == "string" else np.float64
    if data_type == "float":
        dtype = np.float32

    def constant(scope: Scope) -> np.ndarray:
        if value is None:
            return np.full(scope.n, None if dtype is object else np.nan, dtype=dtype)
        return np.full(scope.n, value, dtype=dtype)

    return constant, data_type


def _field_ref(ctx: Context, element: Element) -> tuple[Expr, str]:
    name = _field_name(ctx, element)
    data_type = ctx.type_of(name)
    map_missing = element.get("mapMissingTo")

    def ref(scope: Scope) -> np.ndarray:
        return scope.get(name)

    fill = parse_value(map_missing, data_type) if map_missing is not None else None
    return _with_missing(ref, fill), data_type


def field_name(ctx: Context, element: Element, attr: str = "field") -> str:
    """The known field an element's `attr` names; refused when it names none."""
    return _field_name(ctx, element, attr)


def _field_name(ctx: Context, element: Element, attr: str = "field") -> str:
    name = element.get(attr)
    if not name:
        raise ctx.doc.invalid(element, f"has no {attr} attribute")
    if name not in ctx.types:
        raise ctx.doc.invalid(element, f"refers to field {name!r}, which is not defined")
    return name


def linear_norm(ctx: Context, element: Element) -> tuple[np.ndarray, np.ndarray]:
    """A NormContinuous's LinearNorm points: (orig, norm) arrays of at least two points."""
    points = [
        (float(p.get("orig", "nan")), float(p.get("norm", "nan")))
        for p in children(element, "LinearNorm")
    ]
    if len(points) < 2:
        raise ctx.doc.invalid(element, "needs at least two LinearNorm elements")
    return np.array([p[0] for p in points]), np.array([p[1] for p in points])


def _norm_continuous(ctx: Context, element: Element) -> Expr:
    name = _field_name(ctx, element)
    orig, norm = linear_norm(ctx, element)
    if np.any(np.diff(orig) <= 0):
        raise ctx.doc.invalid(element, "has LinearNorm orig values that do not increase")
    outliers = element.get("outliers", "asIs")
    map_missing = element.get("mapMissingTo")

    def normalize(scope: Scope) -> np.ndarray:
        x = scope.get(name).astype(np.float64)
        # Segment index j: orig[j] <= x <= orig[j+1], extended to the outer segments.
        j = np.clip(np.searchsorted(orig, x, side="right") - 1, 0, len(orig) - 2)
        o0, o1, n0, n1 = orig[j], orig[j + 1], norm[j], norm[j + 1]
        out = n0 + (x - o0) * (n1 - n0) / (o1 - o0)
        below, above = x < orig[0], x > orig[-1]
        if outliers == "asMissingValues":
            out = np.where(below | above, np.nan, out)
        elif outliers == "asExtremeValues":
            out = np.where(below, norm[0], np.where(above, norm[-1], out))
        return out

    return _with_missing(normalize, float(map_missing) if map_missing is not None else None)


def _norm_discrete(ctx: Context, element: Element) -> Expr:
    name = _field_name(ctx, element)
    value = parse_value(element.get("value", ""), ctx.type_of(name))
    map_missing = element.get("mapMissingTo")

    def indicator(scope: Scope) -> np.ndarray:
        column = scope.get(name)
        out = (column == value).astype(np.float64)
        out[is_missing(column)] = np.nan
        return out

    return _with_missing(indicator, float(map_missing) if map_missing is not None else None)


def _discretize(ctx: Context, element: Element) -> tuple[Expr, str]:
    name = _field_name(ctx, element)
    data_type = element.get("dataType", "string")
    bins = []
    for b in children(element, "DiscretizeBin"):
        interval = child(b, "Interval")
        if interval is None:
            raise ctx.doc.invalid(b, "has no Interval")
        closure = interval.get("closure", "closedClosed")
        bins.append(
            (
                float(interval.get("leftMargin", "-inf")),
                float(interval.get("rightMargin", "inf")),
                closure.startswith("closed"),
                closure.endswith("Closed"),
                parse_value(b.get("binValue", ""), data_type),
            )
        )
    default = element.get("defaultValue")
    map_missing = element.get("mapMissingTo")
    dtype: type = object if data_type == "string" else np.float64

    def discretize(scope: Scope) -> np.ndarray:
        x = scope.get(name).astype(np.float64)
        out: Any = np.full(scope.n, None if dtype is object else np.nan, dtype=dtype)
        done = np.isnan(x)
        for low, high, lc, hc, value in bins:
            hit = ~done & (x >= low if lc else x > low) & (x <= high if hc else x < high)
            out[hit] = value
            done |= hit
        if default is not None:
            out[~done] = parse_value(default, data_type)
        if map_missing is not None:
            out[np.isnan(x)] = parse_value(map_missing, data_type)
        return out

    return discretize, data_type


def _canonical(column: np.ndarray) -> np.ndarray:
    """Text keys for table lookups: 8.0 and "8" match."""
    if column.dtype != object:
        return numbers_as_text(column)
    out = column.copy()
    for i, v in enumerate(out.tolist()):
        if isinstance(v, float):
            out[i] = None if np.isnan(v) else _text(v)
    return out


def _canonical_text(text: str) -> str:
    try:
        return _text(float(text))
    except ValueError:
        return text


def _map_values(ctx: Context, element: Element) -> tuple[Expr, str]:
    pairs = [
        (_field_name(ctx, p), p.get("column", "")) for p in children(element, "FieldColumnPair")
    ]
    output_column = element.get("outputColumn", "")
    data_type = element.get("dataType", "string")
    table = child(element, "InlineTable")
    if table is None:
        raise ctx.doc.unsupported(element, "MapValues without an InlineTable")
    mapping: dict[str, object] = {}
    for row in children(table, "row"):
        cells = {c.tag: text_of(c) for c in row}
        key = "\x1f".join(_canonical_text(cells.get(col, "")) for _, col in pairs)
        if output_column in cells:
            mapping.setdefault(key, parse_value(cells[output_column], data_type))
    default = element.get("defaultValue")
    map_missing = element.get("mapMissingTo")
    dtype: type = object if data_type == "string" else np.float64

    def lookup(scope: Scope) -> np.ndarray:
        keys = [_canonical(scope.get(name)) for name, _ in pairs]
        missing = np.zeros(scope.n, bool)
        for k in keys:
            missing |= pd.isna(k)
        joined = pd.Series(keys[0], dtype=object).astype(str)
        for k in keys[1:]:
            joined = joined + "\x1f" + pd.Series(k, dtype=object).astype(str)
        mapped = joined.map(mapping)
        found = mapped.notna().to_numpy()
        out: Any = np.full(scope.n, None if dtype is object else np.nan, dtype=dtype)
        out[found] = mapped.to_numpy()[found]
        if default is not None:
            out[~found & ~missing] = parse_value(default, data_type)
        if map_missing is not None:
            out[missing] = parse_value(map_missing, data_type)
        elif missing.any():
            out[missing] = None if dtype is object else np.nan
        return out

    return lookup, data_type


# ----------------------------------------------------------------------------- Apply

_Fn = Callable[[list[np.ndarray]], np.ndarray]


def _num(a: np.ndarray) -> np.ndarray:
    if a.dtype == object:
        return pd.to_numeric(pd.Series(a), errors="coerce").to_numpy(np.float64)
    return a


def _bool(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    out = values.astype(np.float64)
    out[missing] = np.nan
    return out


def _compare(op: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> _Fn:
    def fn(args: list[np.ndarray]) -> np.ndarray:
        a, b = args
        missing = is_missing(a) | is_missing(b)
        if a.dtype == object or b.dtype == object:
            if a.dtype != object:
                a = _canonical(a)
            if b.dtype != object:
                b = _canonical(b)
            a = np.where(missing, "", a)
            b = np.where(missing, "", b)
        return _bool(op(a, b), missing)

    return fn


def _reduce(op: Callable[..., np.ndarray]) -> _Fn:
    def fn(args: list[np.ndarray]) -> np.ndarray:
        out = _num(args[0]).astype(np.float64, copy=True)
        for a in args[1:]:
            out = op(out, _num(a))
        return out

    return fn


def _logical(kind: str) -> _Fn:
    def fn(args: list[np.ndarray]) -> np.ndarray:
        values = [_num(a) for a in args]
        missing = np.zeros(len(values[0]), bool)
        for v in values:
            missing |= np.isnan(v)
        truth = [np.nan_to_num(v) != 0 for v in values]
        out = truth[0]
        for t in truth[1:]:
            out = (out & t) if kind == "and" else (out | t)
        return _bool(out, missing)

    return fn


def _is_in(negate: bool) -> _Fn:
    def fn(args: list[np.ndarray]) -> np.ndarray:
        value, options = args[0], args[1:]
        missing = is_missing(value)
        hit = np.zeros(len(value), bool)
        for o in options:
            hit |= _compare(np.equal)([value, o]) == 1.0
        return _bool(hit != negate, missing)

    return fn


def _if(args: list[np.ndarray]) -> np.ndarray:
    cond = _num(args[0])
    then = args[1]
    other = (
        args[2] if len(args) > 2 else np.full(len(cond), None if then.dtype == object else np.nan)
    )
    if then.dtype == object or other.dtype == object:
        then, other = then.astype(object), other.astype(object)
    out = np.where(np.nan_to_num(cond) != 0, then, other)
    missing = np.isnan(cond)
    if missing.any():
        out = out.copy()
        out[missing] = None if out.dtype == object else np.nan
    return out


def _round_half_up(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5)


def _strings(op: Callable[[str], str]) -> _Fn:
    def fn(args: list[np.ndarray]) -> np.ndarray:
        s = pd.Series(args[0], dtype=object)
        return s.map(op, na_action="ignore").to_numpy(dtype=object)

    return fn


def _substring(args: list[np.ndarray]) -> np.ndarray:
    s = pd.Series(_canonical(args[0]) if args[0].dtype != object else args[0], dtype=object)
    start, length = _num(args[1]), _num(args[2])
    if len(s) and np.all(start == start[0]) and np.all(length == length[0]):  # constants
        b, n = int(start[0]) - 1, int(length[0])
        return s.str.slice(b, b + n).to_numpy(dtype=object)
    out = [
        None if v is None or v is np.nan else v[int(b) - 1 : int(b) - 1 + int(n)]
        for v, b, n in zip(s.tolist(), start.tolist(), length.tolist(), strict=True)
    ]
    return np.array(out, dtype=object)


def _concat(args: list[np.ndarray]) -> np.ndarray:
    parts = [pd.Series(_canonical(a) if a.dtype != object else a, dtype=object) for a in args]
    out = parts[0].astype(str)
    missing = parts[0].isna()
    for p in parts[1:]:
        out = out + p.astype(str)
        missing |= p.isna()
    result = out.to_numpy(dtype=object)
    result[missing.to_numpy()] = None
    return result


def _unary(op: Callable[[np.ndarray], np.ndarray]) -> _Fn:
    def fn(args: list[np.ndarray]) -> np.ndarray:
        with np.errstate(all="ignore"):
            return op(_num(args[0]))

    return fn


def _binary(op: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> _Fn:
    def fn(args: list[np.ndarray]) -> np.ndarray:
        with np.errstate(all="ignore"):
            return op(_num(args[0]), _num(args[1]))

    return fn


def _mean(args: list[np.ndarray]) -> np.ndarray:
    return _reduce(np.add)(args) / len(args)


FUNCTIONS: dict[str, tuple[_Fn, str]] = {
    "+": (_binary(np.add), "double"),
    "-": (_binary(np.subtract), "double"),
    "*": (_binary(np.multiply), "double"),
    "/": (_binary(np.divide), "double"),
    "min": (_reduce(np.minimum), "double"),
    "max": (_reduce(np.maximum), "double"),
    "sum": (_reduce(np.add), "double"),
    "avg": (_mean, "double"),
    "log10": (_unary(np.log10), "double"),
    "ln": (_unary(np.log), "double"),
    "exp": (_unary(np.exp), "double"),
    "sqrt": (_unary(np.sqrt), "double"),
    "abs": (_unary(np.abs), "double"),
    "pow": (_binary(np.power), "double"),
    "threshold": (_binary(lambda x, t: (x > t).astype(np.float64) + 0 * x), "double"),
    "floor": (_unary(np.floor), "double"),
    "ceil": (_unary(np.ceil), "double"),
    "round": (_unary(_round_half_up), "double"),
    "isMissing": (lambda a: is_missing(a[0]).astype(np.float64), "boolean"),
    "isNotMissing": (lambda a: (~is_missing(a[0])).astype(np.float64), "boolean"),
    "equal": (_compare(np.equal), "boolean"),
    "notEqual": (_compare(np.not_equal), "boolean"),
    "lessThan": (_compare(np.less), "boolean"),
    "lessOrEqual": (_compare(np.less_equal), "boolean"),
    "greaterThan": (_compare(np.greater), "boolean"),
    "greaterOrEqual": (_compare(np.greater_equal), "boolean"),
    "and": (_logical("and"), "boolean"),
    "or": (_logical("or"), "boolean"),
    "not": (
        _unary(lambda x: np.where(np.isnan(x), np.nan, (x == 0).astype(np.float64))),
        "boolean",
    ),
    "isIn": (_is_in(False), "boolean"),
    "isNotIn": (_is_in(True), "boolean"),
    "if": (_if, ""),
    "uppercase": (_strings(str.upper), "string"),
    "lowercase": (_strings(str.lower), "string"),
    "trimBlanks": (_strings(str.strip), "string"),
    "substring": (_substring, "string"),
    "concat": (_concat, "string"),
}

#: Functions that see missing arguments themselves; for the others a missing argument gives a
#: missing result.
_MISSING_AWARE = {"isMissing", "isNotMissing", "if", "and", "or", "isIn", "isNotIn"}


def _apply(ctx: Context, element: Element) -> tuple[Expr, str]:
    name = element.get("function", "")
    if name in ctx.functions:
        return _apply_defined(ctx, element, ctx.functions[name])
    if name not in FUNCTIONS:
        raise ctx.doc.unsupported(element, f'function "{name}"')
    if element.get("invalidValueTreatment", "returnInvalid") not in ("returnInvalid", "asMissing"):
        raise ctx.doc.unsupported(element, "Apply invalidValueTreatment")
    fn, result_type = FUNCTIONS[name]
    compiled = [compile_expression(ctx, c) for c in element if c.tag in EXPRESSION_TAGS]
    args = [c[0] for c in compiled]
    if name == "if":
        result_type = compiled[1][1] if len(compiled) > 1 else "double"
    if not args:
        raise ctx.doc.invalid(element, f"calls {name} without arguments")
    aware = name in _MISSING_AWARE
    map_missing = element.get("mapMissingTo")
    default = element.get("defaultValue")

    def apply(scope: Scope) -> np.ndarray:
        values = [a(scope) for a in args]
        out = fn(values)
        if not aware:
            missing = np.zeros(scope.n, bool)
            for v in values:
                missing |= is_missing(v)
            if missing.any():
                out = out.astype(object if out.dtype == object else np.float64, copy=True)
                out[missing] = None if out.dtype == object else np.nan
                if map_missing is not None:
                    out[missing] = parse_value(map_missing, result_type or "double")
        if default is not None:
            out_missing = is_missing(out)
            if out_missing.any():
                out = out.copy()
                out[out_missing] = parse_value(default, result_type or "double")
        return out

    return apply, result_type or "double"


# ----------------------------------------------------------------------------- DefineFunction


@dataclass
class DefinedFunction:
    """A TransformationDictionary DefineFunction, compiled once: its body sees only its
    ParameterFields, bound to the Apply's argument columns."""

    name: str
    params: list[tuple[str, str | None]]  # name, dataType (None: as passed)
    data_type: str
    body: Expr


def compile_define_functions(ctx: Context, parent: Element | None) -> None:
    """Register the DefineFunctions of a TransformationDictionary in `ctx.functions`, in
    document order (a body may call the functions defined before it)."""
    if parent is None:
        return
    for element in children(parent, "DefineFunction"):
        name = element.get("name")
        if not name:
            raise ctx.doc.invalid(element, "has no name")
        if name in FUNCTIONS:
            raise ctx.doc.invalid(element, f"redefines the built-in function {name!r}")
        data_type = element.get("dataType", "double")
        if data_type not in ("double", "float", "integer", "string", "boolean"):
            raise ctx.doc.unsupported(element, f'DefineFunction dataType="{data_type}"')
        params: list[tuple[str, str | None]] = []
        local = replace(ctx, types={}, optypes={}, globals={})
        for p in children(element, "ParameterField"):
            pname = p.get("name")
            if not pname:
                raise ctx.doc.invalid(p, "has no name")
            ptype = p.get("dataType")
            params.append((pname, ptype))
            local.declare(pname, ptype or "string", p.get("optype", "continuous"))
        body_element = next((c for c in element if c.tag in EXPRESSION_TAGS), None)
        if body_element is None:
            raise ctx.doc.invalid(element, "has no expression")
        body, _ = compile_expression(local, body_element)
        ctx.functions[name] = DefinedFunction(name, params, data_type, body)


def _apply_defined(ctx: Context, element: Element, function: DefinedFunction) -> tuple[Expr, str]:
    args = [compile_expression(ctx, c)[0] for c in element if c.tag in EXPRESSION_TAGS]
    if len(args) != len(function.params):
        raise ctx.doc.invalid(
            element,
            f"calls {function.name} with {len(args)} arguments; it takes {len(function.params)}",
        )
    map_missing = element.get("mapMissingTo")
    default = element.get("defaultValue")

    def call(scope: Scope) -> np.ndarray:
        inner = Scope(scope.n, cache=scope.cache)
        for (pname, ptype), arg in zip(function.params, args, strict=True):
            value = arg(scope)
            inner.set(pname, as_type(value, ptype) if ptype else value)
        out = as_type(function.body(inner), function.data_type)
        missing = is_missing(out)
        if missing.any() and (map_missing is not None or default is not None):
            out = out.astype(object if out.dtype == object else np.float64, copy=True)
            fill = map_missing if map_missing is not None else default
            out[missing] = parse_value(fill, function.data_type)  # type: ignore[arg-type]
        return out

    return call, function.data_type
