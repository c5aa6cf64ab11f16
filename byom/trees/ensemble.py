"""The one tree-ensemble representation every tree format lowers to.

Nodes of all trees live in flat arrays (struct of arrays), indexed by one node number. Each
format records its own comparison semantics here rather than in its evaluator, so a kernel
written once is exact for all of them:

- `op[i]`: how node i tests its feature value x against `threshold[i]`:
  `LE` (x <= t goes to `yes`; LightGBM, ONNX BRANCH_LEQ), `LT` (x < t; XGBoost, ONNX
  BRANCH_LT), `GE`, `GT`, `EQ`, `NEQ` (ONNX's other modes) and `IN` (a categorical split:
  int(x) is in the node's category set goes to `yes`).
- `missing[i]`: which child a missing value goes to (a format's default direction).
- `missing_kind[i]`: what counts as missing: `MISSING_NAN` (NaN only), `MISSING_ZERO`
  (LightGBM's Zero: NaN or |x| <= 1e-35), `NAN_AS_ZERO` (LightGBM's None: NaN is replaced by
  0.0, then compared), `NAN_COMPARES` (ONNX: NaN goes through the comparison, false for every
  op but NEQ).
- `IN` splits: the set is `cat_words[cat_start[i] : cat_start[i] + cat_len[i]]`, a bitset of
  32-bit words; the value tested is x truncated toward zero (C's `(int)x`, as LightGBM and
  XGBoost do); a negative value or one past the bitset is not in the set (with
  `negative_not_in_set`, nor is a value in (-1, 0) that truncates to 0). NaN follows
  `missing_kind` like any other split.
- `missing[i]` is always `yes[i]` or `no[i]`: formats route missing values to one side.
- Leaves (`feature[i] == -1`) add (output, weight) pairs: `leaf_start[i]`, `leaf_count[i]` into
  `leaf_output` and `leaf_weight`. LightGBM and XGBoost leaves add one value to their tree's
  output; ONNX classifier leaves may add to several classes.
- `float32`: features and thresholds are compared as float32 (XGBoost, ONNX); otherwise as
  float64 (LightGBM, PMML). `sum_float32`: leaf values are summed in float32, tree by tree in
  tree order (XGBoost), else in float64 in tree order (LightGBM).
- The margin is accumulated as `acc = base; for each tree in order: acc[output] += weight`
  (in float32 when `sum_float32`); with `aggregate` "average" (a random forest) it is
  `base + sum / trees adding to that output`. Then `post_transform`: "none", "logistic"
  (1 / (1 + exp(-post_param * m))), "softmax", "exp".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# Comparison operators (`op`).
LE, LT, GE, GT, EQ, NEQ, IN = range(7)
OPS = ("LE", "LT", "GE", "GT", "EQ", "NEQ", "IN")
# What counts as missing (`missing_kind`).
MISSING_NAN, MISSING_ZERO, NAN_AS_ZERO, NAN_COMPARES = range(4)
#: LightGBM's kZeroThreshold: |x| at or below it is zero. It is the float 1e-35f, so as a
#: double it is 1.0000000180025095e-35, not 1e-35.
ZERO_THRESHOLD = float(np.float32(1e-35))
#: Bounds a hostile model cannot pass (checked before any array of that size is built).
MAX_NODES = 50_000_000
MAX_DEPTH = 4_096
MAX_FEATURES = 1_000_000
MAX_OUTPUTS = 100_000

POST_TRANSFORMS = ("none", "logistic", "softmax", "exp")


class TreeEnsembleError(ValueError):
    """A tree ensemble that is malformed or beyond byom's bounds; the message names the tree
    and node. Formats turn it into InvalidModelError naming the model."""


@dataclass
class Node:
    """One node as a format reader builds it before `TreeEnsemble.build` flattens the trees.

    A split has `feature >= 0`, `yes` and `no` child indices within its tree, `missing` (the
    child a missing value takes), an `op` and a `threshold` (or `categories` for IN). A leaf
    has `feature == -1` and `leaf` = [(output, weight), ...]."""

    feature: int = -1
    threshold: float = 0.0
    op: int = LE
    yes: int = -1
    no: int = -1
    missing: int = -1
    missing_kind: int = MISSING_NAN
    categories: tuple[int, ...] = ()
    leaf: list[tuple[int, float]] = field(default_factory=list)


@dataclass
class TreeEnsemble:
    """Every tree of a model, flattened; see the module docstring for the semantics."""

    n_features: int
    n_outputs: int
    roots: np.ndarray  # int32 [n_trees]: each tree's root node
    feature: np.ndarray  # int32 [n_nodes]: -1 for a leaf
    threshold: np.ndarray  # float64 [n_nodes]
    op: np.ndarray  # uint8 [n_nodes]
    yes: np.ndarray  # int32 [n_nodes]
    no: np.ndarray  # int32 [n_nodes]
    missing: np.ndarray  # int32 [n_nodes]
    missing_kind: np.ndarray  # uint8 [n_nodes]
    cat_start: np.ndarray  # int32 [n_nodes]
    cat_len: np.ndarray  # int32 [n_nodes]
    cat_words: np.ndarray  # uint32
    leaf_start: np.ndarray  # int32 [n_nodes]
    leaf_count: np.ndarray  # int32 [n_nodes]
    leaf_output: np.ndarray  # int32
    leaf_weight: np.ndarray  # float64
    base: np.ndarray  # float64 [n_outputs]
    float32: bool = False
    sum_float32: bool = False
    aggregate: str = "sum"
    post_transform: str = "none"
    #: The post transform's parameter: the logistic's slope (LightGBM's `sigmoid:`).
    post_param: float = 1.0
    #: The post transform in float32 on the float32 margins with glibc's `expf`, as XGBoost
    #: computes it (`byom.trees.expf`: sigmoid 1/(1+expf(-m)), softmax with a double sum,
    #: expf); numpy's exp differs from it in the last bit.
    transform_float32: bool = False
    #: IN splits: a value below zero is in no set (XGBoost: a negative category is invalid),
    #: rather than truncated first (LightGBM and ONNX: -0.5 is category 0).
    negative_not_in_set: bool = False
    #: Trees adding to each output (for "average"), computed by `build`.
    trees_per_output: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: The tree's depth bound, for kernels that unroll (computed by `build`).
    max_depth: int = 0

    @property
    def n_trees(self) -> int:
        return len(self.roots)

    @property
    def n_nodes(self) -> int:
        return len(self.feature)

    @classmethod
    def build(
        cls,
        trees: list[list[Node]],
        n_features: int,
        n_outputs: int,
        base: list[float] | np.ndarray | None = None,
        *,
        float32: bool = False,
        sum_float32: bool = False,
        aggregate: str = "sum",
        post_transform: str = "none",
        post_param: float = 1.0,
    ) -> TreeEnsemble:
        """Flatten trees (each a list of Nodes, node 0 its root) and check them: every child
        index in range, no cycles, depth and sizes within bounds, finite thresholds, features
        and outputs in range. Raises TreeEnsembleError naming the tree and node."""
        from byom.trees.check import check_and_flatten

        return check_and_flatten(
            cls,
            trees,
            n_features,
            n_outputs,
            np.zeros(n_outputs) if base is None else np.asarray(base, dtype=np.float64),
            float32=float32,
            sum_float32=sum_float32,
            aggregate=aggregate,
            post_transform=post_transform,
            post_param=post_param,
        )
