"""Fixtures only: small real models, a DuckDB connection with byom registered, the Spark
session. What tests share besides fixtures is in helpers.py."""

from __future__ import annotations

import os

import numpy as np
import pytest
from helpers import IRIS_FEATURES, spark_session


@pytest.fixture
def con():
    import duckdb

    from udfs.duckdb import register

    connection = duckdb.connect()
    register(connection)
    yield connection
    connection.close()


@pytest.fixture
def store(con):
    from udfs.duckdb import DuckDBModelStore

    return DuckDBModelStore(con)


@pytest.fixture(scope="session")
def iris():
    from sklearn.datasets import load_iris

    data = load_iris(as_frame=True)
    frame = data.frame.rename(
        columns={
            "sepal length (cm)": "sepal_length",
            "sepal width (cm)": "sepal_width",
            "petal length (cm)": "petal_length",
            "petal width (cm)": "petal_width",
        }
    )
    return frame


@pytest.fixture(scope="session")
def iris_logreg(iris):
    """A multiclass logistic regression and its ONNX export (one [None, 4] float input)."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X = iris[IRIS_FEATURES].to_numpy(np.float32)
    model = LogisticRegression(max_iter=1000).fit(X, iris["target"])
    onx = to_onnx(model, X[:1], options={"zipmap": False}).SerializeToString()
    return model, onx


@pytest.fixture(scope="session")
def iris_binary_onnx(iris):
    """A binary classifier (versicolor vs rest) in ONNX, with the default ZipMap output."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    X = iris[IRIS_FEATURES].to_numpy(np.float32)
    y = (iris["target"] == 1).astype(int)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    return model, to_onnx(model, X[:1]).SerializeToString()


@pytest.fixture(scope="session")
def iris_regressor(iris):
    """A linear regression predicting petal_width from the other three columns."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    X = iris[IRIS_FEATURES[:3]].to_numpy(np.float32)
    model = LinearRegression().fit(X, iris["petal_width"])
    return model, to_onnx(model, X[:1]).SerializeToString()


@pytest.fixture(scope="session")
def iris_lightgbm(iris):
    """A LightGBM binary model as its text file (booster, bytes): numeric iris columns, a
    number with NaNs (z) and a pandas category (color), so its splits take every route."""
    import lightgbm as lgb
    import pandas as pd

    rng = np.random.default_rng(5)
    n = len(iris)
    z = np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n))
    color = rng.choice(["red", "blue"], size=n)
    frame = iris[["sepal_length", "petal_length"]].assign(
        z=z, color=pd.Categorical(color, categories=["blue", "red"])
    )
    y = (iris["target"] == 1) | ((color == "red") & (np.nan_to_num(z) > 0.5))
    params = {"objective": "binary", "num_leaves": 7, "min_data_in_leaf": 3, "verbose": -1}
    params.update(min_data_per_group=3, cat_smooth=1.0, num_threads=1)
    booster = lgb.train(params, lgb.Dataset(frame, y.astype(int)), num_boost_round=20)
    return booster, booster.model_to_string().encode()


@pytest.fixture(autouse=True, scope="session")
def _java():
    from byom.java import ensure_java

    ensure_java()
    os.environ.setdefault("BYOM_TEST", "1")


@pytest.fixture(scope="session")
def spark():
    return spark_session()
