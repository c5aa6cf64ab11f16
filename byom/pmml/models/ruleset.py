"""RuleSetModel: rules as masks over whole columns.

CompoundRules are flattened at compile time: each SimpleRule keeps the chain of predicates from
its outermost CompoundRule down to its own, and fires where all of them are TRUE (UNKNOWN does
not fire). The first RuleSelectionMethod decides the result:

* firstHit: the first firing rule in document order;
* weightedMax: the firing rule of highest weight (the first on ties); its confidence;
* weightedSum: per score, the sum of the weights of the firing rules with that score; the
  highest sum wins (the score seen first on ties), its confidence is that sum divided by the
  number of firing rules.

Rows where no rule fires get the RuleSet's defaultScore and defaultConfidence (no prediction
without a defaultScore). Outputs: predictedValue, confidence, entityId (the rule's id,
firstHit and weightedMax). Like pypmml, no probabilities: a rule only has a confidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from xml.etree.ElementTree import Element

import numpy as np
import pandas as pd

from byom.pmml.fields import parse_value
from byom.pmml.models.base import ModelPlan, ModelResult, OutputFieldPlan
from byom.pmml.models.regression import sorted_classes
from byom.pmml.predicates import Predicate, compile_predicate, find_predicate
from byom.pmml.scope import Context, Scope
from byom.pmml.xml import child, children

MAX_DEPTH = 250
CRITERIA = {"firstHit", "weightedSum", "weightedMax"}


@dataclass
class _Rule:
    id: str | None
    #: Predicates from the outermost CompoundRule down to this rule's own.
    chain: list[int]
    score: str
    weight: float
    confidence: float
    #: class -> confidence, from the rule's ScoreDistribution.
    distribution: dict[str, float] = field(default_factory=dict)


@dataclass
class RuleResult(ModelResult):
    confidence: np.ndarray | None = None


def _float(ctx: Context, element: Element, name: str, default: str) -> float:
    text = element.get(name, default)
    try:
        return float(text)
    except ValueError:
        raise ctx.doc.invalid(element, f'has {name}="{text}", which is not a number') from None


class RuleSetModel(ModelPlan):
    def __init__(self, ctx: Context, element: Element) -> None:
        super().__init__(ctx, element)
        ruleset = child(element, "RuleSet")
        if ruleset is None:
            raise ctx.doc.invalid(element, "has no RuleSet")
        methods = children(ruleset, "RuleSelectionMethod")
        if not methods:
            raise ctx.doc.invalid(ruleset, "has no RuleSelectionMethod")
        self.criterion = methods[0].get("criterion", "")
        if self.criterion not in CRITERIA:
            raise ctx.doc.unsupported(methods[0], f'RuleSelectionMethod="{self.criterion}"')
        default = ruleset.get("defaultScore")
        self.default_score = self._label(default) if default is not None else None
        self.default_confidence = _float(ctx, ruleset, "defaultConfidence", "nan")
        self.predicates: list[Predicate] = []
        self.rules: list[_Rule] = []
        self._read(ctx, ruleset, [], 0)
        if self.function == "classification" and not self.classes:
            labels = [r.score for r in self.rules] + [c for r in self.rules for c in r.distribution]
            if self.default_score is not None:
                labels.append(self.default_score)
            self.classes = tuple(sorted_classes(labels, self))
        if self.function == "regression":
            dtype = "float" if self.float_math else "double"
            for r in self.rules:
                try:
                    parse_value(r.score, dtype)
                except ValueError:
                    raise ctx.doc.invalid(ruleset, f"has the score {r.score!r}") from None
        self.compile_outputs(ctx)
        if not self.outputs and self.target and ctx.depth == 1:
            # What pypmml reports for a RuleSetModel without an Output.
            self.outputs = [
                OutputFieldPlan(f"predicted_{self.target}", "predictedValue", None, None, True),
                OutputFieldPlan("confidence", "confidence", "double", None, True),
            ]

    def _label(self, text: str) -> str:
        return self.canonical(text) if self.function == "classification" else text

    def _read(self, ctx: Context, parent: Element, chain: list[int], depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ctx.doc.invalid(parent, f"nests rules deeper than {MAX_DEPTH} levels")
        for rule in parent:
            if rule.tag not in ("SimpleRule", "CompoundRule"):
                continue
            found = find_predicate(rule)
            if found is None:
                raise ctx.doc.invalid(rule, "has no predicate")
            self.predicates.append(compile_predicate(ctx, found))
            here = [*chain, len(self.predicates) - 1]
            if rule.tag == "CompoundRule":
                self._read(ctx, rule, here, depth + 1)
                continue
            score = rule.get("score")
            if score is None:
                raise ctx.doc.invalid(rule, "has no score")
            distribution: dict[str, float] = {}
            items = children(rule, "ScoreDistribution")
            total = sum(_float(ctx, d, "recordCount", "0") for d in items)
            for d in items:
                p = d.get("probability")
                count = _float(ctx, d, "recordCount", "0")
                distribution[self._label(d.get("value", ""))] = (
                    _float(ctx, d, "probability", "0")
                    if p is not None
                    else (count / total if total else 0.0)
                )
            self.rules.append(
                _Rule(
                    rule.get("id"),
                    here,
                    self._label(score),
                    _float(ctx, rule, "weight", "1"),
                    _float(ctx, rule, "confidence", "1"),
                    distribution,
                )
            )

    def compile_outputs(self, ctx: Context, extra: dict[str, str] | None = None) -> None:
        super().compile_outputs(ctx, {"confidence": "double"})

    # ------------------------------------------------------------------ evaluation

    def _fires(self, scope: Scope) -> np.ndarray:
        """(n, rules): where each rule fires."""
        n = scope.n
        masks: dict[int, np.ndarray] = {}
        out = np.zeros((n, len(self.rules)), bool)
        for j, rule in enumerate(self.rules):
            fires = np.ones(n, bool)
            for index in rule.chain:
                if index not in masks:
                    true, _ = self.predicates[index](scope, None)
                    masks[index] = np.asarray(true, bool)
                fires = fires & masks[index]
            out[:, j] = fires
        return out

    def score(self, scope: Scope) -> ModelResult:
        n, m = scope.n, len(self.rules)
        fires = self._fires(scope)
        scores = np.array([r.score for r in self.rules] + [self.default_score], dtype=object)
        confidences = np.array([r.confidence for r in self.rules] + [self.default_confidence])
        rule = np.full(n, m)  # m: no rule fired (the default)
        if self.criterion == "firstHit" and m:
            any_fire = fires.any(axis=1)
            rule = np.where(any_fire, fires.argmax(axis=1), m)
            labels, confidence = scores[rule], confidences[rule]
        elif self.criterion == "weightedMax" and m:
            weights = np.array([r.weight for r in self.rules])
            masked = np.where(fires, weights[None, :], -np.inf)
            rule = np.where(fires.any(axis=1), masked.argmax(axis=1), m)
            labels, confidence = scores[rule], confidences[rule]
        elif m:
            unique = list(dict.fromkeys(r.score for r in self.rules))
            weights = np.array([r.weight for r in self.rules])
            member = np.array([[r.score == u for u in unique] for r in self.rules], dtype=float)
            sums = (fires * weights[None, :]) @ member  # (n, unique scores)
            count = fires.sum(axis=1)
            best = sums.argmax(axis=1)
            fired = count > 0
            winners: Any = np.where(fired, np.array(unique, dtype=object)[best], None)
            winners[~fired] = self.default_score
            with np.errstate(divide="ignore", invalid="ignore"):
                confidence = np.where(
                    fired, sums[np.arange(n), best] / count, self.default_confidence
                )
            entities = np.full(n, None, dtype=object)
            return self._result(n, winners, confidence, entities)
        else:
            labels, confidence = scores[rule], confidences[rule]
        ids = np.array([r.id for r in self.rules] + [None], dtype=object)
        return self._result(n, labels, confidence, ids[rule])

    def _result(
        self,
        n: int,
        labels: np.ndarray,
        confidence: np.ndarray,
        entities: np.ndarray,
    ) -> ModelResult:
        confidence = np.where(pd_missing(labels), np.nan, confidence)
        if self.function == "regression":
            dtype: Any = np.float32 if self.float_math else np.float64
            value = np.array([np.nan if v is None else float(v) for v in labels], dtype=dtype)
            return RuleResult(n, value=value, entities=entities, confidence=confidence)
        return RuleResult(
            n,
            labels=labels,
            classes=self.classes,
            entities=entities,
            confidence=confidence,
        )

    def _output(self, plan: OutputFieldPlan, result: ModelResult, scope: Scope) -> np.ndarray:
        if plan.feature == "confidence":
            assert isinstance(result, RuleResult) and result.confidence is not None
            return result.confidence
        return super()._output(plan, result, scope)


def pd_missing(labels: np.ndarray) -> np.ndarray:
    return np.asarray(pd.isna(labels), dtype=bool)


def compile_ruleset(ctx: Context, element: Element) -> ModelPlan:
    return RuleSetModel(ctx, element)
