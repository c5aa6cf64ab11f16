"""Fields: DataDictionary types and valid values, and how MiningSchemas treat a field's values.

A column is a numpy array of one of three kinds: float64 (double, integer and boolean fields:
NaN is missing; booleans are 1.0/0.0), float32 (float fields, NaN is missing), or object
(strings, None is missing). Categorical fields of a numeric type are numeric columns, so "8",
8 and 8.0 name the same category.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from byom.pmml.xml import Document, children

#: An Interval as (low, high, low closed, high closed).
Interval = tuple[float, float, bool, bool]

NUMERIC_TYPES = {"double", "float", "integer", "boolean"}
SUPPORTED_TYPES = NUMERIC_TYPES | {"string"}


@dataclass
class FieldDef:
    name: str
    optype: str
    data_type: str
    valid: tuple[str, ...] = ()
    invalid: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    intervals: list[Interval] = field(default_factory=list)

    @property
    def numeric(self) -> bool:
        return self.data_type in NUMERIC_TYPES

    @property
    def dtype(self) -> type:
        if self.data_type == "float":
            return np.float32
        return np.float64 if self.numeric else object

    def constant(self, text: str) -> Any:
        """A value written in the document (predicate, Value, replacement), as this type."""
        return parse_value(text, self.data_type)


def parse_value(text: str, data_type: str) -> Any:
    if data_type == "boolean":
        low = text.strip().lower()
        if low in ("true", "1"):
            return 1.0
        if low in ("false", "0"):
            return 0.0
        return float(low)
    if data_type == "float":
        return np.float32(float(text))
    if data_type in ("double", "integer"):
        return float(text)
    return text


def read_data_dictionary(doc: Document) -> dict[str, FieldDef]:
    fields: dict[str, FieldDef] = {}
    dictionary = next((c for c in doc.root if c.tag == "DataDictionary"), None)
    if dictionary is None:
        raise doc.invalid(doc.root, "has no DataDictionary")
    for element in children(dictionary, "DataField"):
        fields[element.get("name", "")] = read_field(doc, element)
    return fields


def read_field(doc: Document, element: Element) -> FieldDef:
    name = element.get("name")
    if not name:
        raise doc.invalid(element, "has no name")
    data_type = element.get("dataType", "string")
    if data_type not in SUPPORTED_TYPES:
        raise doc.unsupported(element, f'dataType="{data_type}"')
    spec = FieldDef(name, element.get("optype", "continuous"), data_type)
    valid: list[str] = []
    invalid: list[str] = []
    missing: list[str] = []
    for value in children(element, "Value"):
        kind = value.get("property", "valid")
        {"valid": valid, "invalid": invalid, "missing": missing}.get(kind, valid).append(
            value.get("value", "")
        )
    spec.valid, spec.invalid, spec.missing = tuple(valid), tuple(invalid), tuple(missing)
    for interval in children(element, "Interval"):
        closure = interval.get("closure", "closedClosed")
        spec.intervals.append(
            (
                float(interval.get("leftMargin", "-inf")),
                float(interval.get("rightMargin", "inf")),
                closure.startswith("closed"),
                closure.endswith("Closed"),
            )
        )
    return spec


def is_missing(column: np.ndarray) -> np.ndarray:
    if column.dtype == object:
        return pd.isna(column)
    return np.isnan(column)


def to_numbers(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parse a column to float64; also return where a present value is not a number."""
    if values.dtype != object:
        return values.astype(np.float64, copy=False), np.zeros(len(values), bool)
    numbers = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    text = pd.Series(values, dtype=object)
    unparsed = np.isnan(numbers) & text.notna().to_numpy() & (text.astype(str) != "NaN").to_numpy()
    return numbers, unparsed


