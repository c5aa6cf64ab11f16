"""Shared by the native PMML tests: a document's native scorer beside its pypmml reference,
and feature columns built from row dicts."""

from __future__ import annotations

import numpy as np

from byom.pmml.scorer import NativePmmlScorer
from byom.scorers.pypmml import PypmmlScorer

_pairs: dict[bytes, tuple[NativePmmlScorer, PypmmlScorer]] = {}


def scorer_pair(blob: bytes) -> tuple[NativePmmlScorer, PypmmlScorer]:
    """The native scorer and pypmml's for one document, loaded once per test run."""
    if blob not in _pairs:
        _pairs[blob] = (NativePmmlScorer(blob), PypmmlScorer(blob))
    return _pairs[blob]


def row_features(scorer: NativePmmlScorer, rows: list[dict[str, object]]) -> dict[str, np.ndarray]:
    """Columns for the scorer's inputs from row dicts; an absent key or None is NULL."""
    features = {}
    for i in scorer.inputs:
        column = [r.get(i.name) for r in rows]
        if i.type == "string":
            features[i.name] = np.array(column, dtype=object)
        else:
            features[i.name] = np.array([np.nan if v is None else v for v in column], np.float64)
    return features
