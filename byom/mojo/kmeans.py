"""H2O's K-Means MOJOs, scored by numpy as h2o-genmodel's `KMeansMojoModel` scores them: with
`standardize`, a missing number takes its column's mean and a missing level its mode, numbers
are standardised; the distance to each centre adds squared differences of numbers and 1 for a
different level, skips missing values and scales up by all columns over those present; the
nearest centre wins, the lowest index on a tie."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from byom.inputs import level_codes
from byom.mojo.archive import Mojo
from byom.scorers.base import Prediction, Scorer

KMEANS = "K-means"


class KMeansMojoScorer(Scorer):
    """A K-Means MOJO: the index of each row's nearest centre (`score`; `predict` as text)."""

    format = "mojo"
    task = "clustering"

    def __init__(self, mojo: Mojo) -> None:
        n = mojo.integer("n_features")
        if not 0 < n <= len(mojo.columns):
            raise mojo.error(f"{n} features of {len(mojo.columns)} columns")
        k = mojo.integer("center_num")
        if not 0 < k <= 100_000:
            raise mojo.error(f"{k} centres")
        self.centers = np.stack([mojo.numbers(f"center_{i}", n) for i in range(k)])
        self.domains = mojo.domains[:n]
        self.categorical = np.array([d is not None for d in self.domains])
        self.standardize = mojo.info.get("standardize") is True
        if self.standardize:
            self.means = mojo.numbers("standardize_means", n)
            self.mults = mojo.numbers("standardize_mults", n)
            self.modes = mojo.numbers("standardize_modes", n)
        self._sets = {i: pa.array(d, pa.string()) for i, d in enumerate(self.domains) if d}
        self.inputs = mojo.inputs(n)
        self.classes = tuple(str(i) for i in range(k))

    def output_names(self) -> list[str]:
        return ["predict"]

    def _matrix(self, features: dict[str, np.ndarray], n: int) -> np.ndarray:
        """float64 [n, columns]: numbers, and levels as their index; NaN where missing."""
        out = np.empty((n, len(self.inputs)), np.float64)
        for i, spec in enumerate(self.inputs):
            if i in self._sets:
                out[:, i] = level_codes(features[spec.name], self._sets[i])
            else:
                out[:, i] = np.asarray(features[spec.name], np.float64)
        return out

    def predict(self, features: dict[str, np.ndarray], n: int, full: bool = True) -> Prediction:
        x = self._matrix(features, n)
        if self.standardize:
            fill = np.where(self.categorical, self.modes, self.means)
            x = np.where(np.isnan(x), fill[None, :], x)
            numeric = ~self.categorical
            x[:, numeric] = (x[:, numeric] - self.means[numeric]) * self.mults[numeric]
        present = ~np.isnan(x)
        count = present.sum(axis=1)
        columns = x.shape[1]
        scale = np.where((count > 0) & (count < columns), columns / np.maximum(count, 1), 1.0)
        best = np.zeros(n, np.int64)
        best_distance = np.full(n, np.finfo(np.float64).max)
        for c, center in enumerate(self.centers):
            diff = x - center[None, :]
            term = np.where(self.categorical[None, :], (diff != 0).astype(np.float64), diff * diff)
            total = np.zeros(n, np.float64)
            for j in range(columns):  # genmodel adds the columns in order
                total += np.where(present[:, j], term[:, j], 0.0)
            distance = total * scale
            closer = distance < best_distance  # strict: the lowest index wins a tie
            best = np.where(closer, c, best)
            best_distance = np.where(closer, distance, best_distance)
        pred = Prediction(task="clustering", n=n, classes=self.classes)
        pred.labels = pa.array(best.astype(str), pa.string())
        pred.outputs["predict"] = pred.labels
        return pred
