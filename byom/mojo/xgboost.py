"""H2O's XGBoost MOJOs, scored as h2o-genmodel's pure-Java predictor scores them (PredictCsv's
default), without a JVM and without xgboost.

The archive holds `boosterBytes`, the booster in XGBoost's legacy binary format, and model.ini
says how H2O encoded the inputs: `cats` categorical columns (listed first) one-hot encoded in
blocks (`cat_offsets`; each block ends with a slot for a missing level, and without
`use_all_factor_levels` level 0 has no slot), then `nums` numeric columns. With `sparse`, a
level that is not hot and a numeric value that is 0 both read as missing (NaN), so they take
the split's default direction; without it they read as 0.

Semantics kept exactly (h2o-genmodel 3.46's `XGBoostJavaMojoModel`, `OneHotEncoderFactory`
and the xgboost-predictor it ships):

- Inputs are float32; a split sends x left when `x < split` in float32, NaN its default way.
- A one-hot split on column c's slot s becomes a split on c's level: the levels hot at s go
  the way 1.0 goes, the others the way a not-hot value goes; NULL (and an unknown or
  out-of-range level) is hot at the block's last slot, as `GenModel.setCats` makes it. One
  level is an equality test, so such trees stay on the kernel's vectorised path.
- Trees add in float32 in tree order from the base margin (boosters saved by XGBoost 1.3 and
  later; the base score turned into a margin by the objective), or from 0 with the base score
  added last (1.2 and earlier). Dart trees are scaled in float32 by their weight.
- A gblinear booster adds `value * weight` in float32, feature by feature, skipping NaN.
- Transforms are float32 around Java's double `Math.exp`: `1f / (1f + (float) exp(-m))`,
  `(float) exp(m)`, and a softmax summing the float exps in double. Binomial: p0 = 1f - p1.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from byom.mojo.archive import Mojo
from byom.mojo.genmodel import Ties, classified
from byom.mojo.trees import GenmodelTreeScorer
from byom.scorers.base import Prediction
from byom.trees.ensemble import EQ, IN, LT, MAX_NODES, Node, TreeEnsemble, TreeEnsembleError
from byom.trees.xgboost import prob_to_margin

#: objective -> (transform, how the stored base score becomes a margin), as the predictor's
#: ObjFunction registry maps them.
OBJECTIVES: dict[str, tuple[str, str]] = {
    "binary:logistic": ("logistic", "logit"),
    "reg:logistic": ("logistic", "logit"),
    "binary:logitraw": ("none", "identity"),
    "multi:softprob": ("softmax", "identity"),
    "reg:linear": ("none", "identity"),
    "reg:squarederror": ("none", "identity"),
    "count:poisson": ("exp", "log"),
    "reg:gamma": ("exp", "log"),
    "reg:tweedie": ("exp", "log"),
}
#: More trees than this are refused before any is read.
MAX_TREES = 1_000_000
_NODE = np.dtype(
    [("parent", "<i4"), ("left", "<i4"), ("right", "<i4"), ("index", "<u4"), ("value", "<f4")]
)
_NODE_STATS = 16  # loss_chg, sum_hess, base_weight (f32) and leaf_child_cnt (i32): skipped


class _Bytes:
    """Bounded little-endian reads over the booster's bytes, in order."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def take(self, size: int, what: str) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise ValueError(f"boosterBytes is truncated (reading {what} at byte {self.pos})")
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out

    def ints(self, count: int, what: str) -> tuple[int, ...]:
        return struct.unpack(f"<{count}i", self.take(4 * count, what))

    def i64(self, what: str) -> int:
        return int(struct.unpack("<q", self.take(8, what))[0])

    def text(self, what: str) -> str:
        size = self.i64(what)
        if not 0 <= size <= 256:
            raise ValueError(f"boosterBytes names a {what} of {size} bytes")
        return self.take(size, what).decode("utf-8", "replace")

    def floats(self, count: int, what: str) -> np.ndarray:
        if not 0 <= count <= (len(self.data) - self.pos) // 4:
            raise ValueError(f"boosterBytes declares {count:,} {what}, more than it holds")
        return np.frombuffer(self.take(4 * count, what), "<f4").astype(np.float32)


