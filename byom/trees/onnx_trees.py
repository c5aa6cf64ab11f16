"""ONNX `TreeEnsembleRegressor` / `TreeEnsembleClassifier` graphs lowered to a TreeEnsemble.

Only the common exporter output lowers: one float or double [N, k] input, one ai.onnx.ml tree
ensemble node (opsets 1-3, attribute or `*_as_tensor` form), then nothing but nodes that do
not change the numbers (Identity, Cast to a float type or int64, Reshape to [-1, width],
Flatten, a `Mul` by the constant 1 as onnxmltools emits after LightGBM). Anything else returns
None and stays on onnxruntime. `LoweredOnnx.run` mirrors onnxruntime's own arithmetic (its
float32 sum in tree order, then the base values, its binary-classifier rules), so its results
agree with onnxruntime's to float32 rounding and its labels are the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from byom.trees.ensemble import (
    EQ,
    GE,
    GT,
    LE,
    LT,
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
_FLOAT, _DOUBLE, _INT64 = 1, 11, 7  # onnx.TensorProto element types


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
                found[name] = scores
        return [found[name] for name in wanted]


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
    except (TreeEnsembleError, ValueError, KeyError, IndexError, TypeError):
        return None


def _lower(model: Any) -> tuple[TreeEnsemble, LoweredOnnx] | None:
    graph = model.graph
    consts = _constants(graph)
    inputs = [i for i in graph.input if i.name not in consts]
    if len(inputs) != 1:
        return None
    inp = inputs[0]
    ttype = inp.type.tensor_type
    dims = ttype.shape.dim
    if (
        ttype.elem_type not in (_FLOAT, _DOUBLE)
        or len(dims) != 2
        or not dims[1].HasField("dim_value")
    ):
        return None
    width = int(dims[1].dim_value)
    trees_nodes = [n for n in graph.node if n.op_type.startswith("TreeEnsemble")]
    if len(trees_nodes) != 1:
        return None
    tree = trees_nodes[0]
    if tree.domain != "ai.onnx.ml" or tree.op_type not in (
        "TreeEnsembleRegressor",
        "TreeEnsembleClassifier",
    ):
        return None
    if list(tree.input) != [inp.name]:
        return None
    classifier = tree.op_type == "TreeEnsembleClassifier"
    # What each tensor is: the ensemble's label or scores, through value-preserving nodes.
    role: dict[str, str] = {}
    if classifier:
        role[tree.output[0]] = "label"
        if len(tree.output) > 1:
            role[tree.output[1]] = "scores"
    else:
        role[tree.output[0]] = "scores"
    for node in graph.node:
        if node is tree or node.op_type == "Constant":
            continue
        src = node.input[0] if node.input else ""
        if src not in role or len(node.output) != 1:
            return None
        if not _preserves(node, role[src], consts):
            return None
        role[node.output[0]] = role[src]
    outputs = {o.name: role.get(o.name, "") for o in graph.output}
    if not outputs or "" in outputs.values():
        return None
    a = _attrs(tree)
    return _build(a, classifier, inp.name, width, outputs)


def _preserves(node: Any, what: str, consts: dict[str, np.ndarray]) -> bool:
    op = node.op_type
    if node.domain not in ("", "ai.onnx"):
        return False
    if op in ("Identity", "Flatten"):
        return True
    if op == "Cast":
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        return to in ((_FLOAT, _DOUBLE) if what == "scores" else (_INT64,))
    if op == "Reshape" and what == "scores":
        shape = consts.get(node.input[1]) if len(node.input) > 1 else None
        return shape is not None and shape.ndim == 1 and shape.size == 2 and shape[0] == -1
    if op == "Mul" and what == "scores" and len(node.input) == 2:
        c = consts.get(node.input[1])
        return c is not None and c.size == 1 and float(c.reshape(-1)[0]) == 1.0
    return False


def _get(a: dict[str, Any], name: str, default: Any = None) -> Any:
    if name in a:
        return a[name]
    if name + "_as_tensor" in a:
        return a[name + "_as_tensor"]
    return default


def _build(
    a: dict[str, Any], classifier: bool, input_name: str, width: int, outputs: dict[str, str]
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
        outputs,
        labels,
        threshold,
        ensemble.n_trees if aggregate == "AVERAGE" else 0,
        base,
        np.float64 if double else np.float32,
    )
    return ensemble, meta


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
