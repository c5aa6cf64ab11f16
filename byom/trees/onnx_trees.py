"""ONNX tree-ensemble graphs lowered to a TreeEnsemble.

Only the common exporter output lowers: one float or double [N, k] input, one ai.onnx.ml tree
ensemble node, then a chain of nodes byom can mirror. The ensemble is `TreeEnsembleRegressor`
or `TreeEnsembleClassifier` (opsets 1-3, attribute or `*_as_tensor` form) or opset 5's
`TreeEnsemble` (thresholds, weights and members in the input's type; a `BRANCH_MEMBER` set
becomes, as onnxruntime runs it, a chain of `EQ` nodes when it has under 31 values in [0, 30],
else an `IN` split on int(x) when its values are integers in byom's category range). After
it: Identity, Cast (scores to float or double, labels to int64), Reshape to [-1, k], Flatten,
Add/Sub/Mul/Div with a constant (scalar or [k], either operand order), Sigmoid, Softmax on the
last axis, and a final ZipMap (its maps are given as the probability matrix, as the scorer
exposes ZipMap outputs). Anything else (MIN/MAX aggregates, SOFTMAX_ZERO and PROBIT, any post
transform of opset 5, float16, other nodes) returns None and stays on onnxruntime.

`LoweredOnnx.run` mirrors onnxruntime's own arithmetic: its float32 sum in tree order, then the
base values, its binary-classifier rules, then each trailing node in the tensor's own type
(elementwise arithmetic is exact; sigmoid and softmax are computed in double and rounded, where
onnxruntime uses approximations good to a few float32 ulps). Its results agree with
onnxruntime's to float32 rounding and its labels are the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from byom.trees.check import MAX_CATEGORY
from byom.trees.ensemble import (
    EQ,
    GE,
    GT,
    IN,
    LE,
    LT,
    MAX_NODES,
    MISSING_NAN,
    NAN_COMPARES,
    NEQ,
    Node,
    TreeEnsemble,
    TreeEnsembleError,
)

_MODES = {
    "BRANCH_LEQ": LE,
    "BRANCH_LT": LT,
    "BRANCH_GTE": GE,
    "BRANCH_GT": GT,
    "BRANCH_EQ": EQ,
    "BRANCH_NEQ": NEQ,
}
_POST = {"NONE": "none", "LOGISTIC": "logistic", "SOFTMAX": "softmax"}
#: opset 5's enums: modes (6 is BRANCH_MEMBER), aggregates, post transforms
_MODES_V5 = (LE, LT, GE, GT, EQ, NEQ)
_MEMBER = 6
_AGGREGATE_V5 = {0: "AVERAGE", 1: "SUM"}
_FLOAT, _DOUBLE, _INT64 = 1, 11, 7  # onnx.TensorProto element types
_DTYPES = {_FLOAT: np.float32, _DOUBLE: np.float64}
_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}
#: One trailing node: ("cast", dtype), ("sigmoid", None), ("softmax", None), or a _BINARY op
#: name with (constant, whether the constant is the first operand).
Step = tuple[str, Any]


@dataclasses.dataclass
class LoweredOnnx:
    """What `lower` found beside the ensemble: how to turn margins into the graph's outputs."""

    input_name: str
    width: int
    classifier: bool
    #: graph output name -> "label" or "scores"
    outputs: dict[str, str]
    labels: tuple[Any, ...] = ()
    #: binary classifier with one weight column: None, or its label threshold (0.5 or 0)
    binary_threshold: float | None = None
    average_trees: int = 0
    base: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    dtype: type = np.float32
    #: graph output name -> the trailing nodes between the ensemble and it, in order
    steps: dict[str, tuple[Step, ...]] = dataclasses.field(default_factory=dict)
    _sum_only: TreeEnsemble | None = None

    def run(self, ensemble: TreeEnsemble, wanted: Sequence[str], x: np.ndarray) -> list[Any]:
        """onnxruntime's outputs for the rows of `x` ([n, width] or [n] when width is 1)."""
        from byom.trees import kernel_margins

        if self._sum_only is None:  # the trees alone; the base is added as onnxruntime does
            self._sum_only = dataclasses.replace(
                ensemble, base=np.zeros(ensemble.n_outputs), aggregate="sum"
            )
        x = np.asarray(x).reshape(len(x), -1)
        columns = [np.asarray(x[:, j], dtype=np.float64) for j in range(self.width)]
        dt = self.dtype
        m: np.ndarray = kernel_margins(self._sum_only, columns).astype(dt)
        if self.average_trees:
            m = m / dt(self.average_trees)
        if len(self.base):
            m = m + self.base.astype(dt)
        post = ensemble.post_transform
        if self.binary_threshold is not None:
            s = m[:, 0]
            positive = s > dt(self.binary_threshold)
            if post == "logistic":
                p = 1.0 / (1.0 + np.exp(-s.astype(np.float64)))
                scores: np.ndarray = np.column_stack([1.0 - p, p]).astype(dt)
            else:
                scores = np.column_stack([1 - s, s]).astype(dt)
            label_index = positive.astype(np.int64)
        else:
            label_index = np.argmax(m, axis=1)
            scores = _transform(post, m.astype(np.float64)).astype(dt)
        found = {}
        for name in wanted:
            if self.outputs[name] == "label":
                found[name] = np.asarray(self.labels, dtype=object)[label_index].astype(
                    np.int64 if isinstance(self.labels[0], int) else str
                )
            else:
                found[name] = _apply(scores, self.steps.get(name, ()))
        return [found[name] for name in wanted]


