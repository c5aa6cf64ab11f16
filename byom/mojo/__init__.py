"""H2O MOJO models, read without a JVM: the archive (`archive`), the tree models (`trees`: GBM,
DRF and Isolation Forest, whose trees run on byom's compiled tree kernel), H2O's XGBoost
(`xgboost`, on the same kernel), GLM (`glm`), Deep Learning, K-Means and Stacked Ensembles."""

from __future__ import annotations

from byom.mojo.archive import Mojo, read, sniff
from byom.scorers.base import Scorer


def load_scorer(blob: bytes, model_id: str = "") -> Scorer:
    """The scorer of a MOJO's bytes; anything malformed or unsupported is refused by name."""
    who = f"MOJO {model_id!r}" if model_id else "the MOJO"
    return _load(read(blob, who))


def _load(mojo: Mojo) -> Scorer:
    """The scorer for a parsed MOJO, by its algorithm."""
    algorithm = mojo.info.get("algorithm")
    if algorithm == "Generalized Linear Modeling":
        from byom.mojo.glm import GlmMojoScorer

        return GlmMojoScorer(mojo)
    if algorithm == "Deep Learning":
        from byom.mojo.deeplearning import DeepLearningMojoScorer

        return DeepLearningMojoScorer(mojo)
    if algorithm == "K-means":
        from byom.mojo.kmeans import KMeansMojoScorer

        return KMeansMojoScorer(mojo)
    if algorithm == "XGBoost":
        from byom.mojo.xgboost import load_scorer

        return load_scorer(mojo)
    if algorithm in ("StackedEnsemble", "Stacked Ensemble"):
        from byom.mojo.ensemble import EnsembleMojoScorer

        return EnsembleMojoScorer(mojo, _load)
    from byom.mojo import trees

    return trees.load_scorer(mojo)


__all__ = ["load_scorer", "sniff"]
