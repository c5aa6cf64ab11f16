"""GeneralRegressionModel: linear, generalized linear, multinomial / ordinal logistic and Cox.

The model is a ParameterList, a PPMatrix saying how each parameter's multiplier is computed from
the predictors (a factor contributes 1 where its value equals the cell's category, else 0; a
covariate contributes its value raised to the cell's exponent; several cells of one parameter
multiply), and a ParamMatrix of coefficients (beta) per parameter, grouped by targetCategory for
classification. A parameter without PPMatrix cells is an intercept (multiplier 1).

* regression / generalLinear: the prediction is the dot product.
* generalizedLinear: the inverse link function of (dot product + offset), times the trials.
* multinomialLogistic: exp(dot product) per category, the reference category (targetReference
  Category, or the category without ParamMatrix cells) getting exp(0), normalized to sum 1.
* ordinalMultinomial: cumulative probabilities through the cumulativeLink of (the category's
  intercept + the shared parameters + offset); the last category's is 1; probabilities are the
  successive differences.
* CoxRegression: the cumulative hazard H0(t) * exp(r - s), r the dot product, s the dot product
  of the parameters' referencePoints, H0 the baseline cumulative hazard of the row's stratum
  (baselineStrataVariable) at the largest BaselineCell time not after the row's end time: 0
  before the first cell, missing after the stratum's maxTime or for an unknown stratum.

A missing value of a predictor a row's dot product needs makes that row's prediction missing
(a covariate is not needed where a factor of the same parameter already made the product 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element

import numpy as np

from byom.pmml.fields import is_missing, parse_value
from byom.pmml.models.base import ModelPlan, ModelResult, labels_from_probabilities
from byom.pmml.scope import Context, Scope
from byom.pmml.xml import child, children

MODEL_TYPES = {
    "regression",
    "generalLinear",
    "generalizedLinear",
    "multinomialLogistic",
    "ordinalMultinomial",
    "CoxRegression",
}
LINKS = {
    "cloglog",
    "identity",
    "log",
    "logc",
    "logit",
    "loglog",
    "negbin",
    "oddspower",
    "power",
    "probit",
    "cauchit",
}
CUMULATIVE_LINKS = {"logit", "probit", "cloglog", "loglog", "cauchit"}


@dataclass
class _Cell:
    """One PPCell: a factor (category) or a covariate (exponent)."""

    field: str
    factor: bool
    value: Any  # the category, typed as the field; or the exponent


#: parameter name -> its PPCells (multiplied together)
_Rows = dict[str, list[_Cell]]
#: (parameter name, beta)
_Betas = list[tuple[str, float]]


@dataclass
class _Stratum:
    times: np.ndarray
    hazards: np.ndarray
    max_time: float


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return np.asarray(ndtr(x))


def inverse_link(
    name: str, eta: Any, link_parameter: float | None, dist_parameter: float | None
) -> Any:
    """The mean from the linear predictor, for a linkFunction or a cumulativeLink."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if name == "identity":
            return eta
        if name == "log":
            return np.exp(eta)
        if name == "logc":
            return 1.0 - np.exp(eta)
        if name == "logit":
            return 1.0 / (1.0 + np.exp(-eta))
        if name == "probit":
            return _normal_cdf(eta)
        if name == "cloglog":
            return 1.0 - np.exp(-np.exp(eta))
        if name == "loglog":
            return np.exp(-np.exp(-eta))
        if name == "cauchit":
            return 0.5 + (1.0 / np.pi) * np.arctan(eta)
        if name == "negbin":
            assert dist_parameter is not None
            return 1.0 / (dist_parameter * (np.exp(-eta) - 1.0))
        if name == "oddspower":
            assert link_parameter is not None
            if link_parameter == 0:
                return 1.0 / (1.0 + np.exp(-eta))
            return 1.0 / (1.0 + np.power(1.0 + link_parameter * eta, -1.0 / link_parameter))
        if name == "power":
            assert link_parameter is not None
            if link_parameter == 0:
                return np.exp(eta)
            return np.power(eta, 1.0 / link_parameter)
    raise AssertionError(name)