def numbers_as_text(column: np.ndarray) -> np.ndarray:
    """Numbers as text the way PMML values are written (8.0 -> "8", 0.5 -> "0.5", 1e-07),
    NaN as None: vectorized with Arrow; only integral values beyond int64 go one by one."""
    floats = np.asarray(column, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        integral = np.isfinite(floats) & (floats == np.trunc(floats))
    fits = integral & (np.abs(floats) < 2.0**63)
    ints = pc.cast(pa.array(np.where(fits, floats, 0).astype(np.int64)), pa.string())
    other = pc.cast(pa.array(floats, from_pandas=True), pa.string())
    other = pc.replace_substring_regex(other, r"e-(\d)$", r"e-0\1")  # Python's 1e-07
    text = pc.if_else(pa.array(fits), ints, other)
    out = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
    for i in np.flatnonzero(integral & ~fits):  # rare: beyond int64
        out[i] = str(int(floats[i]))
    return out


def to_column(spec: FieldDef, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Convert an input array to the field's column; return it with a mask of invalid values
    (not parseable, outside the valid values or intervals, or declared invalid)."""
    n = len(raw)
    if spec.data_type == "boolean" and raw.dtype == object:
        low = pd.Series(raw, dtype=object).str.lower()
        raw = np.where(low == "true", "1", np.where(low == "false", "0", raw)).astype(object)
        raw[pd.isna(low).to_numpy()] = None
    if spec.numeric:
        numbers, invalid = to_numbers(raw)
        column: Any = numbers.astype(spec.dtype, copy=False)
        if spec.missing:
            marked = np.isin(column, [float(spec.constant(m)) for m in spec.missing if _num(m)])
            column = np.where(marked, np.nan, column).astype(spec.dtype)
        present = ~np.isnan(column)
        if spec.data_type == "integer":  # 3.7 is no value of an integer field: fail loudly
            invalid |= present & (column != np.trunc(column))
        if spec.valid and spec.optype != "continuous":
            allowed: Any = np.array([float(spec.constant(v)) for v in spec.valid], dtype=spec.dtype)
            invalid |= present & ~np.isin(column, allowed)
        if spec.invalid:
            bad: Any = np.array([float(spec.constant(v)) for v in spec.invalid], dtype=spec.dtype)
            invalid |= present & np.isin(column, bad)
        if spec.intervals and spec.optype == "continuous":
            inside = np.zeros(n, bool)
            for low, high, low_closed, high_closed in spec.intervals:
                above = column >= low if low_closed else column > low
                below = column <= high if high_closed else column < high
                inside |= above & below
            invalid |= present & ~inside
        return column, invalid
    if raw.dtype != object:
        raw = numbers_as_text(raw)  # numbers feeding a string field
    column = np.asarray(raw, dtype=object)
    if spec.missing:
        column = np.where(np.isin(column, list(spec.missing)), None, column)
    present = ~pd.isna(column)
    invalid = np.zeros(n, bool)
    if spec.valid and spec.optype != "continuous":
        invalid |= present & ~pd.Series(column).isin(spec.valid).to_numpy()
    if spec.invalid:
        invalid |= present & pd.Series(column).isin(spec.invalid).to_numpy()
    return column, invalid


def _num(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass
class MiningFieldPlan:
    """How one model's MiningSchema treats one field: replacement and outliers."""

    name: str
    usage: str = "active"
    optype: str | None = None
    invalid_treatment: str = "returnInvalid"
    replacement: str | None = None
    outliers: str = "asIs"
    low: float | None = None
    high: float | None = None

    @property
    def changes_values(self) -> bool:
        return self.replacement is not None or self.outliers != "asIs"

    def apply(self, column: Any, spec: FieldDef | None) -> Any:
        if self.outliers != "asIs" and column.dtype != object:
            low = -np.inf if self.low is None else self.low
            high = np.inf if self.high is None else self.high
            if self.outliers == "asMissingValues":
                column = np.where((column < low) | (column > high), np.nan, column).astype(
                    column.dtype
                )
            else:
                column = np.clip(column, low, high).astype(column.dtype)
        if self.replacement is not None:
            data_type = spec.data_type if spec else ("string" if column.dtype == object else "")
            value = parse_value(self.replacement, data_type or "double")
            column = np.where(is_missing(column), value, column).astype(column.dtype)
        return column


def read_mining_schema(doc: Document, model: Element) -> list[MiningFieldPlan]:
    schema = next((c for c in model if c.tag == "MiningSchema"), None)
    if schema is None:
        raise doc.invalid(model, "has no MiningSchema")
    plans = []
    for element in children(schema, "MiningField"):
        usage = element.get("usageType", "active")
        treatment = element.get("invalidValueTreatment", "returnInvalid")
        if treatment == "asValue":
            raise doc.unsupported(element, 'invalidValueTreatment="asValue"')
        outliers = element.get("outliers", "asIs")
        if outliers not in ("asIs", "asMissingValues", "asExtremeValues"):
            raise doc.unsupported(element, f'outliers="{outliers}"')
        low, high = element.get("lowValue"), element.get("highValue")
        plans.append(
            MiningFieldPlan(
                name=element.get("name", ""),
                usage=usage,
                optype=element.get("optype"),
                invalid_treatment=treatment,
                replacement=element.get("missingValueReplacement"),
                outliers=outliers,
                low=float(low) if low is not None else None,
                high=float(high) if high is not None else None,
            )
        )
    return plans
