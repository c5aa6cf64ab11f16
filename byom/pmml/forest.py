"""Evaluate many binary trees (`byom.pmml.models.tree.BinaryTree`) for a whole batch at once.

Leaf bitmasks (the QuickScorer idea, with every untaken branch eliminated): each feature's
thresholds, over all trees, cut its values into bins; for every bin and tree a precomputed
bitmask keeps the tree's leaves that the feature's decisions do not rule out. A row's bitmask
per tree is the AND over features of the masks of its bins, and exactly one leaf survives: the
one the tree reaches. Scoring is then one searchsorted and one row gather per feature, plus
bitwise ANDs, for all trees at once. When the masks would take too much memory, the trees are
traversed instead: each (row, tree) pair moves one decision down per step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from byom.pmml.scope import Scope

if TYPE_CHECKING:
    from byom.pmml.models.tree import TreeModel


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
