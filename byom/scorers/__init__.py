"""Scorers: one class per model format, behind one interface, loaded once per content hash."""

from __future__ import annotations

from byom.cache import ContentCache
from byom.formats import ModelFormat, detect_format, sha256_hex
from byom.scorers.base import ModelInput, Prediction, Scorer

__all__ = ["ModelInput", "Prediction", "Scorer", "load_scorer", "scorer_cache"]

#: Every loaded scorer in this process, by sha256 of the model bytes.
scorer_cache: ContentCache[Scorer] = ContentCache()


def _load(blob: bytes, model_id: str) -> Scorer:
    fmt = detect_format(blob, model_id)
    if fmt is ModelFormat.ONNX:
        from byom.scorers.onnx import OnnxScorer

        return OnnxScorer(blob, model_id)
    from byom.scorers.pmml import PmmlScorer

    return PmmlScorer(blob, model_id)


def load_scorer(blob: bytes, model_id: str = "", sha256: str | None = None) -> Scorer:
    """Load (or fetch from the cache) the scorer for these model bytes."""
    key = sha256 or sha256_hex(blob)
    return scorer_cache.get_or_load(key, lambda: (_load(blob, model_id), len(blob)))
