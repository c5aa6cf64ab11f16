"""What every scorer exposes, whatever the format: its inputs, and whole-batch predictions."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa

Task = Literal["regression", "classification", "clustering"]
#: The value types a model input can declare; inputs are converted to these before scoring.
ValueType = Literal["float32", "float64", "int64", "string", "bool"]


@dataclass(frozen=True)
class ModelInput:
    """One input of the model: a tensor of `width` columns, or one field (width 1)."""

    name: str
    type: ValueType
    width: int = 1
    #: Known categories, used to build a sample row when validating a saved model.
    categories: tuple[str, ...] = ()
    #: A valid numeric value for sample rows, where 0 might not be (a PMML Interval).
    example: float | None = None


@dataclass
class Prediction:
    """A batch of predictions in columnar form, one entry per input row, in order."""

    task: Task
    n: int
    #: Predicted numeric value (regression), else None.
    value: np.ndarray | None = None
    #: Predicted label as text (classification, clustering), else None.
    labels: pa.Array | None = None
    classes: tuple[str, ...] = ()
    #: (n, len(classes)) float64 probabilities, when the model gives them.
    probabilities: np.ndarray | None = None
    #: Every output the model declares, by its own name, for predict_json.
    outputs: dict[str, pa.Array] = field(default_factory=dict)
    #: When set, predict_json reports the probabilities as one object under this name.
    proba_output: str | None = None


class Scorer(abc.ABC):
    """A loaded model. Implementations must be safe to call from several threads at once."""

    format: str
    inputs: tuple[ModelInput, ...]
    task: Task
    classes: tuple[str, ...]
    #: The target field's name, when the format records one.
    target: str | None = None
    #: What a NULL in a string input becomes, for runtimes without a missing string (ONNX
    #: takes ""); None keeps it missing.
    missing_string: str | None = None

    def family(self) -> tuple[object, ...] | None:
        """A key shared by models that `predict_family` scores together in one pass (a table
        of many small models names a different one every few rows); None: scored alone."""
        return None

    @classmethod
    def predict_family(
        cls,
        scorers: Sequence[Scorer],
        counts: Sequence[int],
        features: dict[str, np.ndarray],
        full: bool = True,
    ) -> Prediction:
        """One Prediction over the rows of several models of one `family`: `features` holds
        counts[0] rows for scorers[0], then counts[1] for scorers[1]...; what each model's
        own `predict` gives, row for row."""
        raise NotImplementedError(f"{cls.__name__} has no model families")

    def memory_bytes(self, blob_size: int) -> int:
        """About what this loaded model holds in memory: what the caches count against
        BYOM_CACHE_BYTES. Twice its bytes (the parsed form beside the bytes kept to reload it)
        plus 64 KiB for its runtime's own state; formats that know better override it."""
        return 2 * blob_size + 64 * 1024

    @abc.abstractmethod
    def predict(self, features: dict[str, np.ndarray], n: int, full: bool = True) -> Prediction:
        """Score n rows. features maps each input name to an array of shape (n,) or (n, width),
        already converted to the input's declared type; NaN / None mean missing.

        With full=False only what `score` needs (value or probabilities) must be computed, which
        lets a runtime skip work such as label outputs."""

    def describe(self) -> dict[str, object]:
        """The schema recorded in the model table at save time."""
        return {
            "format": self.format,
            "task": self.task,
            "target": self.target,
            "classes": list(self.classes),
            "inputs": [{"name": i.name, "type": i.type, "width": i.width} for i in self.inputs],
            "outputs": self.output_names(),
        }

    def output_names(self) -> list[str]:
        return []
