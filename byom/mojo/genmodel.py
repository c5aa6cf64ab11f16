"""h2o-genmodel's arithmetic that several MOJO scorers share, in genmodel's order of operations
(class sums added class by class, so results agree with PredictCsv to the last bits), and the
way a classifier's prediction is presented."""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa

from byom.inputs import level_codes
from byom.mojo.archive import Mojo
from byom.scorers.base import ModelInput, Prediction

#: The inverse link genmodel applies for a distribution when the MOJO names none.
DEFAULT_LINKS = {
    "bernoulli": "logit",
    "quasibinomial": "logit",
    "modified_huber": "logit",
    "multinomial": "log",
    "poisson": "log",
    "gamma": "log",
    "tweedie": "log",
    "gaussian": "identity",
    "laplace": "identity",
    "quantile": "identity",
    "huber": "identity",
}


def class_sum(values: np.ndarray) -> np.ndarray:
    """Each row's sum over its classes (columns), added in class order."""
    total = values[:, 0].copy()
    for j in range(1, values.shape[1]):
        total += values[:, j]
    return total


def softmax(z: np.ndarray) -> np.ndarray:
    """genmodel's softmax (GBM_rescale, deep learning's output layer): shifted by the row's
    maximum, summed in class order, divided."""
    shifted = np.exp(z - z.max(axis=1, keepdims=True))
    return shifted / class_sum(shifted)[:, None]


def inverse_link(link: str, f: np.ndarray) -> np.ndarray:
    """Tree and deep-learning models' inverse links, with genmodel's clamp of exp at 1e19."""
    if link == "logit":
        return 1.0 / (1.0 + np.minimum(1e19, np.exp(-f)))
    if link == "log":
        return np.asarray(np.minimum(1e19, np.exp(f)))
    return f


def class_balance(mojo: Mojo, n_classes: int) -> np.ndarray | None:
    """With `balance_classes`, each class's factor prior / model share (1 where either is 0),
    for genmodel's correctProbabilities; else None."""
    if mojo.info.get("balance_classes") is not True or n_classes < 2:
        return None
    prior = mojo.numbers("prior_class_distrib", n_classes)
    share = mojo.numbers("model_class_distrib", n_classes)
    return np.where((prior != 0) & (share != 0), prior / np.where(share != 0, share, 1.0), 1.0)


def classified(
    pred: Prediction,
    proba: np.ndarray,
    full: bool,
    threshold: float | None,
    balance: np.ndarray | None = None,
    ties: Ties | None = None,
) -> Prediction:
    """`pred` with the class probabilities (balanced first when `balance` is given) and, when
    `full`, the label: with two classes and a `threshold`, class 1 when its probability reaches
    it (genmodel's binomial rule), else the most probable class, a tie broken as `ties` says
    (the first otherwise); `predict_json` gives `predict` and the probabilities."""
    if balance is not None:  # genmodel's correctProbabilities
        proba = proba * balance
        total = class_sum(proba)[:, None]
        proba = np.where(total > 0, proba / np.where(total > 0, total, 1.0), proba)
    pred.probabilities = proba
    if full:
        if proba.shape[1] == 2 and threshold is not None:
            chosen = (proba[:, 1] >= threshold).astype(np.int64)
        else:
            chosen = np.argmax(proba, axis=1)  # the first of equal maxima
            if ties is not None:
                ties.apply(proba, chosen)
        pred.labels = pa.array(np.asarray(pred.classes, dtype=object)[chosen], pa.string())
        pred.outputs["predict"] = pred.labels
        pred.proba_output = "probabilities"
    return pred


class Ties:
    """genmodel's `getPredictionMultinomial` for the rows whose top probability is shared: a
    `java.util.Random` seeded by a hash of the row's values draws among the tied classes,
    weighted by the class priors. `rows(indices)` gives those rows as genmodel's double[]
    (levels as their index, NaN where missing)."""

    def __init__(self, priors: np.ndarray | None, rows: Callable[[np.ndarray], np.ndarray]) -> None:
        self.priors, self.rows = priors, rows

    @classmethod
    def of(
        cls,
        priors: np.ndarray | None,
        features: dict[str, np.ndarray],
        inputs: Sequence[ModelInput],
    ) -> Ties:
        """Ties of a batch of `features` read through the model's `inputs`."""
        return cls(priors, lambda rows: genmodel_rows(features, inputs, rows))

    def apply(self, proba: np.ndarray, chosen: np.ndarray) -> None:
        with np.errstate(invalid="ignore"):
            top = proba.max(axis=1)
            tied = np.flatnonzero((proba == top[:, None]).sum(axis=1) > 1)
        if tied.size:
            data = self.rows(tied)
            for k, row in enumerate(tied.tolist()):
                chosen[row] = self.pick(proba[row].tolist(), data[k].tolist())

    def pick(self, p: list[float], data: list[float]) -> int:
        """The class genmodel predicts for probabilities `p` of the row `data`, step by step as
        genmodel takes them (its list of ties keeps classes a later maximum displaced)."""
        ties, best, count = [0], 0, 0
        for c in range(1, len(p)):
            if p[best] < p[c]:
                best, count = c, 0
            elif p[best] == p[c]:
                count += 1
                ties.append(c)
        if count == 0:
            return best
        seed = 0
        for value in data:
            seed ^= struct.unpack("<q", struct.pack("<d", value))[0] >> 6
        if self.priors is not None:
            total = sum(float(self.priors[i]) for i in ties)
            draw, partial = _java_random_double(seed), 0.0
            for i in ties:
                partial += float(self.priors[i]) / total
                if draw <= partial:
                    return i
        low = seed & 0xFFFFFFFF  # (int) hash % (ties + 1), Java's truncating remainder
        low -= (low & 0x80000000) << 1
        left = abs(low) % (count + 1) * (1 if low >= 0 else -1)
        for c in range(len(p)):
            if p[c] == p[best]:
                left -= 1
                if left < 0:
                    return c
        return best


def _java_random_double(seed: int) -> float:
    """`new java.util.Random(seed).nextDouble()`."""
    mult, mask = 0x5DEECE66D, (1 << 48) - 1
    state = (seed ^ mult) & mask
    state = (state * mult + 0xB) & mask
    high = state >> 22  # next(26)
    state = (state * mult + 0xB) & mask
    return ((high << 27) + (state >> 21)) * 2.0**-53


def genmodel_rows(
    features: dict[str, np.ndarray], inputs: Sequence[ModelInput], rows: np.ndarray
) -> np.ndarray:
    """Some rows of the features as genmodel reads them (`RowData` to double[]): a level as
    its index, a number as itself, NULL or an unknown level NaN."""
    out = np.empty((len(rows), len(inputs)))
    for j, spec in enumerate(inputs):
        values = np.asarray(features[spec.name])[rows]
        if spec.type != "string":
            out[:, j] = values.astype(np.float64)
        else:
            out[:, j] = level_codes(values, pa.array(spec.categories, pa.string()))
    return out
