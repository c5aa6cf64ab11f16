"""The tree-ensemble representation: its semantics on hand-made trees (values computed by
hand), and hostile trees refused by name in bounded time."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import EXACT, assert_close

from byom.trees.ensemble import (
    EQ,
    IN,
    LE,
    LT,
    MAX_DEPTH,
    MISSING_ZERO,
    NAN_AS_ZERO,
    NAN_COMPARES,
    NEQ,
    Node,
    TreeEnsemble,
    TreeEnsembleError,
)
from byom.trees.evaluate import margins, transform


def _stump(feature, threshold, op, yes_value, no_value, missing_yes=False, kind=0, cats=()):
    return [
        Node(feature=feature, threshold=threshold, op=op, yes=1, no=2,
             missing=1 if missing_yes else 2, missing_kind=kind, categories=cats),
        Node(leaf=[(0, yes_value)]),
        Node(leaf=[(0, no_value)]),
    ]  # fmt: skip


def _one(tree, x, **options):
    e = TreeEnsemble.build([tree], n_features=1, n_outputs=1, **options)
    return margins(e, [np.asarray(x, np.float64)])[:, 0]


def test_comparisons_and_missing_rules():
    x = [0.5, 0.4, np.nan, 0.0, -0.0, 1e-36]
    assert_close(_one(_stump(0, 0.5, LE, 1, 2), x), [1, 1, 2, 1, 1, 1], EXACT)
    assert_close(_one(_stump(0, 0.5, LT, 1, 2, missing_yes=True), x), [2, 1, 1, 1, 1, 1], EXACT)
    zero_missing = _stump(0, -1.0, LE, 1, 2, missing_yes=True, kind=MISSING_ZERO)
    assert_close(_one(zero_missing, x), [2, 2, 1, 1, 1, 1], EXACT)
    nan_as_zero = _stump(0, 0.0, LE, 1, 2, kind=NAN_AS_ZERO)  # NaN is compared as 0.0
    assert_close(_one(nan_as_zero, x), [2, 2, 1, 1, 1, 2], EXACT)
    compares = _stump(0, 0.5, NEQ, 1, 2, kind=NAN_COMPARES)  # NaN != t is true
    assert_close(_one(compares, x), [2, 1, 1, 1, 1, 1], EXACT)
    assert_close(_one(_stump(0, 0.5, EQ, 1, 2, kind=NAN_COMPARES), x), [1, 2, 2, 2, 2, 2], EXACT)


def test_categorical_sets_truncate_like_c():
    tree = _stump(0, 0.0, IN, 1, 2, cats=(0, 2, 33))
    x = [0, 2.9, 33, 1, -0.5, -1, 64, np.nan, 1e12]
    assert_close(_one(tree, x), [1, 1, 1, 2, 1, 2, 2, 2, 2], EXACT)


def test_float32_comparisons_and_sums():
    threshold = 0.1  # as float32 it is 0.100000001...
    x = [0.1, np.nextafter(0.1, 1.0)]
    assert_close(_one(_stump(0, threshold, LT, 1, 2), x), [2, 2], EXACT)
    assert_close(_one(_stump(0, threshold, LT, 1, 2), x, float32=True), [2, 2], EXACT)
    assert_close(_one(_stump(0, 0.1000000001, LT, 1, 2), [0.1], float32=True), [2], EXACT)
    trees = [[Node(leaf=[(0, 0.1)])], [Node(leaf=[(0, 0.2)])]]
    e = TreeEnsemble.build(trees, 1, 1, [0.3], sum_float32=True)
    want = np.float32(np.float32(np.float32(0.3) + np.float32(0.1)) + np.float32(0.2))
    assert margins(e, [np.zeros(1)])[0, 0] == float(want)


def test_multi_output_leaves_average_and_transforms():
    trees = [[Node(leaf=[(0, 1.0), (1, 3.0)])], [Node(leaf=[(1, 5.0)])]]
    e = TreeEnsemble.build(trees, 1, 2, [0.5, -1.0], aggregate="average")
    assert_close(margins(e, [np.zeros(2)]), [[0.5 + 1.0, -1.0 + 4.0]] * 2, EXACT)
    soft = TreeEnsemble.build(trees, 1, 2, post_transform="softmax")
    p = transform(soft, np.array([[1.0, 2.0]]))
    assert_close(p, [[1 / (1 + np.e), np.e / (1 + np.e)]], EXACT)


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ([Node(feature=0, yes=0, no=1, missing=1), Node(leaf=[(0, 1.0)])], "reached twice"),
        ([Node(feature=3, yes=1, no=1, missing=1), Node(leaf=[(0, 1.0)])], "feature 3"),
        ([Node(feature=0, yes=1, no=9, missing=1), Node(leaf=[(0, 1.0)])], "no child 9"),
        (_stump(0, float("nan"), LE, 1, 2), "threshold nan"),
        ([Node(leaf=[(4, 1.0)])], "for output 4"),
        ([Node(leaf=[(0, float("inf"))])], "leaf value inf"),
        (_stump(0, 0, IN, 1, 2, cats=(1 << 30,)), "out of range"),
    ],
)
def test_malformed_trees_are_named(tree, message):
    with pytest.raises(TreeEnsembleError, match=rf"tree 0, node \d+: .*{message}"):
        TreeEnsemble.build([tree], n_features=1, n_outputs=1)


def test_a_very_deep_tree_is_refused_without_recursion():
    depth = MAX_DEPTH + 10  # splits 0..depth-1 in a chain; each "no" its own leaf after them
    chain = [
        Node(feature=0, threshold=i, yes=i + 1, no=depth + 1 + i, missing=depth + 1 + i)
        for i in range(depth)
    ]
    chain += [Node(leaf=[(0, 1.0)]) for _ in range(depth + 1)]
    with pytest.raises(TreeEnsembleError, match=f"deeper than {MAX_DEPTH:,} levels"):
        TreeEnsemble.build([chain], n_features=1, n_outputs=1)