@dataclass
class Booster:
    """What byom keeps of the legacy binary booster."""

    base_score: float  # float32, as stored (probability space for 1.3+ boosters)
    num_feature: int
    groups: int  # outputs: num_class, or 1
    version: tuple[int, int]
    objective: str
    kind: str  # gbtree, dart or gblinear
    #: gbtree and dart: each tree's node records, and the output it adds to.
    trees: list[np.ndarray] = field(default_factory=list)
    tree_info: list[int] = field(default_factory=list)
    #: dart: each tree's weight, indexed (as the Java predictor does) by its place in its group.
    weight_drop: np.ndarray | None = None
    #: gblinear: weight[feature, group], then the bias row.
    linear: np.ndarray | None = None

    @property
    def adds_base_last(self) -> bool:
        """XGBoost 1.2 and earlier: trees summed from 0, the base margin added after them."""
        return self.version < (1, 3)

    def base_margin(self) -> np.float32:
        """The base score as the predictor uses it: turned into a margin by the objective
        (boosters saved by XGBoost 1.0 and later), else as stored."""
        if self.version < (1, 0):
            return np.float32(self.base_score)
        return prob_to_margin(self.base_score, OBJECTIVES[self.objective][1])


def read_booster(data: bytes) -> Booster:
    """The legacy binary booster (raises ValueError saying what is wrong)."""
    r = _Bytes(data)
    head = r.take(4, "the header")
    if head == b"binf":
        head = r.take(4, "the base score")
    (base_score,) = struct.unpack("<f", head)
    learner = r.ints(6, "the learner parameters")
    num_feature, num_class, saved_buffer, _metrics, major, minor = learner
    r.take(27 * 4, "the learner parameters")
    objective, kind = r.text("objective"), r.text("booster name")
    if not 0 < num_feature <= 1_000_000 or not 0 <= num_class <= 100_000:
        raise ValueError(f"{num_feature} features and {num_class} classes")
    groups = max(num_class, 1)
    booster = Booster(
        float(np.float32(base_score)), num_feature, groups, (major, minor), objective, kind
    )
    if kind == "gblinear":
        r.take(4 + 4 + 32 * 4, "the gblinear parameters")
        weights = r.floats(r.i64("gblinear weights"), "gblinear weights")
        if weights.size != (num_feature + 1) * groups:
            raise ValueError(f"{weights.size} gblinear weights for {num_feature} features")
        booster.linear = weights.reshape(num_feature + 1, groups)
        return booster
    if kind not in ("gbtree", "dart"):
        raise ValueError(f"booster {kind!r} is unknown")
    num_trees, _roots, _features, _pad = r.ints(4, "the gbtree parameters")
    pbuffer = r.i64("the gbtree parameters")
    _groups, leaf_size = r.ints(2, "the gbtree parameters")
    r.take(31 * 4 + 4, "the gbtree parameters")
    if not 0 <= num_trees <= MAX_TREES or pbuffer < 0:
        raise ValueError(f"{num_trees:,} trees (byom reads up to {MAX_TREES:,})")
    total = 0
    for t in range(num_trees):
        roots, num_nodes, _deleted, _depth, _nf, leaf_vector = r.ints(6, f"tree {t}")
        r.take(31 * 4, f"tree {t}")
        if roots != 1 or leaf_vector != 0:
            raise ValueError(f"tree {t} has {roots} roots or vector leaves")
        total += num_nodes
        if total > MAX_NODES:
            raise ValueError(f"tree {t} takes the model over byom's bound of {MAX_NODES:,} nodes")
        if not 0 < num_nodes <= (len(data) - r.pos) // 36:
            raise ValueError(
                f"boosterBytes is truncated: tree {t} declares {num_nodes:,} nodes, "
                f"{len(data) - r.pos:,} bytes remain"
            )
        booster.trees.append(np.frombuffer(r.take(num_nodes * 20, f"tree {t}"), _NODE))
        r.take(num_nodes * _NODE_STATS, f"tree {t}'s statistics")
    booster.tree_info = list(r.ints(num_trees, "tree_info"))
    if pbuffer and saved_buffer:  # a prediction buffer saved with the model: skipped
        r.take(2 * 4 * groups * pbuffer * (leaf_size + 1), "the prediction buffer")
    if any(not 0 <= g < groups for g in booster.tree_info):
        raise ValueError(f"tree_info names an output past the booster's {groups}")
    if kind == "dart" and num_trees:
        booster.weight_drop = r.floats(r.i64("dart weights"), "dart weights")
    return booster


