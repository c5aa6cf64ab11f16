"""Scorers: one class per model format, behind one interface, loaded once per content hash."""

from __future__ import annotations

from byom.cache import ContentCache
from byom.formats import detect_format, sha256_hex
from byom.scorers.base import ModelInput, Prediction, Scorer

__all__ = [
    "ModelInput",
    "Prediction",
    "Scorer",
    "load_hashed_scorer",
    "load_scorer",
    "scorer_cache",
]

#: Every loaded scorer in this process, by sha256 of the model bytes.
scorer_cache: ContentCache[Scorer] = ContentCache()


def load_scorer(blob: bytes, model_id: str = "") -> Scorer:
    """Load (or fetch from the cache) the scorer for these model bytes.

    The key is always hashed from the bytes here, never taken from a caller or a table column:
    a forged hash must not be able to select another model's scorer."""
    return load_hashed_scorer(blob, sha256_hex(blob), model_id)


def load_hashed_scorer(blob: bytes, sha256: str, model_id: str = "") -> Scorer:
    """`load_scorer` for bytes whose sha256 the caller has just computed from them itself
    (never a stored hash), so large models are hashed once."""

    def load() -> tuple[Scorer, int]:
        scorer = detect_format(blob, model_id).load(blob, model_id)
        return scorer, scorer.memory_bytes(len(blob))

    return scorer_cache.get_or_load(sha256, load)
