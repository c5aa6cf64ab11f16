"""PMML models, scored with pypmml (a JVM evaluator) until byom's native evaluator lands."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa

from byom.errors import InvalidModelError, ScoringError
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


def _check_xml(blob: bytes, who: str) -> None:
    """Parse once with defusedxml so DTDs, entities and malformed XML are refused before the JVM."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    from byom.errors import UnsafeModelError

    try:
        fromstring(blob, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise UnsafeModelError(f"{who} uses a forbidden XML feature: {exc}") from exc
    except Exception as exc:
        raise InvalidModelError(f"{who} is not well-formed XML: {exc}") from exc


class PmmlScorer(Scorer):
    format = "pmml"

    def __init__(self, blob: bytes, model_id: str = "") -> None:
        who = f"model {model_id!r}" if model_id else "the PMML model"
        _check_xml(blob, who)
        from byom.java import ensure_java

        ensure_java()
        try:
            from pypmml import Model

            self._model = Model.fromString(blob.decode("utf-8"))
        except Exception as exc:
            raise InvalidModelError(f"{who} cannot be loaded by pypmml: {exc}") from exc
        m = self._model
        self.task = _TASKS.get(str(m.functionName), "regression")
        self.target = m.targetName
        self.classes = tuple(str(c) for c in (m.classes or ())) if self.task != "regression" else ()
        self.inputs = tuple(_describe_input(f) for f in m.inputFields)
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


def _describe_input(field: Any) -> ModelInput:
    """Categorical fields travel as text: pypmml matches category "8" only to 8 or "8", never
    to 8.0, and silently returns an empty row otherwise."""
    categorical = str(field.opType) != "continuous"
    kind = "string" if categorical else _TYPES.get(str(field.dataType), "string")
    values = field.valuesAsString or () if categorical else ()
    return ModelInput(field.name, kind, categories=tuple(str(v) for v in values if v is not None))


def _label(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _json_values(arr: np.ndarray) -> list[Any]:
    if arr.dtype.kind == "f":
        return [None if np.isnan(v) else float(v) for v in arr.tolist()]
    return arr.tolist()
