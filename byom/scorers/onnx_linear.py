"""ONNX graphs that are one linear function of one input tensor, `x @ W + b` (MatMul then Add,
or Gemm), optionally through a Sigmoid, scored by numpy instead of onnxruntime.

Why: a table of a thousand such models (one logistic regression per store, per region...)
names a different model every few rows. onnxruntime costs some microseconds per call whatever
the rows, so byom scores the rows of all such models of one shape together, in one numpy pass
with each row's own weights (`scores` with per-row weight rows). The single-model path uses the
same function, so a row's score is the same whichever way it is computed; a lowered graph is
kept only if it matches onnxruntime on probe rows within 1e-5 of the value (float32 sums in
another order; `OnnxScorer` checks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from byom.scorers.base import ModelFamily, Prediction, Scorer


@dataclass(frozen=True)
class LinearGraph:
    """`link(x @ weights + bias)` on the input tensor `input_name` of `width` columns, in
    float32 (the graph's type), as the graph's one output `output_name`, of shape [N, 1]."""

    input_name: str
    output_name: str
    weights: np.ndarray  # float32 [width]
    bias: np.float32
    link: str  # "identity" or "logistic"

    @property
    def family(self) -> tuple[object, ...]:
        """Graphs scored together share this: same input and output names, width and link."""
        return ("onnx-linear", self.input_name, self.output_name, len(self.weights), self.link)


class LinearFamily(ModelFamily):
    """Linear graphs of one `LinearGraph.family`: every member's weights in one table, so a
    batch naming many models is one gather of each row's weights and one `scores` pass."""

    def __init__(self, template: LinearGraph) -> None:
        super().__init__()
        self._input, self._link = template.input_name, template.link
        self._weights = np.empty((16, len(template.weights)), np.float32)
        self._bias = np.empty(16, np.float32)

    def _put(self, index: int, scorer: Scorer) -> None:
        graph: LinearGraph = scorer._linear  # type: ignore[attr-defined]
        if index == len(self._bias):  # grow by doubling; readers keep the arrays they read
            weights = np.empty((2 * index, self._weights.shape[1]), np.float32)
            weights[:index] = self._weights
            bias = np.empty(2 * index, np.float32)
            bias[:index] = self._bias
            self._weights, self._bias = weights, bias
        self._weights[index] = graph.weights
        self._bias[index] = graph.bias

    def _release(self, index: int) -> None:
        pass  # a few floats, overwritten by the next member given this index

    def predict(
        self, members: np.ndarray, features: dict[str, np.ndarray], full: bool = True
    ) -> Prediction:
        weights, bias = self._weights, self._bias  # arrays a concurrent add may replace
        values = scores(features[self._input], weights, bias, self._link, rows=members)
        return self.scorer(int(members[0])).regression(values)  # type: ignore[attr-defined]


def scores(
    x: np.ndarray,
    weights: np.ndarray,
    bias: np.ndarray | np.float32,
    link: str,
    rows: np.ndarray | None = None,
) -> Any:
    """float32 [n]: link(sum_j x[:, j] * weights[..., j] + bias), where `weights` is one row
    for every row (and `bias` one value), or, with `rows`, a table of several models' weights
    (and biases) that row i reads at rows[i]. Each row takes the same float32 operations in the
    same order either way."""
    x = x.astype(np.float32, copy=False)
    if rows is None:
        products = np.multiply(x, weights, dtype=np.float32)
    else:  # each row's weights gathered into a new array, multiplied in place
        products = weights.take(rows, axis=0)
        np.multiply(x, products, out=products)
        bias = bias.take(rows)
    z = products.sum(axis=1, dtype=np.float32) + bias
    if link == "logistic":
        with np.errstate(over="ignore"):  # exp(large) is inf: the logistic is then 0
            return (np.float32(1) / (np.float32(1) + np.exp(-z))).astype(np.float32)
    return z.astype(np.float32, copy=False)


def lower(model: Any) -> LinearGraph | None:
    """The graph as a LinearGraph, or None unless it is exactly: one float input [N, width],
    MatMul by a constant [width, 1] then Add of a constant of one value (or Gemm with both,
    alpha = beta = 1), then an optional Sigmoid, giving the one output."""
    graph = model.graph
    if len(graph.input) - _initialized(graph) != 1 or len(graph.output) != 1:
        return None
    inputs = [i for i in graph.input if i.name not in {t.name for t in graph.initializer}]
    x = inputs[0]
    if x.type.tensor_type.elem_type != 1:  # FLOAT
        return None
    dims = x.type.tensor_type.shape.dim
    if len(dims) != 2 or not dims[1].HasField("dim_value"):
        return None
    width = dims[1].dim_value
    constants = {t.name: t for t in graph.initializer}
    nodes = list(graph.node)
    weights, bias, link = None, None, "identity"
    current = x.name
    while nodes:
        node = nodes.pop(0)
        if list(node.input[:1]) != [current] or len(node.output) != 1:
            return None
        if node.op_type == "MatMul" and weights is None and len(node.input) == 2:
            weights = _constant(constants, node.input[1], (width, 1))
        elif node.op_type == "Gemm" and weights is None and len(node.input) == 3:
            attrs = {a.name: a for a in node.attribute}
            if any(attrs[n].f != 1.0 for n in ("alpha", "beta") if n in attrs):
                return None
            if "transA" in attrs and attrs["transA"].i:
                return None
            shape = (1, width) if "transB" in attrs and attrs["transB"].i else (width, 1)
            weights = _constant(constants, node.input[1], shape)
            bias = _constant(constants, node.input[2], None)
        elif node.op_type == "Add" and weights is not None and bias is None:
            bias = _constant(constants, node.input[1], None)
        elif node.op_type == "Sigmoid" and weights is not None and link == "identity":
            link = "logistic"
        else:
            return None
        if weights is None or (node.op_type in ("Add", "Gemm") and bias is None):
            return None
        current = node.output[0]
    if weights is None or current != graph.output[0].name:
        return None
    if bias is not None and bias.size != 1:
        return None
    return LinearGraph(
        x.name,
        current,
        weights.reshape(-1).astype(np.float32),
        np.float32(0 if bias is None else bias.reshape(-1)[0]),
        link,
    )


def _initialized(graph: Any) -> int:
    names = {t.name for t in graph.initializer}
    return sum(1 for i in graph.input if i.name in names)


def _constant(constants: dict[str, Any], name: str, shape: tuple[int, int] | None) -> Any:
    """A float32 initializer's values (of `shape` when given, transposed to [width, 1]), or
    None."""
    from onnx import numpy_helper

    tensor = constants.get(name)
    if tensor is None or tensor.data_type != 1:  # FLOAT
        return None
    values = numpy_helper.to_array(tensor)
    if shape is not None:
        if values.shape != shape:
            return None
        return values.reshape(-1, 1) if shape[0] == 1 else values
    return values if values.size == 1 else None
