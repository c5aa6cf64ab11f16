"""The native PMML evaluator behind byom's Scorer interface, shaped like the pypmml scorer."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from byom.pmml.models.mining import MiningModel
from byom.pmml.models.tree import TreeModel
from byom.pmml.plan import compile_document
from byom.scorers.base import ModelInput, Prediction, Scorer, Task, ValueType

_TYPES: dict[str, ValueType] = {
    "double": "float64",
    "float": "float64",
    "integer": "float64",
    "string": "string",
    "boolean": "string",
}


class NativePmmlScorer(Scorer):
    format = "pmml"

    def __init__(self, blob: bytes, model_id: str = "") -> None:
        who = f"model {model_id!r}" if model_id else "the PMML model"
        self.plan = plan = compile_document(blob, who)
        model = plan.model
        self.task: Task = "classification" if model.function == "classification" else "regression"
        if model.function == "clustering":
            self.task = "clustering"
        self.target = model.target
        self.classes = model.classes if self.task == "classification" else ()
        inputs = []
        for mining, spec in plan.inputs:
            optype = mining.optype or spec.optype
            kind: ValueType = "string" if optype != "continuous" else _TYPES[spec.data_type]
            example = None
            if spec.intervals:
                low, high, _, _ = spec.intervals[0]
                finite = [v for v in (low, high) if np.isfinite(v)]
                example = sum(finite) / len(finite) if finite else None
            inputs.append(ModelInput(spec.name, kind, categories=spec.valid, example=example))
        self.inputs = tuple(inputs)
        if isinstance(model, MiningModel):
            declared = model.final_outputs()
        else:
            declared = [o.name for o in model.outputs if o.final]
        if not declared and self.target:
            # What pypmml reports for a model without an Output.
            declared = [f"predicted_{self.target}"]
            if self.task == "classification":
                declared += ["probability"] + [f"probability_{c}" for c in self.classes]
            if isinstance(model, TreeModel):
                declared.append("node_id")
        self._declared = declared
        #: Output fields of dataType boolean, which predict_json reports as JSON booleans.
        self._booleans = {n for n in declared if plan.ctx.type_of(n) == "boolean"}
        self._numeric_labels = model.numeric_target

    def output_names(self) -> list[str]:
        target = [self.target] if self.target else []
        return target + [n for n in self._declared if n not in target]

    def predict(self, features: dict[str, np.ndarray], n: int, full: bool = True) -> Prediction:
        result, values = self.plan.run(features, n)
        pred = Prediction(task=self.task, n=n, classes=self.classes)
        if self.task == "regression":
            value = result.value if result.value is not None else np.full(n, np.nan)
            pred.value = value.astype(np.float64, copy=False)
            predicted: pa.Array = pa.array(pred.value, pa.float64(), from_pandas=True)
        else:
            labels = result.labels if result.labels is not None else np.full(n, None, object)
            pred.labels = pa.array(labels, pa.string())
            predicted = pred.labels
            if self._numeric_labels:
                predicted = _as_number(pred.labels)
            if result.probabilities is not None:
                pred.probabilities = result.probabilities.astype(np.float64, copy=False)
        if self.target:
            pred.outputs[self.target] = predicted
        for name in self._declared:
            if name == self.target:
                continue
            if name in values:
                column = values[name]
                if name in self._booleans and column.dtype != object:
                    pred.outputs[name] = _booleans(column)
                else:
                    pred.outputs[name] = _arrow(column)
            elif name == f"predicted_{self.target}":
                pred.outputs[name] = predicted
            elif name == "node_id" and result.entities is not None:
                pred.outputs[name] = _arrow(result.entities)
            elif name == "probability" and pred.probabilities is not None:
                best = np.where(np.isnan(pred.probabilities), -np.inf, pred.probabilities)
                pred.outputs[name] = pa.array(best.max(axis=1), from_pandas=True)
            elif name.startswith("probability_") and pred.probabilities is not None:
                cls = name[len("probability_") :]
                if cls in self.classes:
                    pred.outputs[name] = pa.array(
                        pred.probabilities[:, self.classes.index(cls)], from_pandas=True
                    )
        return pred


def _arrow(column: np.ndarray) -> pa.Array:
    if column.dtype == object:
        return pa.array(column, pa.string(), from_pandas=True)
    return pa.array(column.astype(np.float64, copy=False), pa.float64(), from_pandas=True)


def _booleans(column: np.ndarray) -> pa.Array:
    """A boolean field's 1.0 / 0.0 / NaN column as Arrow booleans (NaN: NULL)."""
    numbers = column.astype(np.float64, copy=False)
    return pa.array(numbers != 0, pa.bool_(), mask=np.isnan(numbers))


def _as_number(labels: pa.Array) -> pa.Array:
    import pyarrow.compute as pc

    try:
        numbers = pc.cast(labels, pa.float64())
    except pa.ArrowInvalid:
        return labels
    as_int = pc.cast(numbers, pa.int64(), safe=False)
    if pc.all(pc.equal(pc.cast(as_int, pa.float64()), numbers)).as_py() in (True, None):
        return as_int
    return numbers