@dataclass(frozen=True)
class _Encoding:
    """H2O's one-hot encoding of a MOJO's inputs into XGBoost's features."""

    cats: int
    nums: int
    offsets: tuple[int, ...]  # cat_offsets: column c's slots are offsets[c] .. offsets[c+1]-1
    all_levels: bool
    sparse: bool
    levels: tuple[int, ...]  # each categorical column's number of levels

    @property
    def one_hot(self) -> int:
        return self.offsets[-1]

    def column(self, feature: int) -> int:
        """The input column an XGBoost feature reads."""
        if feature >= self.one_hot:
            return self.cats + feature - self.one_hot
        return int(np.searchsorted(self.offsets, feature, side="right")) - 1

    def hot(self, feature: int) -> tuple[tuple[int, ...], bool]:
        """The levels of the column that make slot `feature` hot, and whether NaN does:
        level L takes slot L (L - 1 without all levels, level 0 none), capped at the block's
        last slot, which NaN takes too (`GenModel.setCats`)."""
        c = self.column(feature)
        slot = feature - self.offsets[c]
        last = self.offsets[c + 1] - self.offsets[c] - 1
        first = 0 if self.all_levels else 1
        if slot < last:
            level = slot + first
            return ((level,) if level < self.levels[c] else ()), False
        return tuple(range(last + first, self.levels[c])), True


def _lower(
    nodes: np.ndarray, out: int, enc: _Encoding, scale: float | None, where: str
) -> list[Node]:
    """One tree's node records as byom Nodes over the input columns, from the root: nodes no
    path reaches (pruned ones) are left out, and a child index out of range is refused."""
    n = len(nodes)
    left, right = nodes["left"].tolist(), nodes["right"].tolist()
    index, values = nodes["index"].tolist(), nodes["value"].tolist()
    n_inputs = enc.cats + enc.nums
    result: list[Node] = []
    number: dict[int, int] = {0: 0}
    order = [0]
    for i in order:  # grows while it is walked: every reachable node, once
        if len(order) > n:
            raise TreeEnsembleError(f"{where}: a cycle among its nodes")
        if left[i] == -1:
            value = values[i]
            if scale is not None:
                value = float(np.float32(scale) * np.float32(value))
            result.append(Node(leaf=[(out, value)]))
            continue
        for child in (left[i], right[i]):
            if not 0 <= child < n:
                raise TreeEnsembleError(f"{where}: node {i}'s child {child} is not in the tree")
            if child in number:
                raise TreeEnsembleError(f"{where}: node {child} is reached twice")
            number[child] = len(order)
            order.append(child)
        feature = index[i] & 0x7FFFFFFF
        default = left[i] if index[i] >> 31 else right[i]
        split = np.float32(values[i])
        if feature >= enc.one_hot + enc.nums or enc.column(feature) >= n_inputs:
            raise TreeEnsembleError(
                f"{where}: node {i} splits on feature {feature}, past the inputs"
            )
        if not math.isfinite(float(split)):
            raise TreeEnsembleError(f"{where}: node {i}'s split {float(split)!r} is not finite")
        if feature >= enc.one_hot:
            result.append(
                Node(
                    feature=enc.column(feature),
                    op=LT,
                    threshold=float(split),
                    yes=number[left[i]],
                    no=number[right[i]],
                    missing=number[default],
                )
            )
            continue
        levels, nan_hot = enc.hot(feature)
        hot = number[left[i] if np.float32(1.0) < split else right[i]]
        cold = number[default if enc.sparse else (left[i] if np.float32(0.0) < split else right[i])]
        column = enc.column(feature)
        # Plain comparisons where they say the same (the kernel vectorises those trees, not
        # ones with level sets): codes are whole numbers >= 0 by now, anything else NaN.
        if not levels:  # only NaN can be hot (the missing-level slot): x < -1 never holds
            missing = hot if nan_hot else cold
            node = Node(feature=column, op=LT, threshold=-1.0, yes=hot, no=cold, missing=missing)
        elif len(levels) == 1 and not nan_hot:
            node = Node(feature=column, op=EQ, threshold=levels[0], yes=hot, no=cold, missing=cold)
        else:
            missing = hot if nan_hot else cold
            node = Node(feature=column, op=IN, categories=levels, yes=hot, no=cold, missing=missing)
        result.append(node)
    return result