def _apply(v: np.ndarray, steps: Sequence[Step]) -> np.ndarray:
    """The trailing nodes, each in the tensor's type as onnxruntime runs them."""
    with np.errstate(all="ignore"):  # inf and NaN come out as onnxruntime's do
        for op, arg in steps:
            if op == "cast":
                v = v.astype(arg)
            elif op == "sigmoid":
                v = _transform("logistic", v.astype(np.float64)).astype(v.dtype)
            elif op == "softmax":  # onnxruntime's order: exp(x - max), then times 1 / sum
                e = np.exp((v - v.max(axis=1, keepdims=True)).astype(np.float64)).astype(v.dtype)
                v = e * (v.dtype.type(1) / e.sum(axis=1, keepdims=True, dtype=v.dtype))
            else:
                c, first = arg
                v = np.asarray(_BINARY[op](c, v) if first else _BINARY[op](v, c))
    return v


def _transform(post: str, m: np.ndarray) -> np.ndarray:
    if post == "logistic":
        return np.asarray(1.0 / (1.0 + np.exp(-m)))
    if post == "softmax":
        e = np.exp(m - m.max(axis=1, keepdims=True))
        return np.asarray(e / e.sum(axis=1, keepdims=True))
    return m


def _attrs(node: Any) -> dict[str, Any]:
    from onnx import helper, numpy_helper

    out: dict[str, Any] = {}
    for a in node.attribute:
        if a.type == 4:  # TENSOR
            out[a.name] = numpy_helper.to_array(a.t)
        else:
            out[a.name] = helper.get_attribute_value(a)
    return out


