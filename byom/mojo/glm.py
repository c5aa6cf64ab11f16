"""H2O's GLM MOJOs, scored by numpy as h2o-genmodel's `GlmMojoModel` and
`GlmMultinomialMojoModel` score them.

The MOJO lists the categorical columns first, then the numeric ones; `beta` holds one
coefficient per categorical level (from `cat_offsets`; level 0 has none when
`use_all_factor_levels` is false), then one per numeric column, then the intercept (one such
block per class for multinomial). Missing values take the column's mode or mean when the model
was trained with mean imputation (genmodel's `imputeMissingWithMeans`); an unseen level is
missing, as PredictCsv reads it. Then the inverse link of the family, or a softmax.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from byom.errors import InvalidValueError
from byom.inputs import level_codes
from byom.mojo.archive import Mojo
from byom.mojo.genmodel import class_sum, classified
from byom.scorers.base import Prediction, Scorer

GLM = "Generalized Linear Modeling"
LINKS = ("identity", "logit", "log", "inverse", "tweedie", "multinomial", "ologit")
BINOMIAL = ("binomial", "quasibinomial", "fractionalbinomial")


class GlmMojoScorer(Scorer):
    """A GLM MOJO: its coefficients applied to the row in float64, as genmodel adds them."""

    format = "mojo"

    def __init__(self, mojo: Mojo) -> None:
        if mojo.info.get("interaction_pairs") not in (None, "null") or any(
            k.startswith("interaction") for k in mojo.info
        ):
            raise mojo.error("GLM interactions are not supported yet")
        self.cats, self.nums = mojo.integer("cats"), mojo.integer("nums")
        n_features = mojo.integer("n_features")
        if self.cats < 0 or self.nums < 0 or self.cats + self.nums != n_features:
            raise mojo.error(f"{self.cats} categorical and {self.nums} numeric columns")
        if n_features > len(mojo.columns):
            raise mojo.error(f"{n_features} features of {len(mojo.columns)} columns")
        offsets = [int(v) for v in mojo.numbers("cat_offsets")]
        if len(offsets) != self.cats + 1 or offsets[0] != 0 or offsets != sorted(offsets):
            raise mojo.error(f"cat_offsets {offsets} do not fit {self.cats} categorical columns")
        self.offsets = np.array(offsets, np.int64)
        self.all_levels = mojo.info.get("use_all_factor_levels") is True
        self.impute = mojo.info.get("mean_imputation") is True
        self.modes = [int(v) for v in mojo.numbers("cat_modes")] if self.cats else []
        self.means = mojo.numbers("num_means") if self.nums else np.zeros(0)
        self.glm_family = mojo.text("family")
        self.link = mojo.text("link")
        if self.link not in LINKS:
            raise mojo.error(f"GLM link {self.link!r} is not supported")
        self.link_power = mojo.number("tweedie_link_power", 0.0)
        self.n_classes = mojo.integer("n_classes")
        beta = mojo.numbers("beta")
        blocks = self.n_classes if self.glm_family in ("multinomial", "ordinal") else 1
        width = offsets[-1] + self.nums + 1  # levels, numerics, intercept
        if beta.size != blocks * width:
            raise mojo.error(f"beta holds {beta.size} coefficients, not {blocks} x {width}")
        self.beta = beta.reshape(blocks, width)
        self.threshold = mojo.number("default_threshold", 0.5)
        names = mojo.columns[:n_features]
        self.levels = [mojo.domains[i] for i in range(self.cats)]
        if any(d is None for d in self.levels) or any(
            mojo.domains[i] is not None for i in range(self.cats, n_features)
        ):
            raise mojo.error("the categorical columns do not come first, as GLM MOJOs list them")
        for i, domain in enumerate(self.levels):
            assert domain is not None
            if offsets[i + 1] - offsets[i] != len(domain) - (0 if self.all_levels else 1):
                raise mojo.error(
                    f"column {names[i]!r}: {len(domain)} levels, but its offsets "
                    f"give {offsets[i + 1] - offsets[i]} coefficients"
                )
            if self.impute and not 0 <= self.modes[i] < len(domain):
                raise mojo.error(f"column {names[i]!r}: mode {self.modes[i]} is not a level")
        self._sets = [pa.array(d, pa.string()) for d in self.levels]
        self.inputs = mojo.inputs(n_features)
        self.task, self.classes = mojo.outcome()
        self.target = mojo.columns[-1]
        self.who = mojo.who

    def output_names(self) -> list[str]:
        return ["predict", "probabilities"] if self.task == "classification" else ["predict"]

    def _eta(self, features: dict[str, np.ndarray], n: int) -> np.ndarray:
        """float64 [n, blocks]: each class's linear predictor, terms added as genmodel adds them
        (categoricals in column order, then numerics, then the intercept)."""
        eta = np.zeros((n, self.beta.shape[0]), np.float64)
        for i in range(self.cats):
            spec = self.inputs[i]
            codes = level_codes(features[spec.name], self._sets[i])
            missing = np.isnan(codes)
            if missing.any():
                if not self.impute:
                    raise InvalidValueError(
                        f"{self.who}: column {spec.name!r} is NULL or holds a level the model "
                        "does not know, and the model was trained without mean imputation"
                    )
                codes = np.where(missing, self.modes[i], codes)
            level = np.asarray(codes, np.int64) - (0 if self.all_levels else 1)
            counted = level >= 0  # without all levels, level 0 adds nothing
            column = self.offsets[i] + np.where(counted, level, 0)
            eta += np.where(counted[:, None], self.beta[:, column].T, 0.0)
        first = self.offsets[-1]
        for j in range(self.nums):
            spec = self.inputs[self.cats + j]
            x = np.asarray(features[spec.name], np.float64)
            if np.isnan(x).any():
                if not self.impute:  # genmodel gives NaN: byom says why instead
                    raise InvalidValueError(
                        f"{self.who}: column {spec.name!r} is NULL and the model was trained "
                        "without mean imputation; fill it (COALESCE) or filter the row"
                    )
                x = np.where(np.isnan(x), self.means[j], x)
            eta += self.beta[:, first + j][None, :] * x[:, None]
        return eta + self.beta[:, -1][None, :]

    def predict(self, features: dict[str, np.ndarray], n: int, full: bool = True) -> Prediction:
        eta = self._eta(features, n)
        pred = Prediction(task=self.task, n=n, classes=self.classes)
        if self.glm_family == "ordinal":  # cumulative logits: P(class <= c), differenced
            cdf = 1.0 / (1.0 + np.exp(-eta[:, : self.n_classes - 1]))
            proba = np.empty((n, self.n_classes))
            previous = np.zeros(n)
            for c in range(self.n_classes - 1):
                proba[:, c] = cdf[:, c] - previous
                previous = cdf[:, c]
            proba[:, -1] = 1.0 - previous
            return classified(pred, proba, full, None)  # the first most probable class
        if self.glm_family == "multinomial":
            top = np.maximum(eta.max(axis=1, keepdims=True), 0.0)  # genmodel starts at 0
            shifted = np.exp(eta - top)
            proba = shifted * (1.0 / class_sum(shifted))[:, None]
            return classified(pred, proba, full, None)
        mu = self._inverse(eta[:, 0])
        if self.glm_family not in BINOMIAL:
            pred.value = mu
            pred.outputs["predict"] = pa.array(mu)
            return pred
        return classified(pred, np.column_stack([1.0 - mu, mu]), full, self.threshold)

    def _inverse(self, eta: np.ndarray) -> np.ndarray:
        if self.link == "identity":
            return eta
        if self.link == "logit":
            return 1.0 / (np.exp(-eta) + 1.0)
        if self.link == "log":
            return np.exp(eta)
        if self.link == "inverse":
            return 1.0 / np.where(eta < 0, np.minimum(-1e-5, eta), np.maximum(1e-5, eta))
        if self.link == "tweedie":
            if self.link_power == 0:
                return np.maximum(2e-16, np.exp(eta))
            return np.power(eta, 1.0 / self.link_power)
        raise InvalidValueError(f"{self.who}: link {self.link!r} has no inverse here")
