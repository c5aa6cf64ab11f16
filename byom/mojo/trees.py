"""H2O's GBM and DRF MOJOs: the compressed trees decoded into byom's tree ensemble (scored by the
compiled kernel), and the predictions h2o-genmodel makes of the tree sums.

The tree format (h2o-genmodel's `SharedTreeMojoModel.scoreTree`, MOJO 1.20 and later): per
node a type byte, the column (u16; 65535: the tree is one leaf), the NA direction, then a
float32 split (right when x >= split), a bitset of levels (right when the level's bit is set)
or nothing (NA against the rest); the left subtree's size unless the left child is a leaf;
the left subtree; the right one. Leaves are float32. Every read is bounded by the tree's
bytes and every offset checked, so a truncated or forged tree is refused by name.

Semantics kept exactly: values compare in float64 against the float32 split; NaN takes the
node's NA direction, and so does a level outside a bitset's range; "NA vs rest" nodes send a
level outside the range of the last bitset on their path the NA way too (genmodel keeps that
bitset); trees add in float64, class by class, in tree order, from 0.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from byom.mojo.archive import Mojo
from byom.mojo.genmodel import (
    DEFAULT_LINKS,
    Ties,
    class_balance,
    class_sum,
    classified,
    inverse_link,
    softmax,
)
from byom.scorers.base import Prediction
from byom.trees.ensemble import IN, LE, LT, MAX_NODES, Node, TreeEnsemble, TreeEnsembleError
from byom.trees.scorer import TreeScorer

LEAF_COLUMN = 65535
NA_VS_REST, NA_LEFT, LEFT = 1, 2, 4
#: The NA directions genmodel knows (None, NAvsREST, NALeft, NARight, Left, Right).
NA_DIRECTIONS = range(6)
GBM, DRF = "Gradient Boosting Machine", "Distributed Random Forest"
ISOLATION_FOREST = "Isolation Forest"
LINKS = ("identity", "logit", "log")


class _Reader:
    """Bounded reads over one tree's bytes."""

    def __init__(self, data: bytes, where: str) -> None:
        self.data, self.where = data, where

    def take(self, pos: int, size: int) -> bytes:
        if pos < 0 or pos + size > len(self.data):
            raise TreeEnsembleError(f"{self.where} is truncated (byte {pos} of {len(self.data)})")
        return self.data[pos : pos + size]

    def u8(self, pos: int) -> int:
        return self.take(pos, 1)[0]

    def u16(self, pos: int) -> int:
        return int(struct.unpack_from("<H", self.take(pos, 2))[0])

    def u24(self, pos: int) -> int:
        b = self.take(pos, 3)
        return b[0] | b[1] << 8 | b[2] << 16

    def i32(self, pos: int) -> int:
        return int(struct.unpack_from("<i", self.take(pos, 4))[0])

    def f32(self, pos: int) -> float:
        return float(struct.unpack_from("<f", self.take(pos, 4))[0])


class _Bitset:
    """A split's levels: `bits` (LSB first) from level `offset`, `n` of them."""

    def __init__(self, bits: bytes, offset: int, n: int) -> None:
        self.bits, self.offset, self.n = bits, offset, n

    def in_range(self, level: int) -> bool:
        return 0 <= level - self.offset < self.n

    def contains(self, level: int) -> bool:
        j = level - self.offset
        return bool(self.bits[j >> 3] >> (j & 7) & 1)


