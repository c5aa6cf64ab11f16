"""PMML models scored with pypmml (a JVM evaluator): the opt-in fallback (BYOM_PMML_FALLBACK) for
documents byom's native evaluator refuses, and the tests' reference."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from byom.errors import InvalidModelError, InvalidValueError, ScoringError
from byom.scorers.base import ModelInput, Prediction, Scorer, Task, ValueType

_TYPES: dict[str, ValueType] = {
    "double": "float64",
    "float": "float64",
    "integer": "float64",  # float carries NULL as NaN; pypmml reads integral doubles as integers
    "string": "string",
    "boolean": "string",
}
_TASKS: dict[str, Task] = {
    "regression": "regression",
    "classification": "classification",
    "clustering": "clustering",
}


def _parse_xml(blob: bytes, who: str) -> Any:
    """Parse with defusedxml so DTDs, entities and malformed XML are refused before the JVM."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    from byom.errors import UnsafeModelError

    try:
        return fromstring(blob, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise UnsafeModelError(f"{who} uses a forbidden XML feature: {exc}") from exc
    except Exception as exc:
        raise InvalidModelError(f"{who} is not well-formed XML: {exc}") from exc


class PypmmlScorer(Scorer):
    format = "pmml"

    def __init__(self, blob: bytes, model_id: str = "") -> None:
        who = f"model {model_id!r}" if model_id else "the PMML model"
        root = _parse_xml(blob, who)
        from byom.java import ensure_java

        ensure_java()
        try:
            from pypmml import Model
        except ImportError:
            raise InvalidModelError(
                f"{who} needs the pypmml fallback, which is not installed: run "
                "`pip install 'byom[pypmml]'` (and have Java), or unset BYOM_PMML_FALLBACK"
            ) from None
        try:
            self._model = Model.fromString(blob.decode("utf-8"))
        except Exception as exc:
            raise InvalidModelError(f"{who} cannot be loaded by pypmml: {exc}") from exc
        m = self._model
        self.task = _TASKS.get(str(m.functionName), "regression")
        self.target = m.targetName
        self.classes = tuple(str(c) for c in (m.classes or ())) if self.task != "regression" else ()
        categories, intervals, treatment = _valid_values(root)
        self.inputs = tuple(_describe_input(f, categories, intervals) for f in m.inputFields)
        # Under PMML's default invalidValueTreatment="returnInvalid" an invalid value has no
        # result; pypmml would return an empty row without a word, so byom checks first.
        strict = {
            i.name for i in self.inputs if treatment.get(i.name, "returnInvalid") == "returnInvalid"
        }
        self._valid = {
            i.name: pa.array(sorted(i.categories), pa.string())
            for i in self.inputs
            if i.categories and i.name in strict
        }
        self._intervals = {
            i.name: intervals[i.name]
            for i in self.inputs
            if i.name in intervals and i.name in strict and i.type != "string"
        }
        # Fields the document declares are reported as declared; pypmml's supplementary
        # fields fill in what a producer left out (sklearn2pmml classifiers declare no label).
        self._declared = [o.name for o in m.outputFields]
        m.setSupplementOutput(True)
        self._outputs: list[Any] = list(m.outputFields)
        self._predicted = next(
            (o.name for o in self._outputs if o.feature == "predictedValue"), None
        )
        self._proba = {
            str(o.value): o.name
            for o in self._outputs
            if o.feature == "probability" and o.value is not None
        }

    def output_names(self) -> list[str]:
        target = [self.target] if self.target else []
        return target + [n for n in self._declared if n not in target]

    def predict(self, features: dict[str, np.ndarray], n: int, full: bool = True) -> Prediction:
        for name, valid in self._valid.items():
            _check_categories(name, features[name], valid)
        for name, spans in self._intervals.items():
            _check_intervals(name, features[name], spans)
        names = [i.name for i in self.inputs]
        columns = [_json_values(features[name]) for name in names]
        rows = [list(r) for r in zip(*columns, strict=True)]
        payload = json.dumps({"columns": names, "data": rows})
        try:
            # Concurrent predict calls are safe in pypmml (each py4j call has its own socket);
            # only setSupplementOutput is shared state, and it is set once, at load.
            raw = self._model.call("predict", payload)
        except Exception as exc:
            raise ScoringError(f"pypmml failed on a batch of {n} rows: {exc}") from exc
        result = json.loads(raw)
        cols: dict[str, list[Any]] = {c: [] for c in result["columns"]}
        if result["data"]:
            transposed = zip(*result["data"], strict=True)
            for name, column in zip(result["columns"], transposed, strict=True):
                if not cols[name]:  # a supplementary field may repeat a declared name
                    cols[name] = list(column)
        pred = Prediction(task=self.task, n=n, classes=self.classes)
        predicted = cols.get(self._predicted or "", [None] * n)
        if self.target:
            pred.outputs[self.target] = pa.array(predicted, size=n)
        for name in self._declared:
            if name in cols and name != self.target:
                pred.outputs[name] = pa.array(cols[name], size=n)
        if self.task == "regression":
            pred.value = np.array(predicted, dtype=np.float64)
        else:
            pred.labels = pa.array(
                [None if v is None else _label(v) for v in predicted], pa.string()
            )
        if self._proba and self.classes:
            pred.probabilities = np.column_stack(
                [
                    np.array(cols.get(self._proba.get(c, ""), [None] * n), dtype=np.float64)
                    for c in self.classes
                ]
            )
        return pred


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


#: An Interval as (low, high, low closed, high closed); margins default to unbounded.
Interval = tuple[float, float, bool, bool]


def _valid_values(
    root: Any,
) -> tuple[dict[str, tuple[str, ...]], dict[str, list[Interval]], dict[str, str]]:
    """From the DataDictionary: valid categories of categorical fields, valid intervals of
    continuous ones; from the MiningSchema: each field's invalid-value treatment."""
    categories: dict[str, tuple[str, ...]] = {}
    intervals: dict[str, list[Interval]] = {}
    treatment: dict[str, str] = {}
    for element in root.iter():
        tag = _local(element.tag)
        if tag == "MiningField":
            treatment.setdefault(
                element.get("name"), element.get("invalidValueTreatment", "returnInvalid")
            )
        elif tag == "DataField" and element.get("optype") == "continuous":
            spans = [
                (
                    float(v.get("leftMargin", "-inf")),
                    float(v.get("rightMargin", "inf")),
                    v.get("closure", "closedClosed").startswith("closed"),
                    v.get("closure", "closedClosed").endswith("Closed"),
                )
                for v in element
                if _local(v.tag) == "Interval"
            ]
            if spans:
                intervals[element.get("name")] = spans
        elif tag == "DataField":
            valid = tuple(
                v.get("value")
                for v in element
                if _local(v.tag) == "Value" and v.get("property", "valid") == "valid"
            )
            if valid:
                categories[element.get("name")] = valid
    return categories, intervals, treatment


def _check_categories(name: str, values: np.ndarray, valid: pa.Array) -> None:
    text = pa.array(values, pa.string(), from_pandas=True)
    unknown = pc.and_(text.is_valid(), pc.invert(pc.is_in(text, value_set=valid)))
    bad = np.flatnonzero(unknown.to_numpy(zero_copy_only=False))
    if bad.size:
        names = valid.to_pylist()
        shown = ", ".join(repr(v) for v in names[:10]) + (" ..." if len(names) > 10 else "")
        raise InvalidValueError(
            f"{name} = {values[bad[0]]!r} (row {bad[0] + 1} of the batch, {bad.size} such rows) "
            f"is not one of the model's categories ({shown}), and the model marks such rows "
            "invalid (invalidValueTreatment=returnInvalid): map or filter the values first"
        )


def _check_intervals(name: str, values: np.ndarray, spans: list[Interval]) -> None:
    inside = np.isnan(values)
    for low, high, low_closed, high_closed in spans:
        above = values >= low if low_closed else values > low
        below = values <= high if high_closed else values < high
        inside |= above & below
    bad = np.flatnonzero(~inside)
    if bad.size:
        shown = ", ".join(
            f"{'[' if lc else '('}{lo:g}, {hi:g}{']' if hc else ')'}" for lo, hi, lc, hc in spans
        )
        raise InvalidValueError(
            f"{name} = {float(values[bad[0]])!r} (row {bad[0] + 1} of the batch, {bad.size} such "
            f"rows) is outside the model's valid range {shown}, and the model marks such rows "
            "invalid (invalidValueTreatment=returnInvalid): filter or clip the values first"
        )


def _describe_input(
    field: Any, categories: dict[str, tuple[str, ...]], intervals: dict[str, list[Interval]]
) -> ModelInput:
    """Categorical fields travel as text: pypmml matches category "8" only to 8 or "8", never
    to 8.0, and silently returns an empty row otherwise."""
    categorical = str(field.opType) != "continuous"
    kind = "string" if categorical else _TYPES.get(str(field.dataType), "string")
    example = None
    if field.name in intervals:
        low, high, _, _ = intervals[field.name][0]
        finite = [v for v in (low, high) if np.isfinite(v)]
        example = sum(finite) / len(finite) if finite else None
    return ModelInput(field.name, kind, categories=categories.get(field.name, ()), example=example)


def _label(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _json_values(arr: np.ndarray) -> list[Any]:
    if arr.dtype.kind == "f":
        return [None if np.isnan(v) else float(v) for v in arr.tolist()]
    return arr.tolist()
