"""Flatten a format's trees into a TreeEnsemble, refusing anything malformed or unbounded.

Sizes are checked before arrays are built; links, cycles and depth are checked for all trees
at once, level by level (no recursion, no per-tree Python loop over levels), so a hostile
model costs time and memory in proportion to its size, within the bounds in `ensemble`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from byom.trees.ensemble import (
    IN,
    MAX_DEPTH,
    MAX_FEATURES,
    MAX_NODES,
    MAX_OUTPUTS,
    NAN_COMPARES,
    OPS,
    POST_TRANSFORMS,
    Node,
    TreeEnsembleError,
)

if TYPE_CHECKING:
    from byom.trees.ensemble import TreeEnsemble

#: The largest category a split may name (the bitset is allocated up to it).
MAX_CATEGORY = 1 << 24


def check_and_flatten(
    cls: type[TreeEnsemble],
    trees: list[list[Node]],
    n_features: int,
    n_outputs: int,
    base: np.ndarray,
    **options: Any,
) -> TreeEnsemble:
    if not 0 < n_features <= MAX_FEATURES:
        raise TreeEnsembleError(f"{n_features} features: byom takes 1 to {MAX_FEATURES:,}")
    if not 0 < n_outputs <= MAX_OUTPUTS or base.shape != (n_outputs,):
        raise TreeEnsembleError(f"{n_outputs} outputs with {base.size} base values")
    if not trees:
        raise TreeEnsembleError("the model has no trees")
    total = sum(len(t) for t in trees)
    if total > MAX_NODES:
        raise TreeEnsembleError(f"{total:,} nodes, over byom's bound of {MAX_NODES:,}")
    if options["post_transform"] not in POST_TRANSFORMS:
        raise TreeEnsembleError(f"post transform {options['post_transform']!r} is unknown")
    if options["aggregate"] not in ("sum", "average"):
        raise TreeEnsembleError(f"aggregate {options['aggregate']!r} is unknown")
    if not np.all(np.isfinite(base)):
        raise TreeEnsembleError("a base value is not finite")
    arrays = _flatten(trees, n_features, n_outputs)
    roots = np.cumsum([0] + [len(t) for t in trees[:-1]]).astype(np.int32)
    depth = _check_links(arrays, roots, trees)
    per_output = np.zeros(n_outputs)  # trees adding to each output, for "average"
    for tree in trees:
        for out in {out for node in tree for out, _ in node.leaf}:
            per_output[out] += 1
    fields: dict[str, Any] = {**arrays, **options}
    return cls(
        n_features=n_features,
        n_outputs=n_outputs,
        roots=roots,
        base=base.astype(np.float64),
        trees_per_output=per_output,
        max_depth=depth,
        **fields,
    )


def _flatten(trees: list[list[Node]], n_features: int, n_outputs: int) -> dict[str, np.ndarray]:
    feature: list[int] = []
    threshold: list[float] = []
    op: list[int] = []
    yes: list[int] = []
    no: list[int] = []
    missing: list[int] = []
    kind: list[int] = []
    cat_start: list[int] = []
    cat_len: list[int] = []
    words: list[int] = []
    leaf_start: list[int] = []
    leaf_count: list[int] = []
    leaf_output: list[int] = []
    leaf_weight: list[float] = []
    offset = 0
    for t, tree in enumerate(trees):
        size = len(tree)
        if size == 0:
            raise TreeEnsembleError(f"tree {t} has no nodes")
        for i, node in enumerate(tree):
            where = f"tree {t}, node {i}"
            is_split = node.feature >= 0
            feature.append(node.feature)
            threshold.append(node.threshold)
            op.append(node.op)
            kind.append(node.missing_kind)
            cat_start.append(len(words))
            leaf_start.append(len(leaf_output))
            if is_split:
                _check_split(node, where, size, n_features)
                yes.append(node.yes + offset)
                no.append(node.no + offset)
                missing.append(node.missing + offset)
                bits = _bitset(node.categories, where) if node.op == IN else []
                words.extend(bits)
                cat_len.append(len(bits))
                leaf_count.append(0)
            else:
                if not node.leaf:
                    raise TreeEnsembleError(f"{where}: a leaf with no value")
                for out, weight in node.leaf:
                    if not 0 <= out < n_outputs or not math.isfinite(weight):
                        raise TreeEnsembleError(
                            f"{where}: leaf value {weight!r} for output {out} (of {n_outputs})"
                        )
                    leaf_output.append(out)
                    leaf_weight.append(weight)
                yes.append(-1)
                no.append(-1)
                missing.append(-1)
                cat_len.append(0)
                leaf_count.append(len(node.leaf))
        offset += size
    return {
        "feature": np.array(feature, np.int32),
        "threshold": np.array(threshold, np.float64),
        "op": np.array(op, np.uint8),
        "yes": np.array(yes, np.int32),
        "no": np.array(no, np.int32),
        "missing": np.array(missing, np.int32),
        "missing_kind": np.array(kind, np.uint8),
        "cat_start": np.array(cat_start, np.int32),
        "cat_len": np.array(cat_len, np.int32),
        "cat_words": np.array(words, np.uint32),
        "leaf_start": np.array(leaf_start, np.int32),
        "leaf_count": np.array(leaf_count, np.int32),
        "leaf_output": np.array(leaf_output, np.int32),
        "leaf_weight": np.array(leaf_weight, np.float64),
    }


def _check_split(node: Node, where: str, size: int, n_features: int) -> None:
    if node.feature >= n_features:
        raise TreeEnsembleError(
            f"{where}: splits on feature {node.feature}, but the model has {n_features}"
        )
    if not 0 <= node.op < len(OPS):
        raise TreeEnsembleError(f"{where}: unknown comparison {node.op}")
    if not 0 <= node.missing_kind <= NAN_COMPARES:
        raise TreeEnsembleError(f"{where}: unknown missing-value rule {node.missing_kind}")
    if node.op != IN and math.isnan(node.threshold):  # LightGBM writes ±inf thresholds
        raise TreeEnsembleError(f"{where}: threshold {node.threshold!r} is not a number")
    for name, child in (("yes", node.yes), ("no", node.no)):
        if not 0 <= child < size:
            raise TreeEnsembleError(f"{where}: {name} child {child} is not a node of the tree")
    if node.missing not in (node.yes, node.no):
        raise TreeEnsembleError(f"{where}: missing values go to neither child")


def _bitset(categories: tuple[int, ...], where: str) -> list[int]:
    if not categories:
        return [0]
    top = max(categories)
    if min(categories) < 0 or top >= MAX_CATEGORY:
        raise TreeEnsembleError(f"{where}: category {top} is out of range")
    words = [0] * (top // 32 + 1)
    for c in categories:
        words[c // 32] |= 1 << (c % 32)
    return words


def _check_links(arrays: dict[str, np.ndarray], roots: np.ndarray, trees: list) -> int:
    """Walk all trees level by level: every node reached at most once (no cycles, no shared
    nodes), depth within MAX_DEPTH. Returns the depth."""
    yes, no, feature = arrays["yes"], arrays["no"], arrays["feature"]
    visits = np.zeros(len(feature), np.int32)
    frontier = roots.astype(np.int64)
    depth = 0
    while frontier.size:
        np.add.at(visits, frontier, 1)
        if (visits[frontier] > 1).any():
            node = int(frontier[visits[frontier] > 1][0])
            raise TreeEnsembleError(
                f"{_where(node, roots)}: reached twice (a cycle or shared node)"
            )
        splits = frontier[feature[frontier] >= 0]
        if splits.size and depth >= MAX_DEPTH:
            raise TreeEnsembleError(
                f"{_where(int(splits[0]), roots)}: deeper than {MAX_DEPTH:,} levels"
            )
        frontier = np.concatenate([yes[splits], no[splits]]).astype(np.int64)
        depth += 1 if splits.size else 0
    return depth


def _where(node: int, roots: np.ndarray) -> str:
    tree = int(np.searchsorted(roots, node, side="right")) - 1
    return f"tree {tree}, node {node - int(roots[tree])}"