def decode_tree(
    data: bytes,
    output: int,
    domains: Sequence[list[str] | None],
    n_features: int,
    where: str,
    max_nodes: int = MAX_NODES,
) -> list[Node]:
    """One compressed tree as Nodes (node 0 the root); leaves add to `output`. More than
    `max_nodes` nodes is refused before they are all decoded."""
    r = _Reader(data, where)
    nodes: list[Node] = []
    if r.u16(1) == LEAF_COLUMN:
        return [Node(leaf=[(output, r.f32(3))])]
    # (node index to fill, byte position, the last bitset on the path)
    stack: list[tuple[int, int, _Bitset | None]] = [(0, 0, None)]
    nodes.append(Node())
    while stack:
        index, pos, last = stack.pop()
        node_type, column, na_dir = r.u8(pos), r.u16(pos + 1), r.u8(pos + 3)
        pos += 4
        if column >= n_features:
            raise TreeEnsembleError(f"{where}: a split on column {column}, past the features")
        if na_dir not in NA_DIRECTIONS:
            raise TreeEnsembleError(f"{where}: NA direction {na_dir} is unknown")
        equal, lmask = node_type & 0x0C, node_type & 0x33
        domain = domains[column]
        node = nodes[index]
        node.feature = column
        bitset = None
        if na_dir != NA_VS_REST:
            if equal == 0:
                node.op, node.threshold = LT, r.f32(pos)  # left when x < split
                pos += 4
            elif equal == 8:
                bitset = _Bitset(r.take(pos, 4), 0, 32)
                pos += 4
            elif equal == 12:
                offset, count = r.u16(pos), r.i32(pos + 2)
                if count < 0 or count > 1 << 24:
                    raise TreeEnsembleError(f"{where}: a bitset of {count} levels")
                bitset = _Bitset(r.take(pos + 6, ((count - 1) >> 3) + 1), offset, count)
                pos += 6 + ((count - 1) >> 3) + 1
            else:
                raise TreeEnsembleError(f"{where}: node type {node_type} is not supported")
            if bitset is not None and domain is None:
                raise TreeEnsembleError(f"{where}: a set of levels on numeric column {column}")
        na_right = na_dir not in (NA_LEFT, LEFT)
        if bitset is not None or (na_dir == NA_VS_REST and equal and last and domain):
            # Levels go right when in the set (or, NA vs rest, outside the last set's range);
            # a level outside the set's range goes the NA way.
            ruler = bitset or last
            assert ruler is not None and domain is not None
            node.op = IN
            node.categories = tuple(
                level
                for level in range(len(domain))
                if (
                    (na_right if not ruler.in_range(level) else ruler.contains(level))
                    if bitset is not None
                    else not ruler.in_range(level)
                )
            )
            right_is_yes = True
        elif na_dir == NA_VS_REST:  # every value left, NaN right
            node.op, node.threshold = LE, math.inf
            right_is_yes = False
        else:
            right_is_yes = False
        if lmask == 48:  # the left child is a leaf
            left_pos, right_pos = pos, pos + 4
        elif lmask <= 3:
            width = lmask + 1
            size = (r.u8, r.u16, r.u24, r.i32)[lmask](pos)
            left_pos, right_pos = pos + width, pos + width + size
            if size <= 0 or right_pos > len(data):
                raise TreeEnsembleError(f"{where}: a left subtree runs past the tree's end")
        else:
            raise TreeEnsembleError(f"{where}: node type {node_type} is malformed")
        path = bitset or last
        children = []
        for child_pos, is_leaf in ((left_pos, lmask == 48), (right_pos, node_type & 0xC0 != 0)):
            child = len(nodes)
            if len(nodes) > min(len(data), max_nodes):  # a node takes 4 bytes at least
                raise TreeEnsembleError(
                    f"{where}: more nodes than its bytes can hold, or over byom's bound of "
                    f"{MAX_NODES:,} nodes per model"
                )
            if is_leaf:
                nodes.append(Node(leaf=[(output, r.f32(child_pos))]))
            else:
                nodes.append(Node())
                stack.append((child, child_pos, path))
            children.append(child)
        left, right = children
        node.yes, node.no = (right, left) if right_is_yes else (left, right)
        node.missing = right if na_right else left
    return nodes


class GenmodelTreeScorer(TreeScorer):
    """A MOJO's trees on byom's kernel, then genmodel's own steps (`prediction`), which break
    ties between equally probable classes with the row's values: scored alone, not in a
    family (each MOJO has its own link, encoding and threshold)."""

    priors: np.ndarray | None = None  # prior_class_distrib, for genmodel's tie draw

    def family(self) -> tuple[object, ...] | None:
        return None

    def predict(self, features: dict[str, np.ndarray], n: int, full: bool = True) -> Prediction:
        ties = Ties.of(self.priors, features, self.inputs)
        return self.prediction(self.margins(features), n, full, ties)

    def prediction(
        self, raw: np.ndarray, n: int, full: bool = True, ties: Ties | None = None
    ) -> Prediction:
        raise NotImplementedError


