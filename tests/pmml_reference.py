"""Shared by the native PMML tests: a document's native scorer beside its pypmml reference,
feature columns built from row dicts, and the comparison of the two evaluators' predictions."""

from __future__ import annotations

import numpy as np
from helpers import PMML_DOUBLE, Tolerance, assert_close

from byom.errors import InvalidValueError
from byom.pmml.scorer import NativePmmlScorer
from byom.scorers.base import Prediction
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


def predict_both(
    blob: bytes, rows: list[dict[str, object]]
) -> tuple[Prediction, Prediction] | None:
    """The native prediction and pypmml's for the same rows; None where both refuse them as
    invalid (InvalidValueError). Fails where only one evaluator refuses."""
    native, jvm = scorer_pair(blob)
    features = row_features(native, rows)
    outcomes: list[Prediction | None] = []
    for scorer in (native, jvm):
        try:
            outcomes.append(scorer.predict(features, len(rows)))
        except InvalidValueError:
            outcomes.append(None)
    mine, theirs = outcomes
    assert (mine is None) == (theirs is None), "only one evaluator refused an invalid value"
    return None if mine is None or theirs is None else (mine, theirs)


def assert_numbers_agree(
    mine: Prediction, theirs: Prediction, tol: Tolerance = PMML_DOUBLE
) -> bool:
    """A regression's values, or a classifier's probabilities (pypmml's None as NaN), agree
    within `tol`; returns whether the prediction is a regression's."""
    if mine.value is not None:
        assert theirs.value is not None
        assert_close(mine.value, theirs.value, tol)
        return True
    if theirs.probabilities is not None:
        assert mine.probabilities is not None
        assert_close(mine.probabilities, theirs.probabilities, tol)
    return False
