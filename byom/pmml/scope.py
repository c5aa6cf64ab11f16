"""Compile-time context and run-time scope.

`Context` is what the compiler knows while walking the document: the DataDictionary, the type of
every field declared so far (data, derived and output fields), the derived fields visible at the
current point, and the math context (float32 for JPMML's x-mathContext="float").

`Scope` holds one batch's columns by field name. Derived fields are computed lazily, once per
batch, the first time something reads them; each model opens a child scope for its
LocalTransformations and its MiningSchema's replacements, and model-chain outputs are set into
the mining model's scope so later segments can read them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from xml.etree.ElementTree import Element

import numpy as np

from byom.errors import InvalidModelError
from byom.pmml.fields import FieldDef, MiningFieldPlan
from byom.pmml.xml import Document

if TYPE_CHECKING:
    pass

#: A compiled expression: whole columns in, one column out.
Expr = Callable[["Scope"], np.ndarray]
#: Deepest nesting of expressions (Apply in Apply ...) or predicates a document may have.
MAX_NESTING = 200


@dataclass
class Context:
    doc: Document
    fields: dict[str, FieldDef]
    #: dataType of every field name known so far.
    types: dict[str, str] = field(default_factory=dict)
    #: optype of every field name known so far.
    optypes: dict[str, str] = field(default_factory=dict)
    #: Derived fields of the TransformationDictionary.
    globals: dict[str, Expr] = field(default_factory=dict)
    #: DefineFunctions of the TransformationDictionary, by name (expressions.DefinedFunction).
    functions: dict[str, Any] = field(default_factory=dict)
    float_math: bool = False
    depth: int = 0
    #: How deep the expression / predicate being compiled is nested (see MAX_NESTING).
    nesting: int = 0

    def nest(self, element: Element) -> None:
        """Enter one level of expression or predicate nesting; refuse a document nested deeper
        than MAX_NESTING, before Python's recursion limit would fail without naming it."""
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            self.nesting = 0
            raise self.doc.invalid(
                element,
                f"nests expressions or predicates more than {MAX_NESTING} levels deep, which "
                "byom's PMML evaluator refuses: split the expression into DerivedFields that "
                "refer to one another (a chain of any length is fine)",
            )

    def type_of(self, name: str) -> str:
        return self.types.get(name, "double")

    def declare(self, name: str, data_type: str, optype: str = "continuous") -> None:
        self.types[name] = data_type
        self.optypes[name] = optype


class Scope:
    def __init__(
        self,
        n: int,
        parent: Scope | None = None,
        derived: dict[str, Expr] | None = None,
        treatments: dict[str, tuple[MiningFieldPlan, FieldDef | None]] | None = None,
        cache: dict[Any, Any] | None = None,
    ) -> None:
        self.n = n
        self.parent = parent
        #: Per-batch memo shared by a scope's children and function calls (e.g. tokenized
        #: texts of TextIndex), keyed by what computed it.
        self.cache: dict[Any, Any] = (
            cache if cache is not None else (parent.cache if parent else {})
        )
        self.values: dict[str, np.ndarray] = {}
        self._derived = derived or {}
        self._treatments = treatments or {}
        self._busy: set[str] = set()
        self._preparing = False

    def child(
        self,
        derived: dict[str, Expr] | None = None,
        treatments: dict[str, tuple[MiningFieldPlan, FieldDef | None]] | None = None,
    ) -> Scope:
        if not derived and not treatments:
            return self
        return Scope(self.n, self, derived, treatments)

    def get(self, name: str) -> np.ndarray:
        value = self.values.get(name)
        if value is not None:
            return value
        if name in self._derived and not self._preparing:
            self._preparing = True
            try:
                self._prepare(name)
            finally:
                self._preparing = False
            value = self.values.get(name)
            if value is not None:
                return value
        if name in self._busy:
            raise InvalidModelError(f"field {name!r} is defined in terms of itself")
        if name in self._derived:
            self._busy.add(name)
            try:
                value = self._derived[name](self)
            finally:
                self._busy.discard(name)
        elif name in self._treatments:
            plan, spec = self._treatments[name]
            assert self.parent is not None
            value = plan.apply(self.parent.get(name), spec)
        elif self.parent is not None:
            return self.parent.get(name)
        else:
            raise InvalidModelError(f"field {name!r} is not defined")
        self.values[name] = value
        return value

    def _owner(self, name: str) -> Scope | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.values or name in scope._derived or name in scope._treatments:
                return scope
            scope = scope.parent
        return None

    def _prepare(self, name: str) -> None:
        """Compute the derived fields `name` depends on first, deepest first, with an explicit
        stack: a chain of thousands of DerivedFields then never recurses more than one level."""
        stack: list[tuple[Scope, str, bool]] = [(self, name, False)]
        seen: set[tuple[int, str]] = set()
        while stack:
            scope, field_name, ready = stack.pop()
            owner = scope._owner(field_name)
            if owner is None or field_name in owner.values:
                continue
            if ready:
                if field_name not in owner._busy:  # a cycle: get() names it below
                    owner.get(field_name)
                continue
            key = (id(owner), field_name)
            if key in seen:
                continue
            seen.add(key)
            stack.append((owner, field_name, True))
            if field_name in owner._derived:
                for dep in getattr(owner._derived[field_name], "deps", ()):
                    stack.append((owner, dep, False))
            elif owner.parent is not None:  # a MiningSchema treatment of the parent's field
                stack.append((owner.parent, field_name, False))

    def set(self, name: str, value: np.ndarray) -> None:
        self.values[name] = value
