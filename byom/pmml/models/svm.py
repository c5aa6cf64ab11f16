"""SupportVectorMachineModel: kernels as whole matrices (rows x support vectors).

Each SupportVectorMachine computes f(x) = sum_i c_i K(x, s_i) + b over its support vectors (or,
for svmRepresentation="Coefficients", the hyperplane f(x) = sum_j c_j x_j + b). The kernel is
computed once per batch between the rows and every vector the machines use (`_kernel`, in row
chunks to bound memory), and all machines' decision values come from one matrix product with a
(vectors x machines) coefficient matrix.

Classification:

* one machine with an alternateTargetCategory (binary; the alternate may also be inferred when
  the target declares exactly two categories), and classificationMethod="OneAgainstOne": each
  machine votes targetCategory when f(x) < threshold (f(x) > threshold with maxWins="true"),
  alternateTargetCategory otherwise. The most votes win, ties going to the category listed
  first; probabilities are the vote shares.
* classificationMethod="OneAgainstAll" (the default) with several machines: the machine with the
  smallest value (largest with maxWins) names the class. There are no probabilities.

When classificationMethod is absent but the machines carry alternateTargetCategory, the model is
read as one-against-one (what older R exporters meant). A missing FieldRef vector field leaves the
row without a prediction; a CategoricalPredictor on a missing value is 0 (no match).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

import numpy as np

from byom.pmml.fields import is_missing, parse_value
from byom.pmml.models.base import ModelPlan, ModelResult, OutputFieldPlan
from byom.pmml.predicates import parse_array
from byom.pmml.scope import Context, Scope
from byom.pmml.xml import child, children, text_of

KERNELS = {
    "LinearKernelType",
    "PolynomialKernelType",
    "RadialBasisKernelType",
    "SigmoidKernelType",
}
#: Rows x vectors computed at once, to bound the kernel matrix's memory.
CHUNK_CELLS = 1 << 21


@dataclass
class _Kernel:
    kind: str
    gamma: float = 1.0
    coef0: float = 1.0
    degree: float = 1.0


@dataclass
class _VectorField:
    name: str
    #: For a CategoricalPredictor: 1.0 where the field equals this value, else 0.0.
    category: object = None
    categorical: bool = False


@dataclass
class _Machine:
    target: str | None
    alternate: str | None
    threshold: float
    vectors: list[int]  # indices into the used vectors
    coefficients: list[float]
    intercept: float
    element: Element


class SupportVectorMachineModel(ModelPlan):
    def __init__(self, ctx: Context, element: Element) -> None:
        super().__init__(ctx, element)
        doc = ctx.doc
        self.representation = element.get("svmRepresentation", "SupportVectors")
        if self.representation not in ("SupportVectors", "Coefficients"):
            raise doc.invalid(element, f'has svmRepresentation="{self.representation}"')
        self.max_wins = element.get("maxWins", "false") == "true"
        self.threshold = float(element.get("threshold", "0"))
        self.kernel = self._read_kernel(ctx, element)
        dictionary = child(element, "VectorDictionary")
        if dictionary is None:
            raise doc.invalid(element, "has no VectorDictionary")
        self.fields = self._read_vector_fields(ctx, dictionary)
        instances = self._read_instances(ctx, dictionary)
        used: dict[str, int] = {}
        self.machines: list[_Machine] = []
        for m in children(element, "SupportVectorMachine"):
            self.machines.append(self._read_machine(ctx, m, instances, used))
        if not self.machines:
            raise doc.invalid(element, "has no SupportVectorMachine")
        dtype: Any = np.float32 if self.float_math else np.float64
        d = len(self.fields)
        self.vectors = np.zeros((len(used), d), dtype=dtype)
        for vector_id, index in used.items():
            self.vectors[index] = instances[vector_id]
        # (vectors x machines) for SupportVectors; (fields x machines) for Coefficients.
        rows = len(used) if self.representation == "SupportVectors" else d
        self.weights = np.zeros((rows, len(self.machines)), dtype=dtype)
        for j, machine in enumerate(self.machines):
            if self.representation == "Coefficients":
                if len(machine.coefficients) != d:
                    raise doc.invalid(
                        machine.element,
                        f"has {len(machine.coefficients)} Coefficients for {d} VectorFields",
                    )
                self.weights[:, j] = machine.coefficients
            else:
                for index, c in zip(machine.vectors, machine.coefficients, strict=True):
                    self.weights[index, j] += c
        self.intercepts = np.array([m.intercept for m in self.machines], dtype=dtype)
        self._classification_plan(ctx, element)
        self.compile_outputs(ctx)
        method = element.get("classificationMethod", "OneAgainstAll")
        if (
            ctx.depth == 1
            and not self.outputs
            and self.target
            and self.function == "classification"
            and method != "OneAgainstOne"
        ):
            # Without an Output, a caller sees the prediction only: such a model has no
            # probabilities (pypmml reports the same), unlike the scorer's default outputs.
            name = f"predicted_{self.target}"
            ctx.declare(name, self.target_type, "categorical")
            self.outputs.append(OutputFieldPlan(name, "predictedValue", None, None, True))

    # ------------------------------------------------------------------ compile

    @staticmethod
    def _read_kernel(ctx: Context, element: Element) -> _Kernel:
        found = [c for c in element if c.tag in KERNELS]
        if len(found) != 1:
            raise ctx.doc.invalid(element, f"has {len(found)} kernel elements, not one")
        k = found[0]
        try:
            return _Kernel(
                k.tag,
                gamma=float(k.get("gamma", "1")),
                coef0=float(k.get("coef0", "1")),
                degree=float(k.get("degree", "1")),
            )
        except ValueError:
            raise ctx.doc.invalid(k, "has a non-numeric parameter") from None

    @staticmethod
    def _read_vector_fields(ctx: Context, dictionary: Element) -> list[_VectorField]:
        vector_fields = child(dictionary, "VectorFields")
        if vector_fields is None:
            raise ctx.doc.invalid(dictionary, "has no VectorFields")
        out = []
        for c in vector_fields:
            if c.tag == "FieldRef":
                name = c.get("field", "")
                if name not in ctx.types:
                    raise ctx.doc.invalid(c, f"refers to field {name!r}, which is not defined")
                if ctx.type_of(name) == "string":
                    raise ctx.doc.unsupported(c, f"a VectorField on the string field {name!r}")
                out.append(_VectorField(name))
            elif c.tag == "CategoricalPredictor":
                name = c.get("name", "")
                if name not in ctx.types:
                    raise ctx.doc.invalid(c, f"refers to field {name!r}, which is not defined")
                if float(c.get("coefficient", "1")) != 1.0:
                    raise ctx.doc.invalid(c, "in VectorFields must have coefficient 1")
                value = parse_value(c.get("value", ""), ctx.type_of(name))
                out.append(_VectorField(name, value, True))
            elif c.tag != "Extension":
                raise ctx.doc.unsupported(c, f"<{c.tag}> in VectorFields")
        if not out:
            raise ctx.doc.invalid(vector_fields, "lists no fields")
        return out

    def _read_instances(self, ctx: Context, dictionary: Element) -> dict[str, np.ndarray]:
        d = len(self.fields)
        instances: dict[str, np.ndarray] = {}
        for v in children(dictionary, "VectorInstance"):
            vector_id = v.get("id")
            if vector_id is None:
                raise ctx.doc.invalid(v, "has no id")
            sparse = child(v, "REAL-SparseArray")
            dense = child(v, "Array")
            values = np.zeros(d)
            try:
                if sparse is not None:
                    indices = child(sparse, "Indices")
                    entries = child(sparse, "REAL-Entries")
                    idx = [int(t) for t in text_of(indices).split()] if indices is not None else []
                    ent = (
                        [float(t) for t in text_of(entries).split()] if entries is not None else []
                    )
                    if len(idx) != len(ent) or any(i < 1 or i > d for i in idx):
                        raise ctx.doc.invalid(sparse, f"does not hold {d} matching entries")
                    values[np.array(idx, dtype=np.int64) - 1] = ent
                elif dense is not None:
                    tokens = [float(t) for t in parse_array(dense)]
                    if len(tokens) != d:
                        raise ctx.doc.invalid(dense, f"holds {len(tokens)} values, not {d}")
                    values[:] = tokens
                else:
                    raise ctx.doc.invalid(v, "has no REAL-SparseArray or Array")
            except ValueError:
                raise ctx.doc.invalid(v, "holds a value that is not a number") from None
            instances[vector_id] = values
        return instances

    def _read_machine(
        self,
        ctx: Context,
        m: Element,
        instances: dict[str, np.ndarray],
        used: dict[str, int],
    ) -> _Machine:
        coefficients_element = child(m, "Coefficients")
        if coefficients_element is None:
            raise ctx.doc.invalid(m, "has no Coefficients")
        coefficients = [
            float(c.get("value", "0")) for c in children(coefficients_element, "Coefficient")
        ]
        vectors: list[int] = []
        if self.representation == "SupportVectors":
            support = child(m, "SupportVectors")
            ids = (
                [s.get("vectorId", "") for s in children(support, "SupportVector")]
                if support is not None
                else []
            )
            if len(ids) != len(coefficients):
                raise ctx.doc.invalid(
                    m, f"has {len(ids)} SupportVectors but {len(coefficients)} Coefficients"
                )
            for vector_id in ids:
                if vector_id not in instances:
                    raise ctx.doc.invalid(
                        m, f"refers to vector {vector_id!r}, which is not defined"
                    )
                vectors.append(used.setdefault(vector_id, len(used)))
        target, alternate = m.get("targetCategory"), m.get("alternateTargetCategory")
        threshold = m.get("threshold")
        return _Machine(
            self.canonical(target) if target is not None else None,
            self.canonical(alternate) if alternate is not None else None,
            float(threshold) if threshold is not None else self.threshold,
            vectors,
            coefficients,
            float(coefficients_element.get("absoluteValue", "0")),
            m,
        )

    def _classification_plan(self, ctx: Context, element: Element) -> None:
        if self.function == "regression":
            if len(self.machines) != 1:
                raise ctx.doc.invalid(element, "is a regression with more than one machine")
            return
        for m in self.machines:
            if m.target is None:
                raise ctx.doc.invalid(m.element, "has no targetCategory")
        method = element.get("classificationMethod")
        if method not in (None, "OneAgainstAll", "OneAgainstOne"):
            raise ctx.doc.invalid(element, f'has classificationMethod="{method}"')
        single = len(self.machines) == 1
        if single and self.machines[0].alternate is None and len(self.classes) == 2:
            # A binary model may leave the other category to the target's declaration.
            m = self.machines[0]
            m.alternate = self.classes[1] if m.target == self.classes[0] else self.classes[0]
        if method is None:
            method = "OneAgainstOne" if self.machines[0].alternate is not None else "OneAgainstAll"
        self.voting = method == "OneAgainstOne" or (
            single and self.machines[0].alternate is not None
        )
        if self.voting and any(m.alternate is None for m in self.machines):
            raise ctx.doc.invalid(
                element, "votes one against one, but a machine has no alternateTargetCategory"
            )
        categories: list[str] = []
        for m in self.machines:
            for c in (m.target, m.alternate):
                if c is not None and c not in categories:
                    categories.append(c)
        if self.classes:
            extra = [c for c in categories if c not in self.classes]
            if extra:
                raise ctx.doc.unsupported(
                    element, f"SupportVectorMachine categories {extra} outside the target's"
                )
        #: Categories in tie-breaking order: the target's declaration, else first appearance.
        self.categories = tuple(self.classes) if self.classes else tuple(categories)

    # ------------------------------------------------------------------ evaluation

    def _inputs(self, scope: Scope) -> tuple[np.ndarray, np.ndarray]:
        dtype: Any = np.float32 if self.float_math else np.float64
        x = np.empty((scope.n, len(self.fields)), dtype=dtype)
        missing = np.zeros(scope.n, bool)
        for j, f in enumerate(self.fields):
            column = scope.get(f.name)
            if f.categorical:
                # A missing category is no match (0), as pypmml scores it and as
                # RegressionModel's CategoricalPredictor does.
                value: Any = f.category
                if column.dtype != object and isinstance(value, str):
                    value = float(value)
                x[:, j] = np.asarray(column == value, bool) & ~is_missing(column)
            else:
                missing |= is_missing(column)
                x[:, j] = column
        x[missing] = 0.0
        return x, missing

    def _kernel(self, x: np.ndarray) -> np.ndarray:
        k = self.kernel
        s = self.vectors
        if k.kind == "RadialBasisKernelType":
            distance = np.zeros((x.shape[0], s.shape[0]), dtype=x.dtype)
            for j in range(x.shape[1]):  # in field order, as an evaluator sums per row
                diff = x[:, j, None] - s[None, :, j]
                distance += diff * diff
            return np.exp(-k.gamma * distance)
        dot = x @ s.T
        if k.kind == "LinearKernelType":
            return dot
        if k.kind == "PolynomialKernelType":
            return (k.gamma * dot + k.coef0) ** k.degree
        return np.tanh(k.gamma * dot + k.coef0)

    def decision_values(self, scope: Scope) -> tuple[np.ndarray, np.ndarray]:
        """(rows x machines) decision values, and the rows left without them."""
        x, missing = self._inputs(scope)
        n = scope.n
        out = np.empty((n, len(self.machines)), dtype=x.dtype)
        if self.representation == "Coefficients":
            out[:] = x @ self.weights + self.intercepts
        else:
            step = max(1, CHUNK_CELLS // max(1, self.vectors.shape[0]))
            with np.errstate(over="ignore", invalid="ignore"):
                for start in range(0, n, step):
                    kernel = self._kernel(x[start : start + step])
                    out[start : start + step] = kernel @ self.weights + self.intercepts
        out[missing] = np.nan
        return out, missing

    def score(self, scope: Scope) -> ModelResult:
        n = scope.n
        values, missing = self.decision_values(scope)
        if self.function == "regression":
            return ModelResult(n, value=values[:, 0])
        cats = self.categories
        labels = np.full(n, None, dtype=object)
        if not self.voting:
            filled = np.where(np.isnan(values), np.inf if not self.max_wins else -np.inf, values)
            best = filled.argmax(axis=1) if self.max_wins else filled.argmin(axis=1)
            targets = np.array([m.target for m in self.machines], dtype=object)
            labels[~missing] = targets[best][~missing]
            return ModelResult(n, labels=labels, classes=self.classes)
        votes = np.zeros((n, len(cats)))
        for j, m in enumerate(self.machines):
            v = values[:, j]
            first = v > m.threshold if self.max_wins else v < m.threshold
            votes[:, cats.index(m.target)] += first
            votes[:, cats.index(m.alternate)] += ~first
        best = votes.argmax(axis=1)  # the first category of most votes
        labels[~missing] = np.array(cats, dtype=object)[best][~missing]
        if not self.classes:
            return ModelResult(n, labels=labels)
        proba = votes / len(self.machines)
        proba[missing] = np.nan
        return ModelResult(n, labels=labels, classes=self.classes, probabilities=proba)


def compile_svm(ctx: Context, element: Element) -> ModelPlan:
    return SupportVectorMachineModel(ctx, element)
