"""NeuralNetwork: NeuralInputs, feed-forward NeuralLayers and NeuralOutputs, over whole columns.

Every neuron output of the batch lives in one (rows, neurons) matrix, inputs first, then each
layer's neurons. A layer is two index/weight matrices of shape (connections, neurons): step k
adds `values[:, index[k]] * weight[k]` for all neurons at once, so each neuron sums its
connections in the document's order (as JPMML and the producers do; a BLAS product would
reorder the sum, which shows at the corpus' 1e-15 tolerance), then adds its bias. Neurons with
fewer connections are padded with a weight 0 on a column of zeros. Connections may come from
any earlier neuron or input, not only from the previous layer.

Activation functions, threshold, width and altitude come from the layer, else the network
(a neuron's width overrides both); normalizationMethod likewise. A row with a missing
NeuralInput has no prediction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

import numpy as np

from byom.pmml.expressions import EXPRESSION_TAGS, as_type, compile_expression, linear_norm
from byom.pmml.models.base import ModelPlan, ModelResult, labels_from_probabilities
from byom.pmml.models.regression import sorted_classes
from byom.pmml.scope import Context, Expr, Scope
from byom.pmml.xml import child, children

_Activation = Callable[[np.ndarray], np.ndarray]

ACTIVATIONS = {
    "threshold",
    "logistic",
    "tanh",
    "identity",
    "exponential",
    "reciprocal",
    "square",
    "Gauss",
    "sine",
    "cosine",
    "Elliott",
    "arctan",
    "rectifier",
    "radialBasis",
}
NORMALIZATIONS = {"none", "simplemax", "softmax"}


def _activation(name: str, threshold: float, leakage: float) -> _Activation:
    if name == "threshold":
        return lambda z: np.where(np.isnan(z), np.nan, (z > threshold).astype(z.dtype))
    if name == "logistic":
        return lambda z: 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh
    if name == "identity":
        return lambda z: z
    if name == "exponential":
        return np.exp
    if name == "reciprocal":
        return lambda z: 1.0 / z
    if name == "square":
        return lambda z: z * z
    if name == "Gauss":
        return lambda z: np.exp(-(z * z))
    if name == "sine":
        return np.sin
    if name == "cosine":
        return np.cos
    if name == "Elliott":
        return lambda z: z / (1.0 + np.abs(z))
    if name == "arctan":
        return lambda z: 2.0 * np.arctan(z) / np.pi
    assert name == "rectifier"
    if leakage == 0.0:
        return lambda z: np.where(z > 0, z, 0.0 * z)
    return lambda z: np.where(z > 0, z, leakage * z)


@dataclass
class _Layer:
    #: (connections, neurons): global column of each connection's source, and its weight.
    index: np.ndarray
    weight: np.ndarray
    bias: np.ndarray
    #: First global column of this layer's neurons.
    offset: int
    activation: str
    function: _Activation | None
    normalization: str
    #: radialBasis: per neuron -2 * width^2, and fanIn * ln(altitude) (None when altitude 1).
    denominator: np.ndarray | None = None
    altitude_term: np.ndarray | None = None


def _number(ctx: Context, element: Element, attr: str, default: float | None) -> float | None:
    text = element.get(attr)
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        raise ctx.doc.invalid(element, f'has {attr}="{text}", which is not a number') from None


class NeuralNetworkModel(ModelPlan):
    def __init__(self, ctx: Context, element: Element) -> None:
        super().__init__(ctx, element)
        self.dtype: Any = np.float32 if self.float_math else np.float64
        network_activation = element.get("activationFunction")
        if network_activation is None:
            raise ctx.doc.invalid(element, "has no activationFunction")
        self.root = ctx.doc.root
        self.columns: dict[str, int] = {}
        self.inputs = self._read_inputs(ctx, element)
        self.layers: list[_Layer] = []
        for layer in children(element, "NeuralLayer"):
            self.layers.append(self._read_layer(ctx, element, layer))
        if not self.layers:
            raise ctx.doc.invalid(element, "has no NeuralLayer")
        self.width = len(self.columns)
        self._read_outputs(ctx, element)
        self.compile_outputs(ctx)

    # ------------------------------------------------------------------ compile

    def _declare_column(self, ctx: Context, element: Element, id_: str | None) -> int:
        if id_ is None:
            raise ctx.doc.invalid(element, "has no id")
        if id_ in self.columns:
            raise ctx.doc.invalid(element, f"repeats the id {id_!r}")
        self.columns[id_] = len(self.columns)
        return self.columns[id_]

    def _read_inputs(self, ctx: Context, element: Element) -> list[Expr]:
        inputs_element = child(element, "NeuralInputs")
        if inputs_element is None:
            raise ctx.doc.invalid(element, "has no NeuralInputs")
        inputs: list[Expr] = []
        for neural_input in children(inputs_element, "NeuralInput"):
            derived = child(neural_input, "DerivedField")
            if derived is None:
                raise ctx.doc.invalid(neural_input, "has no DerivedField")
            expression = next((c for c in derived if c.tag in EXPRESSION_TAGS), None)
            if expression is None:
                raise ctx.doc.invalid(derived, "has no expression")
            inputs.append(compile_expression(ctx, expression)[0])
            self._declare_column(ctx, neural_input, neural_input.get("id"))
        if not inputs:
            raise ctx.doc.invalid(inputs_element, "has no NeuralInput")
        return inputs

    def _read_layer(self, ctx: Context, network: Element, layer: Element) -> _Layer:
        def setting(attr: str, default: float | None) -> float | None:
            value = _number(ctx, layer, attr, None)
            return value if value is not None else _number(ctx, network, attr, default)

        activation = layer.get("activationFunction") or network.get("activationFunction", "")
        if activation not in ACTIVATIONS:
            raise ctx.doc.unsupported(layer, f'activationFunction="{activation}"')
        normalization = layer.get("normalizationMethod") or network.get(
            "normalizationMethod", "none"
        )
        if normalization not in NORMALIZATIONS:
            raise ctx.doc.unsupported(layer, f'normalizationMethod="{normalization}"')
        neurons = children(layer, "Neuron")
        if not neurons:
            raise ctx.doc.invalid(layer, "has no Neuron")
        known = len(self.columns)  # connections see only earlier neurons and inputs
        sources: list[list[tuple[int, float]]] = []
        bias = np.zeros(len(neurons))
        widths = np.full(len(neurons), np.nan)
        for j, neuron in enumerate(neurons):
            connections = []
            for con in children(neuron, "Con"):
                source = con.get("from")
                column = self.columns.get(source or "")
                if column is None or column >= known:
                    raise ctx.doc.invalid(
                        con, f"comes from {source!r}, which is no earlier neuron or input"
                    )
                value = _number(ctx, con, "weight", None)
                if value is None:
                    raise ctx.doc.invalid(con, "has no weight")
                connections.append((column, value))
            sources.append(connections)
            bias[j] = _number(ctx, neuron, "bias", 0.0) or 0.0
            width = _number(ctx, neuron, "width", None)
            if width is not None:
                widths[j] = width
        offset = len(self.columns)
        for neuron in neurons:
            self._declare_column(ctx, neuron, neuron.get("id"))
        depth = max(len(s) for s in sources)
        # Padding reads the zero column that `score` appends after all neurons.
        index = np.full((depth, len(neurons)), -1, dtype=np.intp)
        weight = np.zeros((depth, len(neurons)))
        for j, connections in enumerate(sources):
            for k, (column, w) in enumerate(connections):
                index[k, j] = column
                weight[k, j] = w
        plan = _Layer(index, weight, bias, offset, activation, None, normalization)
        if activation == "radialBasis":
            default_width = setting("width", None)
            if default_width is not None:
                widths = np.where(np.isnan(widths), default_width, widths)
            if np.isnan(widths).any():
                raise ctx.doc.invalid(layer, "uses radialBasis without a width")
            plan.denominator = widths * widths * -2.0
            altitude = setting("altitude", 1.0)
            assert altitude is not None
            if altitude != 1.0:
                fan_in = np.array([len(s) for s in sources], dtype=np.float64)
                plan.altitude_term = np.log(altitude) * fan_in
        else:
            threshold = setting("threshold", 0.0)
            leakage = setting("leakage", 0.0)
            assert threshold is not None and leakage is not None
            plan.function = _activation(activation, threshold, leakage)
        return plan

    def _output_expression(self, ctx: Context, derived: Element) -> Element:
        """The NeuralOutput's expression; a FieldRef to a derived field is followed to the
        derived field's own expression."""
        expression = next((c for c in derived if c.tag in EXPRESSION_TAGS), None)
        if expression is None:
            raise ctx.doc.invalid(derived, "has no expression")
        seen = 0
        while expression.tag == "FieldRef" and expression.get("field") != self.target:
            name = expression.get("field", "")
            found = self._find_derived(name)
            if found is None or seen > 50:
                raise ctx.doc.invalid(
                    expression, f"refers to {name!r}, which is neither the target nor derived"
                )
            inner = next((c for c in found if c.tag in EXPRESSION_TAGS), None)
            if inner is None:
                raise ctx.doc.invalid(found, "has no expression")
            expression, seen = inner, seen + 1
        return expression

    def _find_derived(self, name: str) -> Element | None:
        places = [child(self.element, "LocalTransformations")]
        places.append(child(self.root, "TransformationDictionary"))
        for place in places:
            if place is None:
                continue
            for derived in children(place, "DerivedField"):
                if derived.get("name") == name:
                    return derived
        return None

    def _read_outputs(self, ctx: Context, element: Element) -> None:
        outputs_element = child(element, "NeuralOutputs")
        if outputs_element is None:
            raise ctx.doc.invalid(element, "has no NeuralOutputs")
        self.value_column: int | None = None
        self.denormalize: tuple[np.ndarray, np.ndarray] | None = None
        class_columns: list[tuple[str, int]] = []
        for output in children(outputs_element, "NeuralOutput"):
            neuron = output.get("outputNeuron", "")
            if neuron not in self.columns:
                raise ctx.doc.invalid(output, f"names outputNeuron {neuron!r}, which is unknown")
            derived = child(output, "DerivedField")
            if derived is None:
                raise ctx.doc.invalid(output, "has no DerivedField")
            expression = self._output_expression(ctx, derived)
            field_name = expression.get("field")
            if field_name != self.target:
                raise ctx.doc.unsupported(expression, "a NeuralOutput for a field not the target")
            column = self.columns[neuron]
            if self.function == "regression":
                if expression.tag == "NormContinuous":
                    self.denormalize = self._inverse_norm(ctx, expression)
                elif expression.tag != "FieldRef":
                    raise ctx.doc.invalid(expression, "cannot map a neuron to a regression target")
                if self.value_column is not None:
                    raise ctx.doc.invalid(output, "is a second NeuralOutput for the target")
                self.value_column = column
            else:
                if expression.tag != "NormDiscrete":
                    raise ctx.doc.invalid(
                        expression, "cannot map a neuron to a class: NormDiscrete expected"
                    )
                value = expression.get("value")
                if value is None:
                    raise ctx.doc.invalid(expression, "has no value")
                label = self.canonical(value)
                if any(label == c for c, _ in class_columns):
                    raise ctx.doc.invalid(output, f"is a second NeuralOutput for class {label!r}")
                class_columns.append((label, column))
        if self.function == "regression" and self.value_column is None:
            raise ctx.doc.invalid(outputs_element, "maps no neuron to the target")
        if self.function == "classification":
            if not class_columns:
                raise ctx.doc.invalid(outputs_element, "maps no neuron to a class")
            if not self.classes:
                self.classes = tuple(sorted_classes([c for c, _ in class_columns], self))
            self.class_columns = [(self.classes.index(c), col) for c, col in class_columns
                                  if c in self.classes]  # fmt: skip

    def _inverse_norm(self, ctx: Context, element: Element) -> tuple[np.ndarray, np.ndarray]:
        orig, norm = linear_norm(ctx, element)
        if np.any(np.diff(norm) <= 0) or np.any(np.diff(orig) <= 0):
            raise ctx.doc.unsupported(element, "a NeuralOutput NormContinuous not increasing")
        return norm, orig

    # ------------------------------------------------------------------ evaluation

    def _values(self, scope: Scope) -> tuple[np.ndarray, np.ndarray]:
        """All neuron outputs (rows, neurons + 1 zero column), and the rows with a missing input."""
        n = scope.n
        dtype = self.dtype
        values = np.zeros((n, self.width + 1), dtype=dtype)
        for j, fn in enumerate(self.inputs):
            values[:, j] = as_type(fn(scope), "double")
        missing = np.asarray(np.isnan(values[:, : len(self.inputs)]).any(axis=1))
        with np.errstate(all="ignore"):
            for layer in self.layers:
                z = self._layer_input(values, layer)
                if layer.function is not None:
                    out = layer.function(z)
                else:  # radialBasis
                    assert layer.denominator is not None
                    out = z / layer.denominator.astype(dtype)
                    if layer.altitude_term is not None:
                        out = out + layer.altitude_term.astype(dtype)
                    out = np.exp(out)
                out = _normalize(layer.normalization, out.astype(dtype, copy=False))
                values[:, layer.offset : layer.offset + out.shape[1]] = out
        return values, missing

    @staticmethod
    def _layer_input(values: np.ndarray, layer: _Layer) -> np.ndarray:
        dtype = values.dtype
        z = np.zeros((values.shape[0], layer.index.shape[1]), dtype=dtype)
        radial = layer.function is None
        for k in range(layer.index.shape[0]):
            x = values[:, layer.index[k]]
            w = layer.weight[k].astype(dtype)
            if radial:
                d = x - w
                z += d * d
            else:
                z += x * w
        if not radial:
            z += layer.bias.astype(dtype)
        return z

    def score(self, scope: Scope) -> ModelResult:
        n = scope.n
        values, missing = self._values(scope)
        if self.function == "regression":
            assert self.value_column is not None
            y = values[:, self.value_column].copy()
            if self.denormalize is not None:
                y = _denormalize(y, *self.denormalize).astype(self.dtype, copy=False)
            y[missing] = np.nan
            return ModelResult(n, value=y)
        proba = np.zeros((n, len(self.classes)))
        for j, column in self.class_columns:
            proba[:, j] = values[:, column]
        proba[missing] = np.nan
        return ModelResult(
            n,
            labels=labels_from_probabilities(proba, self.classes),
            classes=self.classes,
            probabilities=proba,
        )


def _normalize(method: str, out: np.ndarray) -> np.ndarray:
    if method == "none":
        return out
    if method == "softmax":
        out = np.exp(out - out.max(axis=1, keepdims=True))
    total = out[:, 0].copy()
    for j in range(1, out.shape[1]):  # the neurons' order, as the document lists them
        total += out[:, j]
    return out / total[:, None]


def _denormalize(y: np.ndarray, norm: np.ndarray, orig: np.ndarray) -> np.ndarray:
    """The inverse of a NormContinuous: piecewise linear, extended beyond the outer points."""
    j = np.clip(np.searchsorted(norm, y, side="right") - 1, 0, len(norm) - 2)
    n0, n1, o0, o1 = norm[j], norm[j + 1], orig[j], orig[j + 1]
    return o0 + (y - n0) * (o1 - o0) / (n1 - n0)


def compile_neural_network(ctx: Context, element: Element) -> ModelPlan:
    return NeuralNetworkModel(ctx, element)
