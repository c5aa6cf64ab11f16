"""What every compiled model has: MiningSchema, LocalTransformations, Targets and Output."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

import numpy as np

from byom.pmml.expressions import EXPRESSION_TAGS, as_type, compile_derived_fields
from byom.pmml.expressions import compile_expression as compile_expr
from byom.pmml.fields import MiningFieldPlan, read_mining_schema
from byom.pmml.scope import Context, Expr, Scope
from byom.pmml.xml import child, children

#: Output features every model type computes (`ModelPlan._output`).
OUTPUT_FEATURES = frozenset(
    {
        "predictedValue",
        "predictedDisplayValue",
        "probability",
        "transformedValue",
        "decision",
        "entityId",
    }
)


@dataclass
class ModelResult:
    """One model's predictions for a batch, before its Output."""

    n: int
    #: Numeric prediction (regression), NaN where there is none.
    value: np.ndarray | None = None
    #: Predicted class labels as text (classification), None where there is none.
    labels: np.ndarray | None = None
    classes: tuple[str, ...] = ()
    #: (n, len(classes)) probabilities, NaN where there is no prediction.
    probabilities: np.ndarray | None = None
    #: Tree node ids (entityId), when the model has them.
    entities: np.ndarray | None = None
    #: Output fields of the segments a model chain (or selectFirst) reports, as JPMML nests
    #: them: the last segment's probabilities of an XGBoost or LightGBM export.
    nested: dict[str, np.ndarray] | None = None


def canonical_label(text: str, numeric: bool) -> str:
    """Class labels as text: "1.0" and "1" name the same class of a numeric target."""
    if not numeric:
        return text
    try:
        v = float(text)
    except ValueError:
        return text
    return str(int(v)) if v.is_integer() else repr(v)


@dataclass
class OutputFieldPlan:
    name: str
    feature: str
    data_type: str | None
    value: str | None
    final: bool
    expression: Expr | None = None


@dataclass
class TargetPlan:
    factor: float = 1.0
    constant: float = 0.0
    low: float | None = None
    high: float | None = None
    cast: str | None = None
    display: dict[str, str] = field(default_factory=dict)
    #: TargetValue values, in order: a classifier's classes when given.
    values: list[str] = field(default_factory=list)


