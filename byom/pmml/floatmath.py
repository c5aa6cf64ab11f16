"""JPMML's float math context (x-mathContext="float"), as whole-column numpy float32 steps.

sklearn2pmml marks XGBoost exports with x-mathContext="float" on every model element: JPMML then
evaluates that model with float (binary32) values, as XGBoost does. Only the element that
carries the attribute computes in float (JPMML does not inherit it into segments). Per model:

* tree leaf scores are read as float; a Segmentation sums / averages them in float, in
  document order; Targets clamp (min/max), multiply by rescaleFactor and add rescaleConstant
  in float, in that order;
* a RegressionTable sums coefficient * value terms in float (coefficient and value rounded to
  float first), and adds its intercept last;
* link functions and normalizations run in float: JPMML's float exp(x) is
  (float) Math.pow(2.7182817, x), not a rounded double exp; softmax subtracts the largest value
  first; a binary logit gives the second class 1 - p in float;
* output fields of dataType="float" are rounded to float.

pypmml (PMML4S) ignores the attribute and computes in double: it differs from JPMML by ~1e-7
on these models; byom follows JPMML.
"""

from __future__ import annotations

import numpy as np

F32 = np.float32
#: The base JPMML's FloatValue.exp raises to the power (a double constant).
_E = 2.7182817


def exp(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.power(_E, np.asarray(x, np.float64)).astype(F32)


def inverse_link(method: str, y: np.ndarray) -> np.ndarray:
    """A regression or binary classification link in float (JPMML's Value.inverse*)."""
    y = np.asarray(y, F32)
    one = F32(1)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if method in ("logit", "softmax"):
            return (one / (one + exp(-y))).astype(F32)
        if method == "exp":
            return exp(y)
        if method == "cloglog":
            return (one - exp(-exp(y))).astype(F32)
        if method == "loglog":
            return exp(-exp(-y))
        if method == "cauchit":
            atan = np.arctan(y.astype(np.float64)).astype(F32)
            return (F32(0.5) + F32(0.31830987) * atan).astype(F32)
        if method == "probit":  # JPMML has no float probit: double, rounded
            from scipy.special import ndtr

            return np.asarray(ndtr(y.astype(np.float64))).astype(F32)
    return y


def softmax(ys: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float: subtract the row max, exp, sum in column order, divide."""
    ys = np.asarray(ys, F32)
    shifted = (ys - ys.max(axis=1, keepdims=True)).astype(F32)
    e = exp(shifted)
    return _divide_by_running_sum(e)


def simplemax(ys: np.ndarray) -> np.ndarray:
    return _divide_by_running_sum(np.asarray(ys, F32))


def _divide_by_running_sum(values: np.ndarray) -> np.ndarray:
    total = values[:, 0].copy()
    for j in range(1, values.shape[1]):  # in order, as JPMML adds them
        total = (total + values[:, j]).astype(F32)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (values / total[:, None]).astype(F32)
