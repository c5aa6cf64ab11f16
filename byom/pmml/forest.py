"""Evaluate many binary trees (`byom.pmml.models.tree.BinaryTree`) for a whole batch at once.

Leaf bitmasks (the QuickScorer idea, with every untaken branch eliminated): each feature's
thresholds, over all trees, cut its values into bins; for every bin and tree a precomputed
bitmask keeps the tree's leaves that the feature's decisions do not rule out. A row's bitmask
per tree is the AND over features of the masks of its bins, and exactly one leaf survives: the
one the tree reaches. Scoring is then one searchsorted and one row gather per feature, plus
bitwise ANDs, for all trees at once. When the masks would take too much memory, the trees are
traversed instead: each (row, tree) pair moves one decision down per step.

Lowering (`lower`): a MiningModel whose segments are all such trees is also compiled, once at
load, to one `byom.trees.TreeEnsemble` scored by `byom.trees.kernel_margins` (the compiled
kernel), whose margins are exactly the sums the MiningModel's combination accumulates. Its
results equal the per-tree path bit for bit (tests/test_pmml_trees_lowered.py), because:

- every decision is the BinaryTree's own `x <= threshold` in float64 (lessThan and
  greaterOrEqual already became `<=` the next double down, exact for every double). A NaN
  goes to `nan_next`: where that is the `<=` or `>` child (missingValueStrategy="none") the
  node's missing direction says so; where it is an outcome of its own (nullPrediction,
  lastPrediction) NaN is sent through the comparison (NAN_COMPARES: false) to a second node
  `x > threshold`, also false on NaN only, whose `no` child is that outcome;
- each outcome (a leaf or, for noTrueChildStrategy/lastPrediction, an inner node, or no
  prediction) becomes a leaf adding what the MiningModel's loop adds for a row that reached it,
  in the same type: the value (times the weight for weighted methods), the class's vote, or
  the reordered probabilities times the weight. Trees add in segment order from +0.0 as the
  loop does (float32 under x-mathContext="float"); 0.0 stands for "nothing added", exact since
  a sum starting at +0.0 is never -0.0. Each output is its own copy of the tree, one value per
  leaf (the kernel keeps such totals in registers and compiles them in seconds; leaves adding
  to several outputs compiled in minutes): the total's columns, then, only where some outcome
  has no prediction, a 0/1 "missing" output and, unless missingPredictionTreatment is
  returnMissing (a row missing a segment is then NULL and every other row counts all of them),
  the per-row count of the segments used. The finishing steps (division,
  missingPredictionTreatment, labels) stay in `MiningModel`, shared by both paths.

Not lowered (today's path, decided at load): multipleModelMethod median, weightedMedian and max
(not sums); trees whose function differs from the MiningModel's; a model without split
fields; anything `TreeEnsemble.build` refuses (a NaN threshold, a non-finite leaf term, its
bounds); ensembles the kernel cannot compile here (no llvmlite, over BYOM_KERNEL_MAX_NODES),
whose numpy evaluation would be no faster than the leaf bitmasks; and every MiningModel that
is not a `Forest` today: trees with missingValueStrategy defaultChild, weightedConfidence or
aggregateNodes, with equal/notEqual, isIn (the corpus's R and KNIME forests test string
categories, which have no integer codes), isMissing or compound splits, local
transformations, segment predicates other than True, segment Outputs or Targets (these would
first need `TreeModel._binary` to compile them). BYOM_PMML_LOWER_TREES=0 turns lowering off,
e.g. to compare against the per-tree path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from byom.pmml.scope import Scope
from byom.trees import Node, TreeEnsemble, TreeEnsembleError, kernel_compiles, kernel_margins
from byom.trees.ensemble import GT, LE, MISSING_NAN, NAN_COMPARES

if TYPE_CHECKING:
    from byom.pmml.models.mining import MiningModel
    from byom.pmml.models.tree import BinaryTree, TreeModel


class Forest:
    def __init__(self, trees: list[TreeModel]) -> None:
        self.trees = trees
        names: dict[str, int] = {}
        feature: list[int] = []
        threshold: list[float] = []
        le: list[int] = []
        gt: list[int] = []
        nan: list[int] = []
        outcome_node: list[int] = []
        starts: list[int] = []
        for tree in trees:
            binary = tree.binary
            assert binary is not None
            base, out_base = len(feature), len(outcome_node)

            def shift(code: int, base: int = base, out_base: int = out_base) -> int:
                return code + base if code >= 0 else code - out_base

            feature += [names.setdefault(f, len(names)) for f in binary.fields]
            threshold += binary.thresholds
            le += [shift(c) for c in binary.le_next]
            gt += [shift(c) for c in binary.gt_next]
            nan += [shift(c) for c in binary.nan_next]
            outcome_node += binary.outcomes
            starts.append(shift(binary.start))
        self.fields = list(names)
        n_features = max(len(self.fields), 1)
        self._feature = np.array(feature, dtype=np.intp)
        self._threshold = np.array(threshold, dtype=np.float64)
        self._le = np.array(le, dtype=np.intp)
        self._gt = np.array(gt, dtype=np.intp)
        self._nan = np.array(nan, dtype=np.intp)
        self._outcome_node = np.array([*outcome_node, -1], dtype=np.intp)
        self._starts = np.array(starts, dtype=np.intp)
        self._n_features = n_features
        sizes = [len(t.binary.outcomes) if t.binary else 0 for t in trees]
        self._offsets: np.ndarray = np.cumsum(np.array([0, *sizes[:-1]], dtype=np.intp))
        self._masks = _leaf_masks(trees, self.fields)
        self._values: np.ndarray | None = None
        if all(t.function == "regression" for t in trees):
            tables = [t.value_table for t in trees]
            self._values = np.concatenate(tables)
            self._value_offsets = np.cumsum([0, *(len(v) for v in tables[:-1])])
            self._no_node = np.array([len(v) - 1 for v in tables], dtype=np.intp)

    def values(self, leaves: np.ndarray) -> np.ndarray | None:
        """(n, trees) scores of regression trees for `leaves`, in one gather."""
        if self._values is None:
            return None
        index = np.where(leaves < 0, self._no_node, leaves) + self._value_offsets
        return self._values[index]

    def leaves(self, scope: Scope) -> np.ndarray:
        """(n, trees) node indices, per tree, whose scores are the results (-1: none)."""
        if self._masks is None:
            return self._traverse(scope)
        n, t = scope.n, len(self.trees)
        masks, words = self._masks
        columns = [scope.get(name) for name in self.fields]
        out = np.empty((n, t), dtype=np.intp)
        ones = np.array(~np.uint64(0), dtype=np.uint64)
        for start in range(0, n, CHUNK):
            stop = min(start + CHUNK, n)
            acc = np.full((stop - start, t, words), ones)
            for column, (cuts, table) in zip(columns, masks, strict=True):
                if table is None:
                    continue
                x = column[start:stop]
                bins = np.searchsorted(cuts, x, side="left")
                missing = np.isnan(x)
                if missing.any():
                    bins[missing] = len(cuts) + 1
                np.bitwise_and(acc, table[bins], out=acc)
            if words == 1:
                first = acc[:, :, 0]
                word = 0
            else:
                word = np.argmax(acc != 0, axis=2)
                first = np.take_along_axis(acc, word[:, :, None], axis=2)[:, :, 0]
            if not first.all():
                raise RuntimeError("a row matched no leaf of a tree")  # cannot happen: trees
            lowest = first & (~first + np.uint64(1))
            leaf = np.log2(lowest.astype(np.float64)).astype(np.intp) + 64 * word
            out[start:stop] = self._outcome_node[self._offsets + leaf]
        return out

    def _traverse(self, scope: Scope) -> np.ndarray:
        n, t = scope.n, len(self.trees)
        matrix = np.empty((n, self._n_features), dtype=np.float64)
        for j, name in enumerate(self.fields):
            matrix[:, j] = scope.get(name)
        flat = matrix.ravel()
        has_nan = bool(np.isnan(flat).any())
        code = np.tile(self._starts, n)
        result = np.full(n * t, -1, dtype=np.intp)
        done = code < 0
        result[done] = -code[done] - 1
        pos = np.flatnonzero(~done)
        code = code[pos]
        base = (pos // t) * self._n_features
        feature, threshold, le, gt = self._feature, self._threshold, self._le, self._gt
        steps = 0
        while pos.size:
            steps += 1
            if steps > len(feature) + 1:
                raise RuntimeError("tree traversal did not terminate")  # cannot happen: trees
            x = flat[base + feature[code]]
            nxt = np.where(x <= threshold[code], le[code], gt[code])
            if has_nan:
                nxt = np.where(np.isnan(x), self._nan[code], nxt)
            finished = nxt < 0
            if finished.any():
                result[pos[finished]] = -nxt[finished] - 1
                keep = ~finished
                pos, base, code = pos[keep], base[keep], nxt[keep]
            else:
                code = nxt
        return self._outcome_node[result].reshape(n, t)


#: Rows per block of leaf masks (trees x words x 8 bytes each).
CHUNK = 2048
#: Largest total size of the leaf-mask tables.
MAX_MASK_BYTES = 64 * 1024**2

_Masks = tuple[list[tuple[np.ndarray, np.ndarray | None]], int]


def _leaf_masks(trees: list[TreeModel], fields: list[str]) -> _Masks | None:
    binaries = [t.binary for t in trees]
    words = max((len(b.outcomes) + 63) // 64 for b in binaries if b is not None)
    cuts: dict[str, list[float]] = {f: [] for f in fields}
    for b in binaries:
        assert b is not None
        for f, threshold in zip(b.fields, b.thresholds, strict=True):
            cuts[f].append(threshold)
    sorted_cuts = {f: np.unique(np.array(v, dtype=np.float64)) for f, v in cuts.items()}
    size = sum((len(c) + 2) * len(trees) * words * 8 for c in sorted_cuts.values())
    if size > MAX_MASK_BYTES:
        return None
    tables = {
        f: np.full((len(c) + 2, len(trees), words), ~np.uint64(0), dtype=np.uint64)
        for f, c in sorted_cuts.items()
    }
    full = (1 << 64) - 1

    def as_words(mask: int) -> np.ndarray:
        return np.array([(mask >> (64 * w)) & full for w in range(words)], dtype=np.uint64)

    for t, b in enumerate(binaries):
        assert b is not None
        below: list[int] = []  # leaves under each decision; children come before parents

        def leaves_of(code: int, below: list[int] = below) -> int:
            return 1 << (-code - 1) if code < 0 else below[code]

        for d in range(len(b.fields)):
            le, gt, nan = leaves_of(b.le_next[d]), leaves_of(b.gt_next[d]), leaves_of(b.nan_next[d])
            under = le | gt | nan
            below.append(under)
            c = sorted_cuts[b.fields[d]]
            table = tables[b.fields[d]]
            k = int(np.searchsorted(c, b.thresholds[d]))
            table[: k + 1, t] &= as_words(~(under & ~le) & ((1 << 64 * words) - 1))
            table[k + 1 : len(c) + 1, t] &= as_words(~(under & ~gt) & ((1 << 64 * words) - 1))
            table[len(c) + 1, t] &= as_words(~(under & ~nan) & ((1 << 64 * words) - 1))
    return [(sorted_cuts[f], tables[f]) for f in fields], words


# ---------------------------------------------------------------------------------- lowering

#: Environment switch: "0" keeps every PMML forest on the per-tree path (read at load).
LOWER_ENV = "BYOM_PMML_LOWER_TREES"
_SUMMED = {
    "regression": ("sum", "weightedSum", "average", "weightedAverage"),
    "classification": ("majorityVote", "weightedMajorityVote", "average", "weightedAverage"),
}

#: For a tree node (-1: none): what the MiningModel's loop adds to each column of its total
#: for a row whose segment result is that node's, and whether that result is missing.
_Adds = Callable[[int], tuple[list[float], bool]]


def lowering_enabled() -> bool:
    """Whether forests lower to the tree kernel (BYOM_PMML_LOWER_TREES, default on)."""
    return os.environ.get(LOWER_ENV, "1").strip() != "0"


@dataclass
class LoweredForest:
    """A MiningModel's trees as one TreeEnsemble; its margins are the MiningModel's sums:
    `width` totals, then the count where it varies per row, then the missing segments where
    some segment can miss."""

    ensemble: TreeEnsemble
    fields: list[str]
    #: Columns of the total: 1 (a regression) or the MiningModel's classes.
    width: int
    dtype: Any
    #: Every row's count where it does not vary (else None: a margin holds it).
    count: Any
    #: Whether a margin counts the segments without a prediction.
    can_miss: bool

    def sums(self, scope: Scope) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(total [n, width], count [n], missing [n]) as `MiningModel` accumulates them."""
        columns = [np.asarray(scope.get(f), dtype=np.float64) for f in self.fields]
        margins = kernel_margins(self.ensemble, columns)
        n, width = scope.n, self.width
        total = margins[:, :width].astype(self.dtype)
        if self.count is None:
            count = margins[:, width].astype(self.dtype)
        else:
            count = np.full(n, self.count, self.dtype)
        missing = margins[:, -1] > 0 if self.can_miss else np.zeros(n, bool)
        return total, count, missing