class ModelPlan:
    """A compiled model. Subclasses implement `score`; `evaluate` wraps it with the parts every
    model shares. Register a subclass's compile function in byom.pmml.models.MODEL_TYPES."""

    function: str
    target: str | None
    target_type: str
    classes: tuple[str, ...]
    mining: list[MiningFieldPlan]
    local: dict[str, Expr]
    outputs: list[OutputFieldPlan]
    targets: TargetPlan | None
    float_math: bool

    def __init__(self, ctx: Context, element: Element) -> None:
        self.element = element
        self.function = element.get("functionName", "")
        if self.function not in getattr(self, "FUNCTIONS", ("regression", "classification")):
            raise ctx.doc.unsupported(element, f'functionName="{self.function}"')
        # JPMML's x-mathContext="float" holds for the element that carries it, not its segments.
        self.float_math = element.get("x-mathContext", "") == "float"
        self.mining = read_mining_schema(ctx.doc, element)
        for plan in self.mining:
            if plan.name not in ctx.types:
                raise ctx.doc.invalid(
                    element, f"has MiningField {plan.name!r}, which is not a known field"
                )
        targets = [p.name for p in self.mining if p.usage in ("target", "predicted")]
        self.target = targets[0] if targets else None
        self.target_type = ctx.type_of(self.target) if self.target else "string"
        spec = ctx.fields.get(self.target or "")
        self.classes = ()
        if self.function == "classification" and spec is not None and spec.valid:
            self.classes = tuple(self.canonical(v) for v in spec.valid)
        self.treatments = {
            p.name: (p, ctx.fields.get(p.name)) for p in self.mining if p.changes_values
        }
        self.local = compile_derived_fields(ctx, child(element, "LocalTransformations"))
        self.targets = _read_targets(ctx, element)
        if self.function == "classification" and self.targets and self.targets.values:
            self.classes = tuple(self.canonical(v) for v in self.targets.values)
        self.outputs = []

    @property
    def numeric_target(self) -> bool:
        return self.target_type != "string"

    def canonical(self, text: str) -> str:
        return canonical_label(text, self.numeric_target)

    def compile_outputs(self, ctx: Context, extra: dict[str, str] | None = None) -> None:
        """Read the Output after the model body, so expressions may name the model's fields.

        `extra` lists the features a model type computes in its own `_output` beyond the shared
        ones, each with its default dataType."""
        extra = extra or {}
        output = child(self.element, "Output")
        if output is None:
            return
        for element in children(output, "OutputField"):
            name = element.get("name", "")
            feature = element.get("feature", "predictedValue")
            if feature not in OUTPUT_FEATURES and feature not in extra:
                raise ctx.doc.unsupported(element, f'OutputField feature="{feature}"')
            if element.get("segmentId") is not None:
                raise ctx.doc.unsupported(element, "OutputField segmentId")
            plan = OutputFieldPlan(
                name,
                feature,
                element.get("dataType"),
                element.get("value"),
                element.get("isFinalResult", "true") != "false",
            )
            default_type = extra.get(feature, self.target_type)
            if feature in ("transformedValue", "decision"):
                expr = next((c for c in element if c.tag in EXPRESSION_TAGS), None)
                if expr is None:
                    raise ctx.doc.invalid(element, "has no expression")
                plan.expression, default_type = compile_expr(ctx, expr)
            if feature == "probability":
                default_type = "double"
            elif feature == "entityId":
                default_type = "string"
            ctx.declare(name, plan.data_type or default_type, element.get("optype", ""))
            self.outputs.append(plan)

    # ------------------------------------------------------------------ evaluation

    def score(self, scope: Scope) -> ModelResult:
        raise NotImplementedError

    def evaluate(self, scope: Scope) -> tuple[ModelResult, dict[str, np.ndarray]]:
        """Score and compute the Output; the output columns are set into the model's scope."""
        inner = Scope(scope.n, scope, self.local, self.treatments)
        result = self.score(inner)
        if self.targets is not None and result.value is not None:
            result.value = self._rescale(result.value)
        values: dict[str, np.ndarray] = {}
        for plan in self.outputs:
            column = self._output(plan, result, inner)
            if plan.data_type:
                column = as_type(column, plan.data_type)
            inner.set(plan.name, column)
            values[plan.name] = column
        return result, values

    def _rescale(self, value: np.ndarray) -> np.ndarray:
        """Targets, in JPMML's order: clamp to min / max, multiply, add, then castInteger."""
        t = self.targets
        assert t is not None
        dtype: Any = np.float32 if self.float_math else np.float64
        out: Any = value.astype(dtype, copy=False)
        if t.low is not None or t.high is not None:
            low = -np.inf if t.low is None else t.low
            high = np.inf if t.high is None else t.high
            out = np.clip(out, dtype(low), dtype(high))
        if t.factor != 1.0:
            out = out * dtype(t.factor)
        if t.constant != 0.0:
            out = out + dtype(t.constant)
        if t.cast == "round":
            out = np.floor(out + dtype(0.5))
        elif t.cast == "ceiling":
            out = np.ceil(out)
        elif t.cast == "floor":
            out = np.floor(out)
        return out.astype(dtype, copy=False)

    def _output(self, plan: OutputFieldPlan, result: ModelResult, scope: Scope) -> np.ndarray:
        n = result.n
        if plan.feature in ("predictedValue", "predictedDisplayValue"):
            if result.value is not None:
                return result.value
            labels = result.labels if result.labels is not None else np.full(n, None, object)
            if plan.feature == "predictedDisplayValue" and self.targets and self.targets.display:
                shown = self.targets.display
                return np.array([shown.get(v, v) if v is not None else None for v in labels])
            return labels
        if plan.feature == "probability":
            if result.probabilities is None:
                return np.full(n, np.nan)
            if plan.value is None:
                if result.labels is None:
                    return np.full(n, np.nan)
                index = {c: j for j, c in enumerate(result.classes)}
                cols = np.array([index.get(v, -1) if v is not None else -1 for v in result.labels])
                picked = result.probabilities[np.arange(n), np.maximum(cols, 0)]
                return np.where(cols >= 0, picked, np.nan)
            wanted = self.canonical(plan.value)
            if wanted not in result.classes:
                return np.zeros(n)
            return result.probabilities[:, result.classes.index(wanted)]
        if plan.feature == "entityId":
            if result.entities is None:
                return np.full(n, None, object)
            return result.entities
        assert plan.expression is not None
        return plan.expression(scope)


def _read_targets(ctx: Context, element: Element) -> TargetPlan | None:
    targets = child(element, "Targets")
    if targets is None:
        return None
    items = children(targets, "Target")
    if len(items) != 1:
        raise ctx.doc.unsupported(targets, f"Targets with {len(items)} Target elements")
    t = items[0]
    cast = t.get("castInteger")
    if cast not in (None, "round", "ceiling", "floor"):
        raise ctx.doc.invalid(t, f'has castInteger="{cast}"')
    plan = TargetPlan(
        factor=float(t.get("rescaleFactor", "1")),
        constant=float(t.get("rescaleConstant", "0")),
        low=float(t.get("min")) if t.get("min") is not None else None,  # type: ignore[arg-type]
        high=float(t.get("max")) if t.get("max") is not None else None,  # type: ignore[arg-type]
        cast=cast,
    )
    for value in children(t, "TargetValue"):
        if value.get("value") is not None:
            plan.values.append(value.get("value", ""))
        if value.get("displayValue") is not None and value.get("value") is not None:
            plan.display[value.get("value", "")] = value.get("displayValue", "")
    return plan


def labels_from_probabilities(probabilities: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """The first class of highest probability; None where probabilities are missing."""
    filled = np.where(np.isnan(probabilities), -np.inf, probabilities)
    best = filled.argmax(axis=1)
    labels = np.array(classes, dtype=object)[best]
    labels[np.isnan(probabilities).all(axis=1)] = None
    return labels
