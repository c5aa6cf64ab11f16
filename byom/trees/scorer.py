"""A tree ensemble behind byom's Scorer interface, whatever format it was read from."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from byom.inputs import level_codes
from byom.scorers.base import ModelFamily, ModelInput, Prediction, Scorer, Task
from byom.trees import evaluate
from byom.trees.ensemble import TreeEnsemble


class TreeScorer(Scorer):
    """Scores a TreeEnsemble on whole columns: the compiled kernel where it is available, the
    numpy evaluator otherwise (the same numbers)."""

    def __init__(
        self,
        ensemble: TreeEnsemble,
        feature_names: Sequence[str],
        *,
        format: str,
        task: Task,
        classes: Sequence[str] = (),
        target: str | None = None,
        categories: Mapping[int, Sequence[str]] | None = None,
        raw_output: str = "raw_score",
    ) -> None:
        """`categories`: for categorical features taking text, the category of each code (the
        code is the position); such inputs take strings or numeric codes."""
        if len(feature_names) != ensemble.n_features:
            raise ValueError("one name per feature")
        self.ensemble = ensemble
        self.format = format
        self.task = task
        self.classes = tuple(classes)
        self.target = target
        self.feature_names = list(feature_names)
        self._categories = {
            i: pa.array(list(cats), pa.string()) for i, cats in (categories or {}).items()
        }
        self._raw_output = raw_output
        self.inputs = tuple(
            ModelInput(name, "string", categories=tuple(map(str, self._categories[i].to_pylist())))
            if i in self._categories
            else ModelInput(name, "float64")
            for i, name in enumerate(self.feature_names)
        )

    def output_names(self) -> list[str]:
        if self.task == "regression":
            return [self.target or "prediction", self._raw_output]
        return [self.target or "label", *(f"probability({c})" for c in self.classes)]

    def _columns(self, features: dict[str, np.ndarray]) -> list[np.ndarray]:
        columns = []
        for i, name in enumerate(self.feature_names):
            values = features[name]
            if i in self._categories:
                values = self._codes(i, values)
            columns.append(np.asarray(values, dtype=np.float64))
        return columns

    def _codes(self, i: int, values: np.ndarray) -> np.ndarray:
        """Text categories to their codes (an unknown one is missing: NaN)."""
        return level_codes(values, self._categories[i])

    def margins(self, features: dict[str, np.ndarray]) -> np.ndarray:
        columns = self._columns(features)
        from byom.trees import kernel_margins

        return kernel_margins(self.ensemble, columns)

    def family(self) -> tuple[object, ...] | None:
        """Ensembles with the same features, outputs and post transform are scored together
        (`TreeFamily`); categorical inputs map text by each model's own categories: alone."""
        if self._categories:
            return None
        e = self.ensemble
        return (
            *("trees", self.format, self.task, self.classes, self.target, self._raw_output),
            *(e.n_features, e.n_outputs, e.post_transform, e.post_param, e.transform_float32),
        )

    def make_family(self) -> TreeFamily:
        return TreeFamily()

    def predict(self, features: dict[str, np.ndarray], n: int, full: bool = True) -> Prediction:
        return self.prediction(self.margins(features), n, full)

    def prediction(self, raw: np.ndarray, n: int, full: bool = True) -> Prediction:
        """The Prediction from the ensemble's margins (float64 [n, n_outputs])."""
        values = evaluate.transform(self.ensemble, raw)
        pred = Prediction(task=self.task, n=n, classes=self.classes)
        raw_out = raw[:, 0] if raw.shape[1] == 1 else raw
        if self.task == "regression":
            pred.value = values[:, 0]
            if not full:
                return pred
            pred.outputs[self.target or "prediction"] = pa.array(pred.value)
            pred.outputs[self._raw_output] = pa.array(raw_out)
            return pred
        probabilities = (
            np.column_stack([1.0 - values[:, 0], values[:, 0]]) if values.shape[1] == 1 else values
        )
        pred.probabilities = probabilities
        if not full:  # `score` needs the probabilities only
            return pred
        labels = np.asarray(self.classes, dtype=object)[np.argmax(probabilities, axis=1)]
        pred.labels = pa.array(labels, pa.string())
        pred.outputs[self.target or "label"] = pred.labels
        pred.proba_output = "probabilities"
        if raw.shape[1] == 1:
            pred.outputs[self._raw_output] = pa.array(raw_out)
        else:  # one margin per class, as the library's raw predictions
            for j, name in enumerate(self.classes):
                pred.outputs[f"{self._raw_output}({name})"] = pa.array(raw[:, j])
        return pred


class TreeFamily(ModelFamily):
    """Tree ensembles of one `TreeScorer.family` key: the rows grouped by model (sorted once,
    unless each model's rows are already together), each model's compiled kernel called on its
    run of rows, reading the feature columns in place (`kernel.grouped_margins`), and one
    transform over all of them."""

    def __init__(self) -> None:
        super().__init__()
        self._ensembles: list[TreeEnsemble | None] = []
        self._kernels: list[Any] = []  # a member's Kernel, or None: the numpy path

    def _put(self, index: int, scorer: Scorer) -> None:
        from byom.trees.kernel_cache import kernel_for

        ensemble = scorer.ensemble  # type: ignore[attr-defined]
        kernel = kernel_for(ensemble)  # None, with a notice: the numpy path
        if index == len(self._ensembles):
            self._ensembles.append(ensemble)
            self._kernels.append(kernel)
        else:
            self._ensembles[index], self._kernels[index] = ensemble, kernel

    def _release(self, index: int) -> None:
        self._ensembles[index] = self._kernels[index] = None

    def predict(
        self, members: np.ndarray, features: dict[str, np.ndarray], full: bool = True
    ) -> Prediction:
        from byom.trees.kernel import grouped_margins

        n, order = len(members), None
        starts = np.flatnonzero(np.diff(members, prepend=-1))
        owners = members[starts].tolist()
        if len(set(owners)) != len(owners):  # some member's rows are apart: group them
            order = np.argsort(members, kind="stable")
            starts = np.flatnonzero(np.diff(members[order], prepend=-1))
            owners = members[order][starts].tolist()
        template: TreeScorer = self.scorer(owners[0])  # type: ignore[assignment]
        kernels = [self._kernels[m] for m in owners]
        columns = [np.ascontiguousarray(c) for c in template._columns(features)]
        if order is not None:
            columns = [c[order] for c in columns]
        if all(k is not None for k in kernels):
            raw = grouped_margins(kernels, columns, starts.tolist())
        else:  # some member has no kernel (over the bound, or no llvmlite): numpy for all
            stops = np.append(starts[1:], n).tolist()
            raw = np.concatenate(
                [
                    evaluate.margins(self._ensembles[m], [c[a:b] for c in columns])
                    for m, a, b in zip(owners, starts.tolist(), stops, strict=True)
                ]
            )
        if order is not None:
            unsorted = np.empty_like(raw)
            unsorted[order] = raw
            raw = unsorted
        return template.prediction(raw, n, full)
