"""What every scorer exposes, whatever the format: its inputs, and whole-batch predictions."""

from __future__ import annotations

import abc
import threading
import weakref
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
        """A key shared by models that one `ModelFamily` scores together in one pass (a table
        of many small models names a different one every few rows); None: scored alone."""
        return None

    def make_family(self) -> ModelFamily:
        """An empty family of this scorer's `family` key, to add models of that key to."""
        raise NotImplementedError(f"{type(self).__name__} has no model families")

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


class ModelFamily(abc.ABC):
    """Models of one `Scorer.family` key scored together: each row names its model by a
    member index, and one `predict` scores every row however the members are interleaved,
    as each model's own `predict` would. Shared by every statement of the process, so it
    holds its members weakly: a scorer the caches let go frees its index for the next one.
    Thread-safe."""

    def __init__(self) -> None:
        self._members: dict[int, int] = {}  # id(scorer) -> member index, while it lives
        self._scorers: list[weakref.ref[Scorer]] = []  # by member index
        self._free: list[int] = []
        self._lock = threading.RLock()  # a member's finalizer may run inside the lock

    def member(self, scorer: Scorer) -> int:
        """The scorer's member index, added on first use."""
        found = self._members.get(id(scorer))
        if found is not None:
            return found
        with self._lock:
            found = self._members.get(id(scorer))
            if found is None:
                found = self._free.pop() if self._free else len(self._scorers)
                self._put(found, scorer)  # before publishing the index: readers find it ready
                if found == len(self._scorers):
                    self._scorers.append(weakref.ref(scorer))
                else:
                    self._scorers[found] = weakref.ref(scorer)
                self._members[id(scorer)] = found
                weakref.finalize(scorer, self._forget, id(scorer))
            return found

    def _forget(self, scorer_id: int) -> None:
        with self._lock:
            index = self._members.pop(scorer_id, None)
            if index is not None:
                self._release(index)
                self._free.append(index)

    def scorer(self, index: int) -> Scorer:
        """The scorer of a member that rows being scored name (so it is alive)."""
        found = self._scorers[index]()
        assert found is not None, "a member scored after its scorer was let go"
        return found

    @abc.abstractmethod
    def _put(self, index: int, scorer: Scorer) -> None:
        """Take in a member's parameters at `index` (called under the lock)."""

    @abc.abstractmethod
    def _release(self, index: int) -> None:
        """Drop what member `index` held (its scorer is gone; the index is reused)."""

    @abc.abstractmethod
    def predict(
        self, members: np.ndarray, features: dict[str, np.ndarray], full: bool = True
    ) -> Prediction:
        """Score rows whose model is `members[i]` (int64 member indexes, in any order) on
        `features` (as every member's `predict` takes them)."""
