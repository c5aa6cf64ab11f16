"""Scorecard: partial scores of the first matching Attribute per Characteristic, and reason codes.

The score is initialScore plus, for every Characteristic, the partialScore (or the
ComplexPartialScore expression) of its first Attribute whose predicate is TRUE (UNKNOWN does not
match). A row where some Characteristic has no matching Attribute, or whose partial score is
missing, has no score.

With useReasonCodes (the default), each Characteristic also scores points for the reason code of
its matching Attribute (the Attribute's reasonCode, else the Characteristic's):
baseline - partial ("pointsBelow", the default) or partial - baseline ("pointsAbove"), the
baseline being the Characteristic's baselineScore, else the Scorecard's. Points are summed per
reason code, codes with negative points are dropped, and the rest are ranked by points, ties going
to the code that appears first in the document. An OutputField feature="reasonCode" rank="k"
returns the k-th code, missing when fewer codes were ranked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

import numpy as np

from byom.pmml.expressions import EXPRESSION_TAGS
from byom.pmml.expressions import compile_expression as compile_expr
from byom.pmml.fields import is_missing
from byom.pmml.models.base import ModelPlan, ModelResult, OutputFieldPlan
from byom.pmml.predicates import Predicate, compile_predicate, find_predicate
from byom.pmml.scope import Context, Expr, Scope
from byom.pmml.xml import child, children


@dataclass
class _Attribute:
    predicate: Predicate
    score: float | None
    expression: Expr | None
    code: int  # index into the model's reason codes; -1 without reason codes


@dataclass
class _Characteristic:
    baseline: float
    attributes: list[_Attribute]


@dataclass
class ScorecardResult(ModelResult):
    #: (n, reason codes) ranked codes per row, None past the ranked ones.
    reasons: np.ndarray | None = None


class Scorecard(ModelPlan):
    def __init__(self, ctx: Context, element: Element) -> None:
        super().__init__(ctx, element)
        doc = ctx.doc
        if self.function != "regression":
            raise doc.unsupported(element, f'Scorecard functionName="{self.function}"')
        self.initial = float(element.get("initialScore", "0"))
        self.use_reason_codes = element.get("useReasonCodes", "true") != "false"
        self.algorithm = element.get("reasonCodeAlgorithm", "pointsBelow")
        if self.algorithm not in ("pointsBelow", "pointsAbove"):
            raise doc.invalid(element, f'has reasonCodeAlgorithm="{self.algorithm}"')
        baseline = element.get("baselineScore")
        characteristics = child(element, "Characteristics")
        if characteristics is None:
            raise doc.invalid(element, "has no Characteristics")
        #: Reason codes in order of first appearance in the document (the tie-breaking order).
        self.codes: list[str] = []
        self.characteristics: list[_Characteristic] = []
        for c in children(characteristics, "Characteristic"):
            own = c.get("baselineScore", baseline)
            if self.use_reason_codes and own is None:
                raise doc.invalid(c, "has no baselineScore, and neither has the Scorecard")
            attributes = []
            for a in children(c, "Attribute"):
                attributes.append(self._read_attribute(ctx, c, a))
            if not attributes:
                raise doc.invalid(c, "has no Attribute")
            self.characteristics.append(
                _Characteristic(float(own) if own is not None else 0.0, attributes)
            )
        if not self.characteristics:
            raise doc.invalid(characteristics, "has no Characteristic")
        self.reason_outputs: dict[str, int] = {}
        self.compile_outputs(ctx)

    def _code(self, code: str) -> int:
        if code not in self.codes:
            self.codes.append(code)
        return self.codes.index(code)

    def _read_attribute(self, ctx: Context, c: Element, a: Element) -> _Attribute:
        predicate_element = find_predicate(a)
        if predicate_element is None:
            raise ctx.doc.invalid(a, "has no predicate")
        code = -1
        if self.use_reason_codes:
            text = a.get("reasonCode", c.get("reasonCode"))
            if text is None:
                raise ctx.doc.invalid(a, "has no reasonCode, and neither has its Characteristic")
            # The Characteristic's code is listed before its Attributes' codes.
            if c.get("reasonCode") is not None:
                self._code(c.get("reasonCode", ""))
            code = self._code(text)
        expression = None
        complex_score = child(a, "ComplexPartialScore")
        if complex_score is not None:
            expr = next((e for e in complex_score if e.tag in EXPRESSION_TAGS), None)
            if expr is None:
                raise ctx.doc.invalid(complex_score, "has no expression")
            expression = compile_expr(ctx, expr)[0]
        score = a.get("partialScore")
        if expression is None and score is None:
            raise ctx.doc.invalid(a, "has neither partialScore nor ComplexPartialScore")
        try:
            value = float(score) if score is not None else None
        except ValueError:
            raise ctx.doc.invalid(a, f"has partialScore {score!r}") from None
        return _Attribute(compile_predicate(ctx, predicate_element), value, expression, code)

    def compile_outputs(self, ctx: Context, extra: dict[str, str] | None = None) -> None:
        """The shared Output reader, plus feature="reasonCode" (with its rank)."""
        super().compile_outputs(ctx, {"reasonCode": "string"})
        output = child(self.element, "Output")
        for element in children(output, "OutputField") if output is not None else []:
            if element.get("feature") != "reasonCode":
                continue
            try:
                rank = int(element.get("rank", "1"))
            except ValueError:
                rank = 0
            if rank < 1:
                raise ctx.doc.invalid(element, f"has rank={element.get('rank')!r}")
            self.reason_outputs[element.get("name", "")] = rank

    # ------------------------------------------------------------------ evaluation

    def score(self, scope: Scope) -> ModelResult:
        n = scope.n
        dtype: Any = np.float32 if self.float_math else np.float64
        total = np.full(n, self.initial, dtype=dtype)
        valid = np.ones(n, bool)
        k = len(self.codes)
        points = np.zeros((n, k))
        present = np.zeros((n, k), bool)
        rows = np.arange(n)
        for c in self.characteristics:
            partial = np.full(n, np.nan, dtype=dtype)
            code = np.full(n, -1, dtype=np.int64)
            open_ = np.ones(n, bool)
            for a in c.attributes:
                if not open_.any():
                    break
                true, _ = a.predicate(scope, None)
                hit = true & open_
                if not hit.any():
                    continue
                if a.expression is not None:
                    values = a.expression(scope)
                    if values.dtype == object:
                        values = np.array(
                            [np.nan if v is None else float(v) for v in values], dtype=np.float64
                        )
                    partial[hit] = values[hit]
                else:
                    partial[hit] = a.score
                code[hit] = a.code
                open_ &= ~hit
            valid &= ~open_ & ~is_missing(partial)
            total = total + partial
            if self.use_reason_codes:
                if self.algorithm == "pointsBelow":
                    difference = c.baseline - partial.astype(np.float64)
                else:
                    difference = partial.astype(np.float64) - c.baseline
                ok = code >= 0
                points[rows[ok], code[ok]] += difference[ok]
                present[rows[ok], code[ok]] = True
        total[~valid] = np.nan
        reasons = None
        if self.use_reason_codes and self.reason_outputs:
            ranked = present & ~np.isnan(points) & (points >= 0) & valid[:, None]
            key = np.where(ranked, -points, np.inf)
            order = np.argsort(key, axis=1, kind="stable")  # ties: document order
            names = np.array(self.codes, dtype=object)
            reasons = names[order]
            reasons[~np.take_along_axis(ranked, order, axis=1)] = None
        return ScorecardResult(n, value=total, reasons=reasons)

    def _output(self, plan: OutputFieldPlan, result: ModelResult, scope: Scope) -> np.ndarray:
        if plan.feature != "reasonCode":
            return super()._output(plan, result, scope)
        rank = self.reason_outputs[plan.name]
        reasons = getattr(result, "reasons", None)
        if reasons is None or rank > reasons.shape[1]:
            return np.full(result.n, None, dtype=object)
        return reasons[:, rank - 1]


def compile_scorecard(ctx: Context, element: Element) -> ModelPlan:
    return Scorecard(ctx, element)
