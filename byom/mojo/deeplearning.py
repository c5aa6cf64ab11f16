"""H2O's Deep Learning MOJOs (feed-forward networks), scored by numpy in float64 as
h2o-genmodel's `DeeplearningMojoModel` scores them.

The input layer is each categorical column one-hot (its block ends with a slot for NA, which an
unseen level takes too; without `use_all_factor_levels` level 0 has no slot) and each numeric
column standardised (`norm_sub`, `norm_mul`), a missing number 0 after it. Each layer multiplies
by its float32 weights (row-major, [out, in]) and adds its bias; hidden layers apply the
activation (Tanh, Rectifier, ExpRectifier or Maxout; `WithDropout` scales outputs by one less the
layer's dropout ratio), the last a softmax (classifiers) or nothing (regression, whose value is
then de-standardised and passed through the distribution's inverse link).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from byom.inputs import level_codes
from byom.mojo.archive import Mojo
from byom.mojo.genmodel import (
    DEFAULT_LINKS,
    Ties,
    class_balance,
    classified,
    inverse_link,
    softmax,
)
from byom.scorers.base import Prediction, Scorer

DEEP_LEARNING = "Deep Learning"
ACTIVATIONS = ("Tanh", "Rectifier", "ExpRectifier", "Maxout")


class DeepLearningMojoScorer(Scorer):
    """A Deep Learning MOJO: its layers applied to whole batches of rows."""

    format = "mojo"

    def __init__(self, mojo: Mojo) -> None:
        self.who = mojo.who
        if mojo.info.get("category") == "AutoEncoder":
            raise mojo.error("deep-learning autoencoders are not supported yet")
        if mojo.info.get("distribution") == "modified_huber":  # genmodel's output is constant
            raise mojo.error("deep learning with the modified_huber distribution is not supported")
        self.cats, self.nums = mojo.integer("cats"), mojo.integer("nums")
        n_features = mojo.integer("n_features")
        if self.cats < 0 or self.nums < 0 or self.cats + self.nums != n_features:
            raise mojo.error(f"{self.cats} categorical and {self.nums} numeric columns")
        self.offsets = mojo.numbers("cat_offsets", self.cats + 1).astype(np.int64)
        sizes = mojo.optional_numbers("neural_network_sizes")
        if sizes is None or len(sizes) < 2 or np.any(sizes < 1) or np.any(sizes > 100_000):
            raise mojo.error(f"layer sizes {mojo.info.get('neural_network_sizes')!r}")
        self.sizes = sizes.astype(np.int64)
        if self.sizes[0] != self.offsets[-1] + self.nums:
            raise mojo.error(f"an input layer of {self.sizes[0]} for its columns")
        activation = mojo.text("activation")
        self.activation = activation.removesuffix("WithDropout")
        if self.activation not in ACTIVATIONS:
            raise mojo.error(f"activation {activation!r} is not supported")
        self.dropout = activation.endswith("WithDropout")
        self.ratios = mojo.optional_numbers("hidden_dropout_ratios", len(self.sizes) - 1)
        self.all_levels = mojo.info.get("use_all_factor_levels") is True
        mul, sub = mojo.optional_numbers("norm_mul"), mojo.optional_numbers("norm_sub")
        self.norm = None if mul is None or sub is None or mul.size == 0 else (sub, mul)
        resp_mul = mojo.optional_numbers("norm_resp_mul")
        resp_sub = mojo.optional_numbers("norm_resp_sub")
        self.resp = None if resp_mul is None or resp_sub is None else (resp_sub[0], resp_mul[0])
        self.distribution = str(mojo.info.get("distribution", "AUTO"))
        self.layers: list[tuple[np.ndarray, np.ndarray]] = []
        for layer in range(len(self.sizes) - 1):
            fan_in, fan_out = int(self.sizes[layer]), int(self.sizes[layer + 1])
            k = 2 if self.activation == "Maxout" and layer < len(self.sizes) - 2 else 1
            weights = mojo.numbers(f"weight_layer{layer}", fan_in * fan_out * k)
            bias = mojo.numbers(f"bias_layer{layer}", fan_out * k)
            # float32 values written as text: back to float32, then exactly to float64
            exact = weights.astype(np.float32).astype(np.float64)
            if k == 1:  # [in, out]: column j of the input against row j
                self.layers.append((exact.reshape(fan_out, fan_in).T.copy(), bias))
            else:  # Maxout: weight of input j to channel c of unit i at k*(i*in + j) + c
                w = exact.reshape(fan_out, fan_in, k).transpose(1, 0, 2).reshape(fan_in, -1)
                self.layers.append((w.copy(), bias))
        self.maxout = self.activation == "Maxout"
        self.n_classes = mojo.integer("n_classes")
        if self.n_classes > 1 and self.sizes[-1] != self.n_classes:
            raise mojo.error(f"an output layer of {self.sizes[-1]} for {self.n_classes} classes")
        domains = mojo.domains[:n_features]
        if any(d is None for d in domains[: self.cats]) or any(domains[self.cats :]):
            raise mojo.error("the categorical columns do not come first, as DL MOJOs list them")
        self._sets = [pa.array(d, pa.string()) for d in domains[: self.cats]]
        self.inputs = mojo.inputs(n_features)
        self.threshold = mojo.number("default_threshold", 0.5)
        self.balance = class_balance(mojo, self.n_classes)
        self.priors = mojo.optional_numbers("prior_class_distrib", self.n_classes or None)
        self.task, self.classes = mojo.outcome()
        if self.task == "regression" and self.distribution not in (*DEFAULT_LINKS, "AUTO"):
            raise mojo.error(f"distribution {self.distribution!r} is not supported")
        self.target = mojo.columns[-1]

    def output_names(self) -> list[str]:
        return ["predict", "probabilities"] if self.task == "classification" else ["predict"]

    def _input_layer(self, features: dict[str, np.ndarray], n: int) -> np.ndarray:
        x = np.zeros((n, int(self.sizes[0])), np.float64)
        rows = np.arange(n)
        for i in range(self.cats):
            found = level_codes(features[self.inputs[i].name], self._sets[i])
            codes = np.nan_to_num(found, nan=-1.0).astype(np.int64)  # -1: NULL or unknown
            start, na_slot = self.offsets[i], self.offsets[i + 1] - 1
            level = codes - (0 if self.all_levels else 1)
            slot = np.where(codes < 0, na_slot, start + level)
            slot = np.where(slot >= self.offsets[i + 1], na_slot, slot)
            used = (codes < 0) | (level >= 0)  # without all levels, level 0 has no slot
            x[rows[used], slot[used]] = 1.0
        first = int(self.offsets[-1])
        for j in range(self.nums):
            d = np.asarray(features[self.inputs[self.cats + j].name], np.float64)
            if self.norm is not None:
                sub, mul = self.norm
                d = (d - sub[j]) * mul[j]
            x[:, first + j] = np.where(np.isnan(d), 0.0, d)
        return x

    def _activate(self, z: np.ndarray, layer: int) -> np.ndarray:
        if self.activation == "Tanh":
            a = 1.0 - 2.0 / (1.0 + np.exp(2.0 * z))
        elif self.activation == "Rectifier":
            a = 0.5 * (z + np.abs(z))
        elif self.activation == "ExpRectifier":
            a = np.where(z >= 0, z, np.exp(np.minimum(z, 0.0)) - 1.0)
        else:  # Maxout: the larger of each unit's two channels
            a = np.maximum(z[:, 0::2], z[:, 1::2])
        ratio = 0.0 if self.ratios is None else float(self.ratios[layer])
        if self.dropout and ratio > 0:
            a = a * (1.0 - ratio)
        return a

    def predict(self, features: dict[str, np.ndarray], n: int, full: bool = True) -> Prediction:
        a = self._input_layer(features, n)
        last = len(self.layers) - 1
        for layer, (weights, bias) in enumerate(self.layers):
            if self.maxout and layer < last:
                z = _sequential(a, weights) + bias[None, :]
            else:
                z = _partial_sums(a, weights) + bias[None, :]
            a = z if layer == last else self._activate(z, layer)
        pred = Prediction(task=self.task, n=n, classes=self.classes)
        if self.task == "regression":
            y = a[:, 0]
            if self.resp is not None:
                y = y / self.resp[1] + self.resp[0]
            y = inverse_link(DEFAULT_LINKS.get(self.distribution, "identity"), y)
            pred.value = y
            pred.outputs["predict"] = pa.array(y)
            return pred
        ties = Ties.of(self.priors, features, self.inputs)
        return classified(pred, softmax(a), full, self.threshold, self.balance, ties)


def _partial_sums(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """x @ weights ([n, in] by [in, out]) summed as genmodel sums it (its gemv_row_optimized):
    eight running sums over whole blocks of eight inputs, added as ((s0+s1)+s2)+s3 and then
    ((s4+s5)+s6)+s7, then the remaining inputs one by one; so results match to the last bit."""
    cols = x.shape[1]
    whole = cols // 8 * 8
    sums = [np.zeros((x.shape[0], weights.shape[1])) for _ in range(8)]
    for col in range(0, whole, 8):
        for j in range(8):
            sums[j] += x[:, col + j, None] * weights[None, col + j, :]
    out = ((sums[0] + sums[1]) + sums[2]) + sums[3]
    out = out + (((sums[4] + sums[5]) + sums[6]) + sums[7])
    for col in range(whole, cols):
        out += x[:, col, None] * weights[None, col, :]
    return out


def _sequential(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """x @ weights summed input by input, in order (genmodel's Maxout layers)."""
    out = np.zeros((x.shape[0], weights.shape[1]))
    for col in range(x.shape[1]):
        out += x[:, col, None] * weights[None, col, :]
    return out