def lower(mining: MiningModel) -> LoweredForest | None:
    """The MiningModel's forest lowered to the tree kernel, or None where that would not be
    exact or is switched off (see the module docstring)."""
    forest = mining.forest
    if forest is None or not lowering_enabled() or not forest.fields:
        return None
    if mining.method not in _SUMMED.get(mining.function, ()):
        return None
    if any(t.function != mining.function for t in forest.trees):
        return None
    regression = mining.function == "regression"
    dtype: Any = np.float32 if mining.float_math and regression else np.float64
    width = 1 if regression else len(mining.classes)
    features = {name: j for j, name in enumerate(forest.fields)}
    shapes, adds, steps = [], [], []
    for tree, (_, weight, _) in zip(forest.trees, mining.segments, strict=True):
        assert tree.binary is not None
        add, step = _segment_adds(mining, tree, weight)
        shapes.append(_nodes(tree.binary, features))
        adds.append({o: add(o) for o in tree.binary.outcomes})
        steps.append(step)
    can_miss = any(bad for table in adds for _, bad in table.values())
    # With returnMissing a row that misses a segment is NULL, and every other row counts all.
    varies = can_miss and mining.missing_treatment != "returnMissing"
    count: Any = None
    if not varies:  # the loop's count, added in the same order and type
        count = dtype(0)
        for step in steps:
            count = dtype(count + step)
    trees = []
    for (nodes, leaves), table, step in zip(shapes, adds, steps, strict=True):
        # Per outcome, what it adds to each output: the total's columns, the count, missing.
        rows = {
            o: [*terms, *([0.0 if bad else step] if varies else []), *([float(bad)] * can_miss)]
            for o, (terms, bad) in table.items()
        }
        # One copy of the tree per output, each leaf adding one value: the kernel keeps such
        # trees' totals in registers and compiles them quickly.
        for output in range(width + varies + can_miss):
            copy = [replace(node) for node in nodes]
            for i, outcome in leaves:
                copy[i].leaf = [(output, rows[outcome][output])]
            trees.append(copy)
    try:
        ensemble = TreeEnsemble.build(
            trees, len(forest.fields), width + varies + can_miss, sum_float32=dtype is np.float32
        )
    except TreeEnsembleError:
        return None
    if not kernel_compiles(ensemble):  # its numpy walk is no faster than the leaf bitmasks
        return None
    return LoweredForest(ensemble, forest.fields, width, dtype, count, can_miss)


