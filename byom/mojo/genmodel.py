"""h2o-genmodel's arithmetic that several MOJO scorers share, in genmodel's order of operations
(class sums added class by class, so results agree with PredictCsv to the last bits), and the
way a classifier's prediction is presented."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from byom.mojo.archive import Mojo
from byom.scorers.base import Prediction

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
) -> Prediction:
    """`pred` with the class probabilities (balanced first when `balance` is given) and, when
    `full`, the label: with two classes and a `threshold`, class 1 when its probability reaches
    it (genmodel's binomial rule), else the first most probable class; `predict_json` gives
    `predict` and the probabilities."""
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
        pred.labels = pa.array(np.asarray(pred.classes, dtype=object)[chosen], pa.string())
        pred.outputs["predict"] = pred.labels
        pred.proba_output = "probabilities"
    return pred
