"""The vectorized numpy evaluation of a TreeEnsemble: the reference every kernel must equal.

All trees of a block of rows advance one level per step (a rows x trees matrix of node
numbers), so Python runs once per level, not per row or node. Leaves are then added tree by
tree in tree order, which fixes the order of the floating-point additions.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from byom.trees.ensemble import (
    EQ,
    GE,
    GT,
    IN,
    LE,
    LT,
    MISSING_ZERO,
    NAN_AS_ZERO,
    NAN_COMPARES,
    NEQ,
    ZERO_THRESHOLD,
    TreeEnsemble,
)

#: Rows per block: bounds the rows x trees matrices.
BLOCK_ROWS = 4096


def leaves(ensemble: TreeEnsemble, features: Sequence[np.ndarray]) -> np.ndarray:
    """The leaf each row reaches in each tree: int32 [n, n_trees]. `features` holds one
    float64 column per feature index (NaN is missing)."""
    n = len(features[0]) if len(features) else 0
    out = np.empty((n, ensemble.n_trees), np.int32)
    matrix = np.column_stack(features) if n else np.zeros((0, ensemble.n_features))
    for start in range(0, n, BLOCK_ROWS):
        out[start : start + BLOCK_ROWS] = _leaves_block(
            ensemble, matrix[start : start + BLOCK_ROWS]
        )
    return out


def _leaves_block(e: TreeEnsemble, x: np.ndarray) -> np.ndarray:
    n = len(x)
    node = np.broadcast_to(e.roots, (n, e.n_trees)).copy()
    rows = np.arange(n)[:, None]
    threshold = e.threshold.astype(np.float32) if e.float32 else e.threshold
    for _ in range(e.max_depth):
        feature = e.feature[node]
        split = feature >= 0
        if not split.any():
            break
        value = x[rows, np.maximum(feature, 0)]
        if e.float32:
            value = value.astype(np.float32)
        kind = e.missing_kind[node]
        nan = np.isnan(value)
        value = np.where(nan & (kind == NAN_AS_ZERO), 0.0, value).astype(value.dtype)
        missing = nan & (kind != NAN_AS_ZERO) & (kind != NAN_COMPARES)
        missing |= (kind == MISSING_ZERO) & (np.abs(value) <= ZERO_THRESHOLD)
        go_yes = _compare(e, node, value, threshold[node])
        nxt = np.where(go_yes, e.yes[node], e.no[node])
        nxt = np.where(missing, e.missing[node], nxt)
        node = np.where(split, nxt, node)
    return node


def _compare(e: TreeEnsemble, node: np.ndarray, value: np.ndarray, t: np.ndarray) -> np.ndarray:
    op = e.op[node]
    with np.errstate(invalid="ignore"):
        result = np.select(
            [op == LE, op == LT, op == GE, op == GT, op == EQ, op == NEQ],
            [value <= t, value < t, value >= t, value > t, value == t, value != t],
            default=False,
        )
    categorical = op == IN
    if categorical.any():
        result = np.where(categorical, _in_set(e, node, value), result)
    return result


def _in_set(e: TreeEnsemble, node: np.ndarray, value: np.ndarray) -> np.ndarray:
    """int(x) (truncated toward zero) in the node's bitset; NaN, negatives and values past
    the bitset are not (nor (-1, 0) with `negative_not_in_set`)."""
    with np.errstate(invalid="ignore"):
        lower = value >= 0 if e.negative_not_in_set else value > -1
        finite = np.isfinite(value) & lower & (value < 2**31)
        code = np.where(finite, np.trunc(np.where(finite, value, 0)), -1).astype(np.int64)
    word = code // 32
    inside = finite & (code >= 0) & (word < e.cat_len[node])
    index = np.where(inside, e.cat_start[node] + word, 0)
    bits = e.cat_words[index] if e.cat_words.size else np.zeros_like(index, np.uint32)
    return inside & ((bits >> np.where(inside, code % 32, 0).astype(np.uint32)) & 1 == 1)


def margins(ensemble: TreeEnsemble, features: Sequence[np.ndarray]) -> np.ndarray:
    """Every output's raw score, float64 [n, n_outputs]: base plus the leaves, added tree by
    tree in tree order (in float32 when the format sums so)."""
    e = ensemble
    reached = leaves(e, features)
    n = len(reached)
    dtype = np.float32 if e.sum_float32 else np.float64
    total = np.zeros((n, e.n_outputs), dtype)
    if e.aggregate == "sum":
        total += e.base.astype(dtype)
    rows = np.arange(n)
    for t in range(e.n_trees):
        leaf = reached[:, t]
        for k in range(int(e.leaf_count[leaf].max(initial=0))):
            has = e.leaf_count[leaf] > k
            at = e.leaf_start[leaf] + k
            outputs = e.leaf_output[np.where(has, at, 0)]
            weights = np.where(has, e.leaf_weight[np.where(has, at, 0)], 0.0).astype(dtype)
            np.add.at(total, (rows, outputs), weights)
    if e.aggregate == "average":
        total = e.base.astype(dtype) + total / np.maximum(e.trees_per_output, 1).astype(dtype)
    return total.astype(np.float64)


def transform(ensemble: TreeEnsemble, raw: np.ndarray) -> np.ndarray:
    """The post transform on the margins: probabilities or values, float64 [n, n_outputs]."""
    post = ensemble.post_transform
    if ensemble.transform_float32 and post in ("logistic", "softmax", "exp"):
        from byom.trees import expf

        xgb = {"logistic": expf.sigmoid, "softmax": expf.softmax, "exp": expf.expf}[post]
        return np.asarray(xgb(raw.astype(np.float32)), dtype=np.float64)
    if post == "logistic":
        return 1.0 / (1.0 + np.exp(-ensemble.post_param * raw))
    if post == "softmax":
        shifted = np.exp(raw - raw.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    if post == "exp":
        return np.exp(raw)
    return raw