class MojoTreeScorer(GenmodelTreeScorer):
    """A GBM or DRF MOJO: its trees on byom's kernel, then genmodel's link, averaging and
    label (the binomial threshold the MOJO stores), exactly as `PredictCsv` reports them."""

    def __init__(self, mojo: Mojo, ensemble: TreeEnsemble) -> None:
        n_features = mojo.integer("n_features")
        names = mojo.columns[:n_features]
        categories = {i: d for i, d in enumerate(mojo.domains[:n_features]) if d is not None}
        self.algorithm = mojo.text("algorithm")
        self.n_classes = mojo.integer("n_classes")
        task, classes = mojo.outcome()
        super().__init__(
            ensemble,
            names,
            format="mojo",
            task=task,
            classes=classes,
            target=mojo.columns[-1] if mojo.info.get("supervised") is True else None,
            categories=categories,
        )
        self.n_groups = mojo.integer("n_trees")
        self.balance = class_balance(mojo, self.n_classes)
        self.priors = mojo.optional_numbers("prior_class_distrib", self.n_classes or None)
        #: Isolation Forest trained with a contamination: its 0/1 flag comes first.
        self.anomaly_flag = mojo.info.get("output_anomaly_flag") is True
        if self.algorithm == ISOLATION_FOREST:  # the path lengths that normalise the score
            self.path_lengths = (
                mojo.integer("min_path_length", 0),
                mojo.integer("max_path_length", 0),
            )
        self.threshold = mojo.number("default_threshold", 0.5)
        self.double_trees = mojo.info.get("binomial_double_trees") is True
        self.distribution = str(mojo.info.get("distribution", "")) if self.algorithm == GBM else ""
        self.init_f = mojo.number("init_f", 0.0) if self.algorithm == GBM else 0.0
        link = mojo.info.get("link_function") or DEFAULT_LINKS.get(self.distribution, "identity")
        if self.algorithm == GBM and self.distribution not in DEFAULT_LINKS:
            raise mojo.error(f"GBM distribution {self.distribution!r} is not supported")
        if link not in LINKS:
            raise mojo.error(f"link function {link!r} is not supported")
        self.link = str(link)

    def output_names(self) -> list[str]:
        if self.algorithm == ISOLATION_FOREST:
            flag = ["predict", "score"] if self.anomaly_flag else ["predict"]
            return [*flag, "mean_length"]
        return ["predict", "probabilities"] if self.task == "classification" else ["predict"]

    def prediction(
        self, raw: np.ndarray, n: int, full: bool = True, ties: Ties | None = None
    ) -> Prediction:
        """genmodel's unifyPreds on the per-class tree sums `raw` (float64 [n, outputs])."""
        pred = Prediction(task=self.task, n=n, classes=self.classes)
        if self.algorithm == ISOLATION_FOREST:  # the anomaly score, from the summed lengths
            total = raw[:, 0]
            low, high = self.path_lengths
            pred.value = (high - total) / (high - low) if high > low else np.ones(n)
            if self.anomaly_flag:  # genmodel: an anomaly when the score is above the threshold
                pred.outputs["predict"] = pa.array((pred.value > self.threshold) * 1.0)
                pred.outputs["score"] = pa.array(pred.value)
            else:
                pred.outputs["predict"] = pa.array(pred.value)
            if full:
                pred.outputs["mean_length"] = pa.array(total / max(self.n_groups, 1))
            return pred
        if self.task == "regression":
            total = raw[:, 0]
            if self.algorithm == DRF:
                value = total / self.n_groups
            else:
                value = inverse_link(self.link, total + self.init_f)
            pred.value = value
            pred.outputs["predict"] = pa.array(value)
            return pred
        proba = self._probabilities(raw)
        return classified(pred, proba, full, self.threshold, self.balance, ties)

    def _probabilities(self, raw: np.ndarray) -> np.ndarray:
        k = self.n_classes
        if self.algorithm == GBM:
            if self.distribution in ("bernoulli", "quasibinomial", "modified_huber"):
                p1 = inverse_link(self.link, raw[:, 0] + self.init_f)
                return np.column_stack([1.0 - p1, p1])
            sums = raw
            if k == 2 and raw.shape[1] == 1:
                first = raw[:, 0] + self.init_f
                sums = np.column_stack([first, -first])
            return softmax(sums)
        if k == 2 and not self.double_trees:
            p0 = raw[:, 0] / self.n_groups
            return np.column_stack([p0, 1.0 - p0])
        total = class_sum(raw)
        safe = np.where(total > 0, total, 1.0)
        return np.where((total > 0)[:, None], raw / safe[:, None], raw)


def load_scorer(mojo: Mojo) -> MojoTreeScorer:
    """The GBM or DRF of a MOJO read by `archive.read`."""
    algorithm = mojo.text("algorithm")
    if algorithm not in (GBM, DRF, ISOLATION_FOREST, "Gradient Boosting Method"):
        raise mojo.error(f"algorithm {algorithm!r} is not one byom reads from a MOJO yet")
    version = mojo.number("mojo_version")
    if not 1.2 <= version <= 1.4:
        raise mojo.error(f"MOJO version {version} is not supported (byom reads 1.20 to 1.40)")
    if mojo.info.get("_genmodel_encoding", "AUTO") not in ("AUTO", "Enum"):
        raise mojo.error(
            f"categorical encoding {mojo.info['_genmodel_encoding']!r} is not supported; "
            "train with categorical_encoding='AUTO'"
        )
    n_features, n_classes = mojo.integer("n_features"), mojo.integer("n_classes")
    if not 0 < n_features <= len(mojo.columns):
        raise mojo.error(f"n_features {n_features} does not fit its {len(mojo.columns)} columns")
    groups = mojo.integer("n_trees")
    per_group = mojo.integer("n_trees_per_class", 1)
    if groups < 0 or not 0 < per_group <= max(n_classes, 1) or groups * per_group > 1_000_000:
        raise mojo.error(f"{groups} tree groups of {per_group} trees")
    outputs = per_group
    trees: list[list[Node]] = []
    decoded = 0  # nodes so far: the model's bound is checked while decoding
    for c in range(per_group):
        for g in range(groups):
            name = f"trees/t{c:02d}_{g:03d}.bin"
            data = mojo.entries.get(name)
            if data is None:
                continue  # genmodel: a missing tree adds nothing
            try:
                budget = MAX_NODES - decoded
                trees.append(decode_tree(data, c, mojo.domains, n_features, name, budget))
                decoded += len(trees[-1])
            except TreeEnsembleError as exc:
                raise mojo.error(str(exc)) from None
    try:
        ensemble = TreeEnsemble.build(trees, n_features, outputs)
    except TreeEnsembleError as exc:
        raise mojo.error(str(exc)) from None
    return MojoTreeScorer(mojo, ensemble)