def _segment_adds(mining: MiningModel, tree: TreeModel, weight: float) -> tuple[_Adds, float]:
    """What the MiningModel's loop adds for a tree's results (mirroring `_combine_values` and
    `_combine_classes`, in their types), and what it adds to the count when there is one.

    0.0 stands for "nothing added": the loop's totals start at +0.0, and in round-to-nearest
    a sum starting at +0.0 is never -0.0, so adding +0.0 leaves it bit for bit unchanged."""
    method = mining.method
    if mining.function == "regression":
        dtype: Any = np.float32 if mining.float_math else np.float64
        values = tree.value_table.astype(dtype)
        weighted = method in ("weightedAverage", "weightedSum")
        w = dtype(weight) if weighted else dtype(1)

        def value(node: int) -> tuple[list[float], bool]:
            v = values[node]
            if np.isnan(v):
                return [0.0], True
            return [float(v * w if weighted else v)], False

        return value, float(w)
    k = len(mining.classes)
    wc = weight if method.startswith("weighted") else 1.0
    if method in ("majorityVote", "weightedMajorityVote"):
        column = {c: j for j, c in enumerate(mining.classes)}

        def vote(node: int) -> tuple[list[float], bool]:
            label = tree.label_table[node]
            col = column.get(label, -1) if label is not None else -1
            return [wc if j == col else 0.0 for j in range(k)], col < 0

        return vote, wc
    from byom.pmml.models.base import ModelResult
    from byom.pmml.models.mining import _reorder

    table = tree.proba_table
    p = _reorder(ModelResult(len(table), classes=tree.classes, probabilities=table), mining.classes)
    assert p.probabilities is not None
    reordered = p.probabilities

    def average(node: int) -> tuple[list[float], bool]:
        row = reordered[node]
        if np.isnan(row).any():
            return [0.0] * k, True
        return (np.nan_to_num(row) * wc).tolist(), False

    return average, wc


