"""Turn a Prediction into the three SQL results: score (DOUBLE), predict (STRUCT), predict_json."""

from __future__ import annotations

import json
from enum import Enum

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from byom.errors import ScoringError
from byom.scorers.base import Prediction


class OutputKind(str, Enum):
    SCORE = "score"
    PREDICT = "predict"
    JSON = "predict_json"


PREDICT_TYPE = pa.struct(
    [
        pa.field("label", pa.string()),
        pa.field("score", pa.float64()),
        pa.field("probabilities", pa.map_(pa.string(), pa.float64())),
    ]
)
ARROW_TYPES: dict[OutputKind, pa.DataType] = {
    OutputKind.SCORE: pa.float64(),
    OutputKind.PREDICT: PREDICT_TYPE,
    OutputKind.JSON: pa.string(),
}


def render(kind: OutputKind, pred: Prediction, model_id: str) -> pa.Array:
    if kind is OutputKind.SCORE:
        return _as_double(score_values(pred, model_id, strict=True))
    if kind is OutputKind.PREDICT:
        return predict_struct(pred, model_id)
    return json_rows(pred)


def _as_double(values: np.ndarray) -> pa.Array:
    values = np.asarray(values, dtype=np.float64)
    if np.isnan(values).any():
        return pa.array(values, pa.float64(), from_pandas=True)  # NaN -> NULL
    return pa.array(values, pa.float64())


def score_values(pred: Prediction, model_id: str, strict: bool = False) -> np.ndarray:
    """The single number `score` returns: the value, P(positive class), or P(predicted class)."""
    if pred.value is not None:
        return pred.value
    proba = pred.probabilities
    if proba is not None and proba.shape[1] == 2:
        return proba[:, 1]
    if proba is not None and proba.shape[1] > 2:
        column = np.where(np.isnan(proba), -np.inf, proba).argmax(axis=1)
        if pred.labels is not None:  # the predicted label's class, where the model names it
            classes = pa.array(pred.classes, pa.string())
            named = pc.index_in(pred.labels, value_set=classes).fill_null(-1).to_numpy()
            column = np.where(named >= 0, named, column)
        return proba[np.arange(pred.n), column]
    if pred.labels is not None:
        try:
            return pc.cast(pred.labels, pa.float64()).to_numpy(zero_copy_only=False)
        except pa.ArrowInvalid:
            pass
    if not strict:
        return np.full(pred.n, np.nan)
    raise ScoringError(
        f"model {model_id!r} predicts labels without probabilities, so it has no numeric score; "
        "call predict(...) for its label instead"
    )


def predict_struct(pred: Prediction, model_id: str) -> pa.StructArray:
    n = pred.n
    labels = pred.labels if pred.labels is not None else pa.nulls(n, pa.string())
    scores = _as_double(score_values(pred, model_id))
    if pred.probabilities is not None and pred.classes:
        k = len(pred.classes)
        offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
        keys = pa.array(np.tile(np.array(pred.classes, dtype=object), n), pa.string())
        items = _as_double(pred.probabilities.reshape(-1))
        probs = pa.MapArray.from_arrays(offsets, keys, items)
    else:
        probs = pa.MapArray.from_arrays(
            pa.array(np.zeros(n + 1, np.int32)),
            pa.array([], pa.string()),
            pa.array([], pa.float64()),
        )
    return pa.StructArray.from_arrays(
        [labels.cast(pa.string()), scores, probs.cast(PREDICT_TYPE.field("probabilities").type)],
        fields=list(PREDICT_TYPE),
    )


def json_rows(pred: Prediction) -> pa.Array:
    """One JSON object per row, built column-wise (no per-row Python)."""
    n = pred.n
    fields = dict(pred.outputs)
    pieces: list[pa.Array] = []
    first = True
    for name, arr in fields.items():
        pieces.append(_const(("{" if first else ",") + json.dumps(name) + ":", n))
        pieces.append(_json_fragment(arr))
        first = False
    if pred.proba_output and pred.probabilities is not None:
        pieces.append(_const(("{" if first else ",") + json.dumps(pred.proba_output) + ":{", n))
        for j, cls in enumerate(pred.classes):
            pieces.append(_const(("," if j else "") + json.dumps(cls) + ":", n))
            pieces.append(_json_fragment(pa.array(pred.probabilities[:, j])))
        pieces.append(_const("}", n))
        first = False
    if first:
        return _const("{}", n)
    pieces.append(_const("}", n))
    return pc.binary_join_element_wise(*pieces, "")


def _const(text: str, n: int) -> pa.Array:
    return pa.array(np.full(n, text, dtype=object), pa.string())


def _json_fragment(arr: pa.Array) -> pa.Array:
    n = len(arr)
    t = arr.type
    if pa.types.is_null(t):
        return _const("null", n)
    if pa.types.is_floating(t) or pa.types.is_integer(t) or pa.types.is_decimal(t):
        as_float = pc.cast(arr, pa.float64())
        finite = pc.is_finite(as_float)
        text = (
            pc.cast(arr, pa.string())
            if not pa.types.is_floating(t)
            else pc.cast(as_float, pa.string())
        )
        return pc.fill_null(pc.if_else(finite, text, pa.scalar(None, pa.string())), "null")
    if pa.types.is_boolean(t):
        return pc.fill_null(pc.if_else(arr, "true", "false"), "null")
    if pa.types.is_list(t) or pa.types.is_struct(t) or pa.types.is_map(t):
        return pa.array([json.dumps(v) for v in arr.to_pylist()], pa.string())
    # Strings: escape each distinct value once (labels repeat), then spread by index.
    encoded = pc.dictionary_encode(pc.cast(arr, pa.string()))
    escaped = pa.array([json.dumps(v) for v in encoded.dictionary.to_pylist()], pa.string())
    return pc.fill_null(pc.take(escaped, encoded.indices), "null")
