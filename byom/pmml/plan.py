"""The compiled document: inputs, their invalid-value treatment, the top model."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from byom.errors import InvalidModelError, InvalidValueError
from byom.pmml.expressions import compile_define_functions, compile_derived_fields
from byom.pmml.fields import FieldDef, MiningFieldPlan, read_data_dictionary, to_column
from byom.pmml.models import KNOWN_MODELS, ModelPlan, ModelResult, compile_model
from byom.pmml.scope import Context, Scope
from byom.pmml.xml import Document, child, parse

_NOT_MODELS = {
    "Header",
    "MiningBuildTask",
    "DataDictionary",
    "TransformationDictionary",
    "Extension",
}


@dataclass
class Plan:
    doc: Document
    ctx: Context
    model: ModelPlan
    #: Active top-level MiningFields that are DataFields: the scorer's inputs, in order.
    inputs: list[tuple[MiningFieldPlan, FieldDef]]

    def prepare(self, features: dict[str, np.ndarray], n: int) -> Scope:
        scope = Scope(n, derived=self.ctx.globals)
        for plan, spec in self.inputs:
            column, invalid = to_column(spec, features[spec.name])
            if invalid.any():
                if plan.invalid_treatment == "returnInvalid":
                    raise InvalidValueError(_invalid_message(spec, features[spec.name], invalid))
                if plan.invalid_treatment == "asMissing":
                    column = column.copy()
                    column[invalid] = None if column.dtype == object else np.nan
            scope.set(spec.name, column)
        return scope

    def run(self, features: dict[str, np.ndarray], n: int) -> tuple[ModelResult, dict]:
        try:
            return self.model.evaluate(self.prepare(features, n))
        except RecursionError:
            raise InvalidModelError(_too_deep(self.doc.who)) from None


def _too_deep(who: str) -> str:
    return (
        f"{who} nests models, expressions or predicates too deeply for byom's PMML evaluator "
        "(Python's recursion limit): flatten it, e.g. fewer nested MiningModels, or "
        "DerivedFields that refer to one another instead of nested expressions"
    )


def compile_document(blob: bytes, who: str = "the PMML model") -> Plan:
    try:
        return _compile_document(blob, who)
    except RecursionError:
        raise InvalidModelError(_too_deep(who)) from None


def _compile_document(blob: bytes, who: str) -> Plan:
    doc = parse(blob, who)
    fields = read_data_dictionary(doc)
    ctx = Context(doc, fields)
    for spec in fields.values():
        ctx.declare(spec.name, spec.data_type, spec.optype)
    dictionary = child(doc.root, "TransformationDictionary")
    compile_define_functions(ctx, dictionary)
    ctx.globals = compile_derived_fields(ctx, dictionary)
    models = [c for c in doc.root if c.tag not in _NOT_MODELS]
    if not models:
        raise doc.invalid(doc.root, "holds no model")
    element = models[0]
    if element.tag not in KNOWN_MODELS and element.tag not in ("MiningModel",):
        raise doc.unsupported(element, f"unknown element <{element.tag}>")
    model = compile_model(ctx, element)
    inputs = [
        (p, fields[p.name])
        for p in model.mining
        if p.usage in ("active", "supplementary", "group", "order") and p.name in fields
    ]
    inputs = [(p, s) for p, s in inputs if p.usage == "active"]
    return Plan(doc, ctx, model, inputs)


def _invalid_message(spec: FieldDef, values: np.ndarray, invalid: np.ndarray) -> str:
    bad = np.flatnonzero(invalid)
    first = values[bad[0]]
    where = f"(row {bad[0] + 1} of the batch, {bad.size} such rows)"
    if spec.intervals and spec.optype == "continuous":
        shown = ", ".join(
            f"{'[' if lc else '('}{lo:g}, {hi:g}{']' if hc else ')'}"
            for lo, hi, lc, hc in spec.intervals
        )
        return (
            f"{spec.name} = {float(first)!r} {where} is outside the model's valid range "
            f"{shown}, and the model marks such rows invalid "
            "(invalidValueTreatment=returnInvalid): filter or clip the values first"
        )
    names = sorted(spec.valid)
    shown = ", ".join(repr(v) for v in names[:10]) + (" ..." if len(names) > 10 else "")
    if not names:
        return (
            f"{spec.name} = {first!r} {where} is not a valid {spec.data_type} value, and the "
            "model marks such rows invalid (invalidValueTreatment=returnInvalid)"
        )
    return (
        f"{spec.name} = {first!r} {where} is not one of the model's categories ({shown}), "
        "and the model marks such rows invalid (invalidValueTreatment=returnInvalid): map or "
        "filter the values first"
    )