def _nodes(
    binary: BinaryTree, features: dict[str, int]
) -> tuple[list[Node], list[tuple[int, int]]]:
    """A BinaryTree as TreeEnsemble nodes (node 0 the root) and its leaves, as (node, tree
    node of the outcome) pairs, still without values."""
    nodes, leaves = [Node()], []
    stack = [(binary.start, 0)]

    def new() -> int:
        nodes.append(Node())
        return len(nodes) - 1

    while stack:
        code, i = stack.pop()
        if code < 0:
            leaves.append((i, binary.outcomes[-code - 1]))
            continue
        f, t = features[binary.fields[code]], binary.thresholds[code]
        le, gt, nan = binary.le_next[code], binary.gt_next[code], binary.nan_next[code]
        yes, no = new(), new()
        if nan in (le, gt):
            nodes[i] = Node(f, t, LE, yes, no, yes if nan == le else no, MISSING_NAN)
            stack += [(le, yes), (gt, no)]
        else:  # NaN is false for <= and for >: the second test sends it to its own outcome
            greater, missing = new(), new()
            nodes[i] = Node(f, t, LE, yes, no, no, NAN_COMPARES)
            nodes[no] = Node(f, t, GT, greater, missing, missing, NAN_COMPARES)
            stack += [(le, yes), (gt, greater), (nan, missing)]
    return nodes, leaves