class GeneralRegressionModel(ModelPlan):
    def __init__(self, ctx: Context, element: Element) -> None:
        super().__init__(ctx, element)
        doc = ctx.doc
        self.model_type = element.get("modelType", "")
        if self.model_type not in MODEL_TYPES:
            if not self.model_type:
                raise doc.invalid(element, "has no modelType")
            raise doc.unsupported(element, f'modelType="{self.model_type}"')
        classifier = self.model_type in ("multinomialLogistic", "ordinalMultinomial")
        if classifier and self.function != "classification":
            raise doc.invalid(element, f'has modelType="{self.model_type}" but is no classifier')
        if self.function == "classification" and self.model_type not in (
            "generalizedLinear",
            "multinomialLogistic",
            "ordinalMultinomial",
        ):
            raise doc.invalid(element, f'has modelType="{self.model_type}" for classification')

        parameter_list = child(element, "ParameterList")
        if parameter_list is None:
            raise doc.invalid(element, "has no ParameterList")
        self.reference_points: dict[str, float] = {}
        for p in children(parameter_list, "Parameter"):
            self.reference_points[p.get("name", "")] = float(p.get("referencePoint", "0"))

        factors = self._predictors(ctx, element, "FactorList")
        covariates = self._predictors(ctx, element, "CovariateList")
        self.rows = self._read_pp_matrix(ctx, element, factors, covariates)
        self.betas = self._read_param_matrix(ctx, element)

        self.offset_variable = self._optional_field(ctx, element, "offsetVariable")
        self.offset_value = _float_attr(ctx, element, "offsetValue")
        self.trials_variable = self._optional_field(ctx, element, "trialsVariable")
        self.trials_value = _float_attr(ctx, element, "trialsValue")
        self.link_parameter = _float_attr(ctx, element, "linkParameter")
        self.dist_parameter = _float_attr(ctx, element, "distParameter")
        self.link = element.get("linkFunction")
        self.cumulative_link = element.get("cumulativeLink")
        if self.model_type == "generalizedLinear":
            if self.link is None:
                raise doc.invalid(element, 'has modelType="generalizedLinear" but no linkFunction')
            if self.link not in LINKS:
                raise doc.unsupported(element, f'linkFunction="{self.link}"')
            if self.link in ("power", "oddspower") and self.link_parameter is None:
                raise doc.invalid(element, f'has linkFunction="{self.link}" but no linkParameter')
            if self.link == "negbin" and self.dist_parameter is None:
                raise doc.invalid(element, 'has linkFunction="negbin" but no distParameter')
        if self.model_type == "ordinalMultinomial":
            if self.cumulative_link is None:
                raise doc.invalid(element, "has no cumulativeLink")
            if self.cumulative_link not in CUMULATIVE_LINKS:
                raise doc.unsupported(element, f'cumulativeLink="{self.cumulative_link}"')

        if self.model_type == "CoxRegression":
            self._read_cox(ctx, element)
        elif self.function == "classification":
            self._read_categories(ctx, element)
        elif set(self.betas) != {None}:
            raise doc.invalid(element, "has ParamMatrix cells with a targetCategory")
        self.compile_outputs(ctx)

    # ------------------------------------------------------------------ compiling

    @staticmethod
    def _field(ctx: Context, element: Element, name: str | None) -> str:
        if not name or name not in ctx.types:
            raise ctx.doc.invalid(element, f"refers to field {name!r}, which is not defined")
        return name

    def _optional_field(self, ctx: Context, element: Element, attribute: str) -> str | None:
        name = element.get(attribute)
        return None if name is None else self._field(ctx, element, name)

    def _predictors(self, ctx: Context, element: Element, tag: str) -> set[str]:
        names: set[str] = set()
        listing = child(element, tag)
        if listing is None:
            return names
        for p in children(listing, "Predictor"):
            if p.get("contrastMatrixType") is not None or child(p, "Matrix") is not None:
                raise ctx.doc.unsupported(p, "Predictor with a contrast matrix")
            names.add(self._field(ctx, p, p.get("name")))
        return names

    def _read_pp_matrix(
        self, ctx: Context, element: Element, factors: set[str], covariates: set[str]
    ) -> dict[str | None, _Rows]:
        matrix = child(element, "PPMatrix")
        if matrix is None:
            raise ctx.doc.invalid(element, "has no PPMatrix")
        rows: dict[str | None, _Rows] = {}
        for cell in children(matrix, "PPCell"):
            name = self._field(ctx, cell, cell.get("predictorName"))
            parameter = cell.get("parameterName", "")
            text = cell.get("value")
            if text is None:
                raise ctx.doc.invalid(cell, "has no value")
            if name in factors:
                entry = _Cell(name, True, parse_value(text, ctx.type_of(name)))
            elif name in covariates:
                try:
                    entry = _Cell(name, False, float(text))
                except ValueError:
                    raise ctx.doc.invalid(cell, f"has exponent {text!r}, not a number") from None
            else:
                raise ctx.doc.invalid(
                    cell, f"names predictor {name!r}, which is in no FactorList or CovariateList"
                )
            category = cell.get("targetCategory")
            key = self.canonical(category) if category is not None else None
            rows.setdefault(key, {}).setdefault(parameter, []).append(entry)
        return rows

    def _read_param_matrix(self, ctx: Context, element: Element) -> dict[str | None, _Betas]:
        matrix = child(element, "ParamMatrix")
        if matrix is None:
            raise ctx.doc.invalid(element, "has no ParamMatrix")
        betas: dict[str | None, _Betas] = {}
        for cell in children(matrix, "PCell"):
            parameter = cell.get("parameterName")
            beta = cell.get("beta")
            if parameter is None or beta is None:
                raise ctx.doc.invalid(cell, "needs parameterName and beta")
            category = cell.get("targetCategory")
            key = self.canonical(category) if category is not None else None
            betas.setdefault(key, []).append((parameter, float(beta)))
        return betas

    def _read_categories(self, ctx: Context, element: Element) -> None:
        doc = ctx.doc
        if len(self.classes) < 2:
            raise doc.invalid(element, "is a classifier whose target lists fewer than 2 categories")
        reference = element.get("targetReferenceCategory")
        order = list(self.classes)
        if reference is not None:
            reference = self.canonical(reference)
        elif self.model_type != "ordinalMultinomial":
            # The reference category is the one the ParamMatrix has no cells for.
            absent = [c for c in order if c not in self.betas]
            if len(absent) != 1:
                raise doc.invalid(element, "has no single category without ParamMatrix cells")
            reference = absent[0]
        if reference in order:
            order.remove(reference)
            order.append(reference)
        #: Categories in scoring order (the reference category last); each but the last has
        #: the PPMatrix rows and the ParamMatrix cells it is scored with.
        self.order = tuple(order)
        self.plans: list[tuple[_Rows, _Betas]] = []
        for category in order[:-1]:
            rows = self.rows.get(category, self.rows.get(None, {}))
            if self.rows and category not in self.rows and None not in self.rows:
                raise doc.invalid(element, f"has no PPMatrix cells for category {category!r}")
            if self.model_type == "ordinalMultinomial":
                intercept = self.betas.get(category, [])
                if len(intercept) != 1:
                    raise doc.invalid(
                        element, f"needs one ParamMatrix intercept for category {category!r}"
                    )
                betas = intercept + self.betas.get(None, [])
            else:
                found = self.betas.get(category)
                if found is None and len(order) == 2:
                    found = self.betas.get(None)
                if found is None:
                    raise doc.invalid(
                        element, f"has no ParamMatrix cells for category {category!r}"
                    )
                betas = found
            self.plans.append((rows, betas))

    def _read_cox(self, ctx: Context, element: Element) -> None:
        doc = ctx.doc
        if set(self.betas) != {None}:
            raise doc.invalid(element, "has ParamMatrix cells with a targetCategory")
        self.end_time = self._field(ctx, element, element.get("endTimeVariable"))
        unknown = [p for p, _ in self.betas[None] if p not in self.reference_points]
        if unknown:
            raise doc.invalid(
                element, f"has ParamMatrix cells for unknown parameter {unknown[0]!r}"
            )
        self.reference = sum(beta * self.reference_points[p] for p, beta in self.betas[None])
        tables = child(element, "BaseCumHazardTables")
        if tables is None:
            raise doc.invalid(element, 'has modelType="CoxRegression" but no BaseCumHazardTables')
        strata_variable = element.get("baselineStrataVariable")
        self.strata_variable = (
            None if strata_variable is None else self._field(ctx, element, strata_variable)
        )
        self.strata: list[tuple[Any, _Stratum]] = []
        self.table: _Stratum | None = None
        if self.strata_variable is not None:
            kind = ctx.type_of(self.strata_variable)
            for stratum in children(tables, "BaselineStratum"):
                value = stratum.get("value")
                if value is None:
                    raise doc.invalid(stratum, "has no value")
                self.strata.append((parse_value(value, kind), _read_stratum(ctx, stratum)))
        else:
            self.table = _read_stratum(ctx, tables)

    # ------------------------------------------------------------------ scoring

    @property
    def _dtype(self) -> Any:
        return np.float32 if self.float_math else np.float64

    def _multiplier(self, cells: list[_Cell], scope: Scope) -> np.ndarray:
        dtype = self._dtype
        factor: Any = np.ones(scope.n, dtype=dtype)
        covariate: Any = np.ones(scope.n, dtype=dtype)
        has_covariate = False
        for cell in cells:
            column = scope.get(cell.field)
            missing = is_missing(column)
            if cell.factor:
                hit = (column == cell.value).astype(dtype)
                factor = np.where(missing, np.nan, factor * hit).astype(dtype)
            else:
                x: Any = column.astype(dtype, copy=False)
                has_covariate = True
                if cell.value != 1:
                    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
                        x = np.power(x, dtype(cell.value))
                covariate = covariate * x
        if not has_covariate:
            return factor
        # A covariate is not read where the factors already made the product 0.
        return np.where(factor == 0, dtype(0), factor * covariate).astype(dtype)

    def _dot(self, rows: _Rows, betas: _Betas, scope: Scope, cache: dict[int, np.ndarray]) -> Any:
        dtype = self._dtype
        total: Any = np.zeros(scope.n, dtype=dtype)
        for parameter, beta in betas:
            cells = rows.get(parameter)
            if cells is None:
                total = total + dtype(beta)
                continue
            key = id(cells)
            if key not in cache:
                cache[key] = self._multiplier(cells, scope)
            total = total + dtype(beta) * cache[key]
        return total

    def _offset(self, eta: Any, scope: Scope) -> Any:
        if self.offset_variable is not None:
            return eta + scope.get(self.offset_variable).astype(self._dtype, copy=False)
        if self.offset_value is not None:
            return eta + self._dtype(self.offset_value)
        return eta

    def _link(self, eta: Any, scope: Scope) -> Any:
        assert self.link is not None
        mu = inverse_link(
            self.link, self._offset(eta, scope), self.link_parameter, self.dist_parameter
        )
        if self.trials_variable is not None:
            trials = scope.get(self.trials_variable).astype(np.float64, copy=False)
            mu = mu * np.trunc(trials)
        elif self.trials_value is not None:
            mu = mu * self.trials_value
        return mu

    def score(self, scope: Scope) -> ModelResult:
        n = scope.n
        cache: dict[int, np.ndarray] = {}
        if self.model_type == "CoxRegression":
            return ModelResult(n, value=self._cox(scope, cache))
        if self.function == "regression":
            eta = self._dot(self.rows.get(None, {}), self.betas.get(None, []), scope, cache)
            if self.model_type == "generalizedLinear":
                eta = self._link(eta, scope)
            return ModelResult(n, value=eta)
        return self._classify(scope, cache)

    def _classify(self, scope: Scope, cache: dict[int, np.ndarray]) -> ModelResult:
        n = scope.n
        k = len(self.order)
        values = np.empty((n, k), dtype=np.float64)
        etas = [self._dot(rows, betas, scope, cache) for rows, betas in self.plans]
        with np.errstate(over="ignore", invalid="ignore"):
            if self.model_type == "generalizedLinear":
                previous: Any = None
                for j, eta in enumerate(etas):
                    previous = self._link(eta, scope)
                    values[:, j] = previous
                values[:, k - 1] = 1.0 - previous
            elif self.model_type == "multinomialLogistic":
                stacked = np.column_stack([*etas, np.zeros(n)]).astype(np.float64)
                values = np.exp(stacked)
                values = values / values.sum(axis=1, keepdims=True)
                overflow = ~np.isfinite(values).all(axis=1) & ~np.isnan(stacked).any(axis=1)
                if overflow.any():  # exp overflowed: the same ratios, computed shifted
                    shifted = np.exp(
                        stacked[overflow] - stacked[overflow].max(axis=1, keepdims=True)
                    )
                    values[overflow] = shifted / shifted.sum(axis=1, keepdims=True)
            else:
                assert self.cumulative_link is not None
                cumulative = np.ones((n, k), dtype=np.float64)
                for j, eta in enumerate(etas):
                    cumulative[:, j] = inverse_link(
                        self.cumulative_link, self._offset(eta, scope), None, None
                    )
                values[:, 0] = cumulative[:, 0]
                values[:, 1:] = cumulative[:, 1:] - cumulative[:, :-1]
        missing = np.zeros(n, bool)
        for eta in etas:
            missing |= np.isnan(eta)
        values[missing] = np.nan
        proba = np.empty((n, len(self.classes)), dtype=np.float64)
        for j, category in enumerate(self.order):
            proba[:, self.classes.index(category)] = values[:, j]
        return ModelResult(
            n,
            labels=labels_from_probabilities(proba, self.classes),
            classes=self.classes,
            probabilities=proba,
        )

    def _cox(self, scope: Scope, cache: dict[int, np.ndarray]) -> np.ndarray:
        n = scope.n
        time = scope.get(self.end_time).astype(np.float64, copy=False)
        baseline = np.full(n, np.nan)
        before = np.zeros(n, bool)
        if self.table is not None:
            baseline, before = _baseline(self.table, time)
        else:
            assert self.strata_variable is not None
            strata = scope.get(self.strata_variable)
            present = ~is_missing(strata)
            for value, stratum in self.strata:
                rows = present & (strata == value)
                if rows.any():
                    baseline[rows], before[rows] = _baseline(stratum, time[rows])
        r = self._dot(self.rows.get(None, {}), self.betas[None], scope, cache).astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore"):
            hazard = np.exp(r - self.reference) * baseline
        # Before the first baseline time the cumulative hazard is 0, whatever the covariates.
        return np.where(before, 0.0, hazard)


