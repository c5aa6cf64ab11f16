"""byom's native PMML evaluator: numpy over whole columns, no JVM.

A document is parsed once (`xml.parse`: defusedxml, line numbers kept) and compiled into a plan
(`compile_document`):

* `fields.FieldDef` per DataField (type, valid / invalid / missing values, intervals), and the
  top-level MiningSchema's treatment of invalid values (returnInvalid raises InvalidValueError,
  asMissing, asIs), applied once to the input columns (`Plan.prepare`).
* `scope.Context` carries field types and the math context while compiling; `scope.Scope` holds
  one batch's columns and computes derived fields lazily.
* `expressions` compiles DerivedField / transformedValue expressions (and the
  TransformationDictionary's DefineFunctions) into closures over columns, `text` the TextIndex
  of bag-of-words / tf-idf pipelines, `predicates` three-valued predicates (TRUE / UNKNOWN
  masks). Chains of DerivedFields are computed without recursion; nesting deeper than
  `scope.MAX_NESTING` (or XML deeper than `xml.MAX_DEPTH`) is refused with the line.
* `floatmath`: JPMML's x-mathContext="float" (XGBoost exports), per model element.
* `models.MODEL_TYPES` maps a model element to its compiler; each returns a `models.ModelPlan`
  whose `evaluate(scope)` applies the model's MiningSchema replacements, LocalTransformations,
  scores (`score`), applies Targets and computes the Output fields. MiningModel segments are
  ModelPlans themselves; trees with numeric splits are also compiled to flat binary decisions
  that `forest.Forest` traverses for all trees of an ensemble at once.
* `scorer.NativePmmlScorer` wraps a plan behind byom's `Scorer` interface.

Anything the compiler does not implement raises `byom.errors.UnsupportedPmmlError` naming the
element and its line; `byom.scorers.load_scorer` then falls back to pypmml when
BYOM_PMML_FALLBACK allows. To add a model type, add a module under `byom/pmml/models/` and
register it in `MODEL_TYPES`.
"""

from __future__ import annotations

from byom.pmml.plan import Plan, compile_document

__all__ = ["Plan", "compile_document"]
