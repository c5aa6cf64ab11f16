"""H2O's Stacked Ensemble MOJOs: each base model, a MOJO in a folder of the archive, scores the
row (its own columns found by name); their predictions (P(class 1) for binomial, every class's
probability for multinomial, the value for regression), optionally through genmodel's logit
transform, feed the metalearner by position; its prediction is the ensemble's."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from byom.mojo.archive import Mojo, parse
from byom.scorers.base import Prediction, Scorer

STACKED_ENSEMBLE = "StackedEnsemble"


class EnsembleMojoScorer(Scorer):
    """A Stacked Ensemble MOJO scored by byom's own MOJO scorers, base models and metalearner."""

    format = "mojo"

    def __init__(self, mojo: Mojo, load: Callable[[Mojo], Scorer]) -> None:
        count = mojo.integer("submodel_count")
        if not 0 < count <= 1000:
            raise mojo.error(f"{count} sub-models")
        subs: dict[str, Scorer] = {}
        for i in range(count):
            key, folder = mojo.text(f"submodel_key_{i}"), mojo.text(f"submodel_dir_{i}")
            prefix = folder if folder.endswith("/") else folder + "/"
            entries = {
                name[len(prefix) :]: data
                for name, data in mojo.entries.items()
                if name.startswith(prefix)
            }
            sub = parse(entries, f"{mojo.who} (sub-model {key})")
            if sub.info.get("algorithm") in (STACKED_ENSEMBLE, "Stacked Ensemble"):
                raise mojo.error(f"sub-model {key} is itself an ensemble")
            subs[key] = load(sub)
        meta_key = mojo.text("metalearner")
        if meta_key not in subs:
            raise mojo.error(f"the metalearner {meta_key!r} is not among its sub-models")
        self.metalearner = subs[meta_key]
        self.transform = str(mojo.info.get("metalearner_transform") or "NONE")
        if self.transform not in ("NONE", "Logit"):
            raise mojo.error(f"metalearner transform {self.transform!r} is not supported")
        slots = mojo.integer("base_models_num")
        if not 0 < slots <= 1000:
            raise mojo.error(f"{slots} base models")
        self.bases: list[Scorer | None] = []
        for i in range(slots):
            base = mojo.info.get(f"base_model{i}")
            if base is not None and str(base) not in subs:
                raise mojo.error(f"base model {base!r} is not among its sub-models")
            self.bases.append(None if base is None else subs[str(base)])
        n = mojo.integer("n_features")
        names = mojo.columns[:n]
        known = {i.name: i for base in self.bases if base for i in base.inputs}
        self.inputs = tuple(known[name] for name in names if name in known)
        self.task, self.classes = self.metalearner.task, self.metalearner.classes
        self.target = mojo.columns[-1]
        self.n_classes = mojo.integer("n_classes")
        width = self.n_classes if self.n_classes > 2 else 1
        if len(self.metalearner.inputs) != slots * width:
            raise mojo.error(
                f"the metalearner takes {len(self.metalearner.inputs)} inputs, not "
                f"{slots} base models x {width}"
            )

    def output_names(self) -> list[str]:
        return self.metalearner.output_names()

    def predict(self, features: dict[str, np.ndarray], n: int, full: bool = True) -> Prediction:
        width = self.n_classes if self.n_classes > 2 else 1
        level_one = np.zeros((n, len(self.bases) * width), np.float64)
        for i, base in enumerate(self.bases):
            if base is None:
                continue  # a base model the metalearner does not use: its slot stays 0
            own = {spec.name: features[spec.name] for spec in base.inputs}
            pred = base.predict(own, n, False)
            if self.n_classes > 2:
                assert pred.probabilities is not None
                level_one[:, i * width : (i + 1) * width] = pred.probabilities
            elif self.n_classes == 2:
                assert pred.probabilities is not None
                level_one[:, i] = pred.probabilities[:, 1]
            else:
                assert pred.value is not None
                level_one[:, i] = pred.value
        if self.transform == "Logit":
            p = np.clip(level_one, 1e-9, 1 - 1e-9)
            odds = p / (1 - p)
            with np.errstate(divide="ignore"):
                level_one = np.where(odds == 0, -19.0, np.maximum(-19.0, np.log(odds)))
        meta = {spec.name: level_one[:, j] for j, spec in enumerate(self.metalearner.inputs)}
        return self.metalearner.predict(meta, n, full)