class XGBoostMojoScorer(GenmodelTreeScorer):
    """An H2O XGBoost MOJO: trees on byom's kernel over the original columns (the one-hot
    encoding folded into level sets), then the Java predictor's float32 transform and
    genmodel's label."""

    def __init__(
        self, mojo: Mojo, booster: Booster, enc: _Encoding, ensemble: TreeEnsemble
    ) -> None:
        n_features = enc.cats + enc.nums
        task, classes = mojo.outcome()
        super().__init__(
            ensemble,
            mojo.columns[:n_features],
            format="mojo",
            task=task,
            classes=classes,
            target=mojo.columns[-1] if mojo.info.get("supervised") is True else None,
            categories={i: mojo.domains[i] or [] for i in range(enc.cats)},
        )
        self.booster, self.enc = booster, enc
        self.transform = OBJECTIVES[booster.objective][0]
        self.n_classes = mojo.integer("n_classes")
        self.threshold = mojo.number("default_threshold", 0.5)
        self.priors = mojo.optional_numbers("prior_class_distrib", self.n_classes or None)
        self.base = booster.base_margin()
        if (task == "classification") != (self.transform in ("logistic", "softmax")) or (
            self.n_classes > 2 and booster.groups != self.n_classes
        ):
            raise mojo.error(
                f"objective {booster.objective!r} with {booster.groups} outputs does not fit "
                f"its {self.n_classes} classes"
            )

    def output_names(self) -> list[str]:
        return ["predict", "probabilities"] if self.task == "classification" else ["predict"]

    def _columns(self, features: dict[str, np.ndarray]) -> list[np.ndarray]:
        """Levels as codes, an unknown one NaN (genmodel's missing slot); with `sparse`,
        numeric zeros NaN (genmodel reads them as missing)."""
        columns = super()._columns(features)
        if self.enc.sparse:
            for c in range(self.enc.cats, len(columns)):
                columns[c] = np.where(columns[c].astype(np.float32) == 0, np.nan, columns[c])
        return columns

    def margins(self, features: dict[str, np.ndarray]) -> np.ndarray:
        if self.booster.linear is not None:
            raw = self._linear(self._columns(features))
        else:
            raw = super().margins(features)
        if self.booster.adds_base_last:
            raw = (raw.astype(np.float32) + self.base).astype(np.float64)
        return raw

    def _linear(self, columns: list[np.ndarray]) -> np.ndarray:
        """gblinear: bias + base, then each XGBoost feature's value times its weight, in
        feature order, in float32; NaN features add nothing."""
        weights = self.booster.linear
        assert weights is not None
        n = len(columns[0]) if columns else 0
        enc = self.enc
        start = weights[-1] + (np.float32(0) if self.booster.adds_base_last else self.base)
        out = np.repeat(start[None, :], n, axis=0).astype(np.float32)
        for feature in range(self.booster.num_feature):
            column = columns[enc.column(feature)]
            if feature < enc.one_hot:
                levels, nan_hot = enc.hot(feature)
                is_hot = np.isin(column, levels) | (np.isnan(column) & nan_hot)
                value = np.where(is_hot, np.float32(1), np.float32(np.nan if enc.sparse else 0))
            else:
                value = column.astype(np.float32)
            present = ~np.isnan(value)
            out[present] += value[present, None] * weights[feature]
        return out.astype(np.float64)

    def prediction(
        self, raw: np.ndarray, n: int, full: bool = True, ties: Ties | None = None
    ) -> Prediction:
        out = _transform(self.transform, raw.astype(np.float32))
        pred = Prediction(task=self.task, n=n, classes=self.classes)
        if self.task == "regression":
            pred.value = out[:, 0].astype(np.float64)
            pred.outputs["predict"] = pa.array(pred.value)
            return pred
        if out.shape[1] == 1:  # genmodel: p0 = 1f - p1, in float32
            out = np.column_stack([np.float32(1) - out[:, 0], out[:, 0]])
        threshold = self.threshold if out.shape[1] == 2 else None
        return classified(pred, out.astype(np.float64), full, threshold, None, ties)


def _transform(kind: str, m: np.ndarray) -> np.ndarray:
    """The Java predictor's float32 transforms (float32 in, float32 out)."""
    one = np.float32(1)
    with np.errstate(over="ignore"):
        if kind == "logistic":
            return one / (one + np.exp(-m.astype(np.float64)).astype(np.float32))
        if kind == "exp":
            return np.exp(m.astype(np.float64)).astype(np.float32)
        if kind == "softmax":
            e = np.exp((m - m.max(axis=1, keepdims=True)).astype(np.float64)).astype(np.float32)
            total = np.zeros(len(m))
            for j in range(m.shape[1]):  # summed in double, in class order
                total += e[:, j]
            return e / total.astype(np.float32)[:, None]
    return m