def _constants(graph: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    found = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            found[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return found


def lower(model: Any) -> tuple[TreeEnsemble, LoweredOnnx] | None:
    """The ensemble and how to score it, or None for any graph this does not cover (whatever
    the reason: such a graph stays on onnxruntime)."""
    try:
        return _lower(model)
    except (TreeEnsembleError, ValueError, KeyError, IndexError, TypeError, ArithmeticError):
        return None


@dataclasses.dataclass(frozen=True)
class _Value:
    """A tensor downstream of the ensemble: its label or scores after `steps`."""

    kind: str  # "label", "scores", or "map" (ZipMap's maps, given as the scores)
    dtype: Any
    steps: tuple[Step, ...] = ()


def _lower(model: Any) -> tuple[TreeEnsemble, LoweredOnnx] | None:
    graph = model.graph
    consts = _constants(graph)
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        return None
    inp = inputs[0]
    ttype = inp.type.tensor_type
    dims = ttype.shape.dim
    if ttype.elem_type not in _DTYPES or len(dims) != 2 or not dims[1].HasField("dim_value"):
        return None
    width = int(dims[1].dim_value)
    trees_nodes = [n for n in graph.node if n.op_type.startswith("TreeEnsemble")]
    if len(trees_nodes) != 1:
        return None
    tree = trees_nodes[0]
    if tree.domain != "ai.onnx.ml" or list(tree.input) != [inp.name]:
        return None
    a = _attrs(tree)
    dtype = _DTYPES[ttype.elem_type]
    if tree.op_type == "TreeEnsemble":
        built = _build_v5(a, dtype, inp.name, width)
    elif tree.op_type in ("TreeEnsembleRegressor", "TreeEnsembleClassifier"):
        built = _build(a, tree.op_type == "TreeEnsembleClassifier", inp.name, width)
    else:
        return None
    if built is None:
        return None
    ensemble, meta = built
    # What each tensor is: the ensemble's label or scores, through the nodes byom mirrors.
    values: dict[str, _Value] = {}
    if meta.classifier:
        values[tree.output[0]] = _Value("label", np.int64)
        if len(tree.output) > 1:
            values[tree.output[1]] = _Value("scores", meta.dtype)
    else:
        values[tree.output[0]] = _Value("scores", meta.dtype)
    columns = len(meta.labels) if meta.classifier else ensemble.n_outputs
    for node in graph.node:
        if node is tree or node.op_type == "Constant":
            continue
        found = _follow(node, values, consts, columns)
        if found is None:
            return None
        values[node.output[0]] = found
    outputs = {o.name: values[o.name] for o in graph.output if o.name in values}
    if not outputs or len(outputs) != len(graph.output):
        return None
    meta.outputs = {k: "label" if v.kind == "label" else "scores" for k, v in outputs.items()}
    meta.steps = {k: v.steps for k, v in outputs.items() if v.steps}
    return ensemble, meta


def _follow(
    node: Any, values: dict[str, _Value], consts: dict[str, np.ndarray], columns: int
) -> _Value | None:
    """What `node` makes of the one ensemble tensor it reads, or None when byom cannot mirror
    it (so the graph stays on onnxruntime)."""
    tracked = [name for name in node.input if name in values]
    if len(tracked) != 1 or len(node.output) != 1 or node.input[0] == "":
        return None
    v = values[tracked[0]]
    op = node.op_type
    if op == "ZipMap":  # ai.onnx.ml; the scorer strips it and reads its input instead
        ok = node.domain == "ai.onnx.ml" and v.kind == "scores" and v.dtype == np.float32
        return _Value("map", v.dtype, v.steps) if ok and len(node.input) == 1 else None
    if node.domain not in ("", "ai.onnx") or v.kind == "map":
        return None
    attrs = {x.name: x for x in node.attribute}
    if op == "Identity" and len(node.input) == 1:
        return v
    if op == "Flatten" and len(node.input) == 1:
        axis = attrs["axis"].i if "axis" in attrs else 1
        return v if axis == 1 or (v.kind == "scores" and axis == -1) else None
    if op == "Cast" and "to" in attrs:
        to = attrs["to"].i
        if v.kind == "label":
            return v if to == _INT64 else None
        if to not in _DTYPES:
            return None
        steps = v.steps if _DTYPES[to] == v.dtype else (*v.steps, ("cast", _DTYPES[to]))
        return _Value(v.kind, _DTYPES[to], steps)
    if v.kind != "scores":
        return None
    if op == "Reshape" and len(node.input) == 2 and node.input[0] == tracked[0]:
        shape = consts.get(node.input[1])
        if shape is None or shape.shape != (2,):
            return None
        return v if shape[0] == -1 and shape[1] == columns else None
    if op in ("Sigmoid", "Softmax") and len(node.input) == 1:
        if op == "Softmax" and (attrs["axis"].i if "axis" in attrs else -1) not in (1, -1):
            return None
        return _Value(v.kind, v.dtype, (*v.steps, (op.lower(), None)))
    if op in _BINARY and len(node.input) == 2:
        first = node.input[1] == tracked[0]
        c = consts.get(node.input[0] if first else node.input[1])
        if c is None or c.dtype != v.dtype or node.input[0] == node.input[1]:
            return None
        # the constant must broadcast into [N, columns] without changing its shape
        if c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1):
            return None
        if c.ndim and c.shape[-1] not in (1, columns):
            return None
        return _Value(v.kind, v.dtype, (*v.steps, (op, (c.reshape(c.shape[-1:]), first))))
    return None


def _get(a: dict[str, Any], name: str, default: Any = None) -> Any:
    if name in a:
        return a[name]
    if name + "_as_tensor" in a:
        return a[name + "_as_tensor"]
    return default


def _build(
    a: dict[str, Any], classifier: bool, input_name: str, width: int
) -> tuple[TreeEnsemble, LoweredOnnx] | None:
    post = _POST.get(_text(a.get("post_transform", b"NONE")))
    if post is None:
        return None
    aggregate = _text(a.get("aggregate_function", b"SUM"))
    if aggregate not in ("SUM", "AVERAGE") or (classifier and aggregate != "SUM"):
        return None
    values = np.asarray(_get(a, "nodes_values", []))
    # attributes are float32; only a `*_as_tensor` of doubles makes onnxruntime compute in double
    double = "nodes_values_as_tensor" in a and values.dtype == np.float64
    tensors = [k for k in a if k.endswith("_as_tensor")]
    if any(np.asarray(a[k]).dtype != (np.float64 if double else np.float32) for k in tensors):
        return None  # mixed precisions: leave to onnxruntime
    tree_ids = list(a["nodes_treeids"])
    node_ids = list(a["nodes_nodeids"])
    features = list(a["nodes_featureids"])
    modes = [_text(m) for m in a["nodes_modes"]]
    yes_ids = list(a["nodes_truenodeids"])
    no_ids = list(a["nodes_falsenodeids"])
    n = len(tree_ids)
    tracks = list(a.get("nodes_missing_value_tracks_true", [])) or [0] * n
    if not all(len(v) == n for v in (node_ids, features, modes, yes_ids, no_ids, tracks, values)):
        return None
    prefix = "class" if classifier else "target"
    w_trees = list(a[f"{prefix}_treeids"])
    w_nodes = list(a[f"{prefix}_nodeids"])
    w_ids = list(a[f"{prefix}_ids"])
    w_vals = np.asarray(_get(a, f"{prefix}_weights"))
    if classifier:
        labels: tuple[Any, ...] = tuple(int(v) for v in a.get("classlabels_int64s", [])) or tuple(
            s.decode() for s in a.get("classlabels_strings", [])
        )
        if not labels:
            return None
        n_outputs = len(labels)
    else:
        labels = ()
        n_outputs = int(a.get("n_targets", 1))
    # trees in order of first appearance, nodes by (tree id, node id)
    order: dict[int, int] = {}
    where: dict[tuple[int, int], tuple[int, int]] = {}
    trees: list[list[Node]] = []
    for i in range(n):
        t = order.setdefault(tree_ids[i], len(order))
        if t == len(trees):
            trees.append([])
        where[(tree_ids[i], node_ids[i])] = (t, len(trees[t]))
        trees[t].append(Node())
    for i in range(n):
        t, k = where[(tree_ids[i], node_ids[i])]
        node = trees[t][k]
        if modes[i] == "LEAF":
            continue
        if modes[i] not in _MODES:
            return None
        yes = where[(tree_ids[i], yes_ids[i])][1]
        no = where[(tree_ids[i], no_ids[i])][1]
        node.feature = int(features[i])
        node.threshold = float(values[i])
        node.op = _MODES[modes[i]]
        node.yes, node.no = yes, no
        if tracks[i]:
            node.missing, node.missing_kind = yes, MISSING_NAN
        else:
            node.missing, node.missing_kind = no, NAN_COMPARES
    used = sorted(set(int(c) for c in w_ids))
    binary_single = classifier and n_outputs == 2 and len(used) == 1
    for tid, nid, cid, w in zip(w_trees, w_nodes, w_ids, w_vals, strict=True):
        t, k = where[(tid, nid)]
        if trees[t][k].feature != -1:
            return None
        trees[t][k].leaf.append((0 if binary_single else int(cid), float(w)))
    if not _always_scored(trees, 1 if binary_single else n_outputs):
        return None
    base = np.asarray(_get(a, "base_values", []), dtype=np.float64)
    threshold: float | None = None
    if binary_single:
        if len(base) > 1:
            return None
        positive = bool(np.all(w_vals >= 0))
        if post == "logistic" and positive:
            return None  # onnxruntime writes [1-m, m] untransformed there: leave it to it
        if post not in ("logistic", "none") or (post == "none" and not positive):
            return None
        threshold = 0.5 if positive else 0.0
        n_outputs = 1
    elif classifier and len(base) not in (0, n_outputs):
        return None
    if len(base) not in (0, n_outputs):
        return None
    ensemble = TreeEnsemble.build(
        trees,
        width,
        n_outputs,
        base if len(base) else None,
        float32=not double,
        sum_float32=not double,
        aggregate="average" if aggregate == "AVERAGE" else "sum",
        post_transform=post,
    )
    if aggregate == "AVERAGE":  # onnxruntime divides by every tree, not those adding to it
        ensemble.trees_per_output = np.full(n_outputs, float(ensemble.n_trees))
    meta = LoweredOnnx(
        input_name,
        width,
        classifier,
        {},
        labels,
        threshold,
        ensemble.n_trees if aggregate == "AVERAGE" else 0,
        base,
        np.float64 if double else np.float32,
    )
    return ensemble, meta


def _build_v5(
    a: dict[str, Any], dtype: type, input_name: str, width: int
) -> tuple[TreeEnsemble, LoweredOnnx] | None:
    """Opset 5's `TreeEnsemble`: interior nodes and leaves in separate arrays, trees given by
    their roots. onnxruntime computes it in the input's type, like the older nodes' `*_as_tensor`
    form, with no base values."""
    aggregate = _AGGREGATE_V5.get(int(a.get("aggregate_function", 1)))
    if aggregate is None or int(a.get("post_transform", 0)) != 0:
        # MIN and MAX; and every post transform: onnxruntime 1.32 reads 1 as LOGISTIC and 2 as
        # SOFTMAX (the spec has them the other way round) and skips LOGISTIC on one target
        # (onnxruntime#26596), so what it computes is not settled. A Sigmoid or Softmax node
        # after the ensemble lowers instead.
        return None
    splits = np.asarray(a["nodes_splits"])
    weights = np.asarray(a["leaf_weights"])
    members = np.asarray(a.get("membership_values", np.zeros(0, dtype)))
    modes = np.asarray(a["nodes_modes"])
    if modes.dtype != np.uint8 or any(v.dtype != dtype for v in (splits, weights, members)):
        return None
    features = list(a["nodes_featureids"])
    n = len(features)
    tracks = list(a.get("nodes_missing_value_tracks_true", [])) or [0] * n
    links = [list(a[k]) for k in ("nodes_truenodeids", "nodes_trueleafs")]
    links += [list(a[k]) for k in ("nodes_falsenodeids", "nodes_falseleafs")]
    targets = list(a["leaf_targetids"])
    if splits.ndim != 1 or members.ndim > 1 or len(weights.reshape(-1)) != len(targets):
        return None
    if any(size != n for size in (len(splits), modes.size, len(tracks), *map(len, links))):
        return None
    sets = _member_sets(modes.reshape(-1), members.reshape(-1))
    if sets is None:
        return None
    leaves = [
        Node(leaf=[(int(t), float(w))]) for t, w in zip(targets, weights.reshape(-1), strict=True)
    ]
    nodes = _Nodes5(features, splits.tolist(), modes.reshape(-1).tolist(), tracks, links, sets)
    budget = min(MAX_NODES, 16 * (n + len(leaves)) + 4096)
    trees = []
    for root in a["tree_roots"]:
        tree = nodes.tree(int(root), leaves, budget)
        if tree is None:
            return None
        budget -= len(tree)
        trees.append(tree)
    n_targets = int(a.get("n_targets", 0))
    double = dtype == np.float64
    ensemble = TreeEnsemble.build(
        trees,
        width,
        n_targets,
        float32=not double,
        sum_float32=not double,
        aggregate="average" if aggregate == "AVERAGE" else "sum",
    )
    if aggregate == "AVERAGE":  # onnxruntime divides by every tree, not those adding to it
        ensemble.trees_per_output = np.full(n_targets, float(ensemble.n_trees))
    average = ensemble.n_trees if aggregate == "AVERAGE" else 0
    return ensemble, LoweredOnnx(input_name, width, False, {}, average_trees=average, dtype=dtype)


def _member_sets(modes: np.ndarray, members: np.ndarray) -> dict[int, list[float]] | None:
    """Each BRANCH_MEMBER node's values: `membership_values` holds them in node order, each set
    ended by NaN. None when a set is empty or one byom cannot test as onnxruntime does."""
    ends = np.flatnonzero(np.isnan(members)).tolist()
    if len(members) and not np.isnan(members[-1]):
        ends.append(len(members))  # the last set may end the array without a NaN
    member_nodes = np.flatnonzero(modes == _MEMBER)
    if len(member_nodes) > len(ends):
        return None
    sets = {}
    for k, i in enumerate(member_nodes):
        values = members[(ends[k - 1] + 1 if k else 0) : ends[k]].tolist()
        if not values:
            return None
        whole = 0 <= min(values) <= max(values) < MAX_CATEGORY and all(v == int(v) for v in values)
        if not _small(values) and not whole:
            return None  # onnxruntime would test int(x) against non-integers or negatives
        sets[int(i)] = values
    return sets


def _small(values: list[float]) -> bool:
    """onnxruntime's rule: a set it unrolls into `x == v` tests (else it tests int(x))."""
    return len(values) < 31 and max(values) <= 30 and min(values) >= 0


@dataclasses.dataclass
class _Nodes5:
    """Opset 5's interior nodes, unrolled into byom's trees one root at a time."""

    features: list[int]
    splits: list[float]
    modes: list[int]
    tracks: list[int]
    #: true node ids, true-is-leaf flags, false node ids, false-is-leaf flags
    links: list[list[int]]
    sets: dict[int, list[float]]

    def tree(self, root: int, leaves: list[Node], budget: int) -> list[Node] | None:
        """The tree under `root`, or None when it is malformed or would take more than
        `budget` nodes (a subtree shared, or under a small BRANCH_MEMBER set, is copied once
        per path to it, as onnxruntime does)."""
        out: list[Node] = []
        # (index, is a leaf, parent in `out` or -1, whether the parent's yes child)
        stack: list[tuple[int, bool, int, bool]] = [(root, False, -1, False)]
        while stack:
            i, is_leaf, parent, yes = stack.pop()
            if not 0 <= i < (len(leaves) if is_leaf else len(self.features)):
                return None
            t_id, t_leaf, f_id, f_leaf = (0,) * 4 if is_leaf else (v[i] for v in self.links)
            if not is_leaf and t_leaf and f_leaf and t_id == f_id:
                i, is_leaf = t_id, True  # a split whose two sides are one leaf is that leaf
                if not 0 <= i < len(leaves):
                    return None
            first = len(out)
            if parent >= 0:
                setattr(out[parent], "yes" if yes else "no", first)
            if is_leaf:
                out.append(dataclasses.replace(leaves[i]))
                continue
            feature, mode, tracks = int(self.features[i]), int(self.modes[i]), self.tracks[i] == 1
            if feature < 0 or mode > _MEMBER:
                return None
            values = self.sets.get(i, [])
            if mode != _MEMBER:
                chain = [Node(feature, float(self.splits[i]), _MODES_V5[mode])]
            elif _small(values):
                chain = [Node(feature, float(v), EQ) for v in values]  # x == v, as onnxruntime
            else:
                chain = [Node(feature, min(values), IN, categories=tuple(map(int, values)))]
            for k, node in enumerate(chain):
                node.missing_kind = MISSING_NAN if tracks else NAN_COMPARES
                if k + 1 < len(chain):
                    node.no = first + k + 1
                stack.append((t_id, bool(t_leaf), first + k, True))
            out.extend(chain)
            stack.append((f_id, bool(f_leaf), len(out) - 1, False))
            if len(out) + len(stack) > budget:
                return None
        for node in out:
            if node.feature >= 0:
                node.missing = node.yes if node.missing_kind == MISSING_NAN else node.no
        return out


def _always_scored(trees: list[list[Node]], n_outputs: int) -> bool:
    """Every output receives a weight on every row: onnxruntime writes 0 (not the base) for an
    output no reached leaf adds to, and skips it in the argmax, which margins cannot show."""
    covered: set[int] = set()
    for tree in trees:
        leaves = [set(o for o, _ in node.leaf) for node in tree if node.feature == -1]
        if leaves:
            covered |= set.intersection(*leaves)
    return covered >= set(range(n_outputs))


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