def _baseline(stratum: _Stratum, time: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """H0 at each time, missing after maxTime (or where the time is), and where the time is
    before the first cell (the cumulative hazard is 0 there)."""
    index = np.searchsorted(stratum.times, time, side="right") - 1
    late = np.isnan(time) | (time > stratum.max_time)
    before = (index < 0) & ~late
    out = np.where(late, np.nan, stratum.hazards[np.maximum(index, 0)])
    return out, before


def _read_stratum(ctx: Context, element: Element) -> _Stratum:
    cells = children(element, "BaselineCell")
    if not cells:
        raise ctx.doc.invalid(element, "has no BaselineCell")
    max_time = element.get("maxTime")
    if max_time is None:
        raise ctx.doc.invalid(element, "has no maxTime")
    pairs = []
    for cell in cells:
        time, hazard = cell.get("time"), cell.get("cumHazard")
        if time is None or hazard is None:
            raise ctx.doc.invalid(cell, "needs time and cumHazard")
        pairs.append((float(time), float(hazard)))
    # Sorted by time; of cells with the same time the first counts.
    times: dict[float, float] = {}
    for at, cum_hazard in sorted(pairs, key=lambda p: p[0]):
        times.setdefault(at, cum_hazard)
    return _Stratum(
        np.array(list(times), dtype=np.float64),
        np.array(list(times.values()), dtype=np.float64),
        float(max_time),
    )


def _float_attr(ctx: Context, element: Element, name: str) -> float | None:
    text = element.get(name)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise ctx.doc.invalid(element, f"has {name}={text!r}, not a number") from None


def compile_general_regression(ctx: Context, element: Element) -> ModelPlan:
    return GeneralRegressionModel(ctx, element)