def load_scorer(mojo: Mojo) -> XGBoostMojoScorer:
    """The scorer of an H2O XGBoost MOJO read by `archive.read`."""
    version = mojo.number("mojo_version")
    kind = mojo.text("booster", "gbtree")
    if not 1.0 <= version <= 1.1 or (version == 1.0 and kind != "gbtree"):
        raise mojo.error(f"XGBoost MOJO version {version} ({kind}) is not supported")
    if mojo.info.get("calib_method") not in (None, "", "none", "NONE"):
        raise mojo.error(
            f"calibrated probabilities ({mojo.info['calib_method']}) are not supported yet; "
            "export the model without calibrate_model"
        )
    if mojo.info.get("has_offset") is True:
        raise mojo.error("an offset column is not supported; train without offset_column")
    enc = _encoding(mojo)
    data = mojo.entries.get("boosterBytes")
    if data is None:
        raise mojo.error("the archive has no boosterBytes (the XGBoost booster)")
    try:
        booster = read_booster(data)
    except (ValueError, struct.error) as exc:
        raise mojo.error(str(exc)) from None
    if booster.objective not in OBJECTIVES:
        raise mojo.error(f"XGBoost objective {booster.objective!r} is not supported")
    if booster.kind != kind:
        raise mojo.error(f"model.ini says booster {kind!r}, its boosterBytes {booster.kind!r}")
    if booster.num_feature > enc.one_hot + enc.nums:
        raise mojo.error(
            f"the booster reads {booster.num_feature} features, but the encoding has "
            f"{enc.one_hot + enc.nums}"
        )
    n_inputs = enc.cats + enc.nums
    trees: list[list[Node]] = []
    per_group = [0] * booster.groups  # each output's trees so far: dart weights go by it
    for t, (nodes, out) in enumerate(zip(booster.trees, booster.tree_info, strict=True)):
        scale = None
        if booster.weight_drop is not None:
            k = per_group[out]
            if k >= booster.weight_drop.size:
                raise mojo.error(f"dart tree {t} has no weight")
            scale = float(booster.weight_drop[k])
        per_group[out] += 1
        try:
            trees.append(_lower(nodes, out, enc, scale, f"boosterBytes tree {t}"))
        except TreeEnsembleError as exc:
            raise mojo.error(str(exc)) from None
    if not trees:  # gblinear, or no trees: an ensemble of one zero leaf per output
        trees = [[Node(leaf=[(g, 0.0)])] for g in range(booster.groups)]
    margin = booster.base_margin()
    if not np.isfinite(margin):
        raise mojo.error(
            f"base score {booster.base_score!r} has no margin under {booster.objective}"
        )
    base = np.zeros(booster.groups) if booster.adds_base_last else np.full(booster.groups, margin)
    try:
        ensemble = TreeEnsemble.build(
            trees, n_inputs, booster.groups, base, float32=True, sum_float32=True
        )
    except TreeEnsembleError as exc:
        raise mojo.error(str(exc)) from None
    return XGBoostMojoScorer(mojo, booster, enc, ensemble)


def _encoding(mojo: Mojo) -> _Encoding:
    cats, nums = mojo.integer("cats"), mojo.integer("nums")
    n_features = mojo.integer("n_features")
    if cats < 0 or nums < 0 or cats + nums != n_features or n_features > len(mojo.columns):
        raise mojo.error(f"{cats} categorical and {nums} numeric inputs for {n_features} features")
    offsets = tuple(int(v) for v in mojo.numbers("cat_offsets", cats + 1))
    steps = np.diff(offsets)
    if offsets[0] != 0 or (steps < 1).any() or offsets[-1] > MAX_NODES:
        raise mojo.error(f"cat_offsets {list(offsets)[:10]} do not fit {cats} categorical columns")
    levels = []
    for c in range(cats):
        domain = mojo.domains[c]
        if domain is None:
            raise mojo.error(f"categorical input {mojo.columns[c]!r} has no levels")
        levels.append(len(domain))
    return _Encoding(
        cats,
        nums,
        offsets,
        mojo.info.get("use_all_factor_levels") is not False,
        mojo.info.get("sparse") is True,
        tuple(levels),
    )
