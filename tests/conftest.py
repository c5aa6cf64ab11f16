"""Shared fixtures: small real models, a DuckDB connection with byom registered, the corpus path."""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = SHARED / "conformance" / "pmml"


def corpus_dir() -> Path:
    """The PMML conformance corpus beside the checkout; tests skip where it is absent."""
    if not CORPUS.is_dir():
        pytest.skip(
            f"PMML conformance corpus not found at {CORPUS} (it ships beside CI's checkout)"
        )
    return CORPUS


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


IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


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


# A hand-written PMML regression with a categorical field, so its expected values are plain
# arithmetic: y = 1 + 2*x - 0.5*z + (3 if color == "red" else 0).
LINEAR_PMML = b"""<?xml version="1.0" encoding="UTF-8"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header description="byom test model"/>
  <DataDictionary numberOfFields="4">
    <DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="z" optype="continuous" dataType="double"/>
    <DataField name="color" optype="categorical" dataType="string">
      <Value value="red"/><Value value="blue"/>
    </DataField>
    <DataField name="y" optype="continuous" dataType="double"/>
  </DataDictionary>
  <RegressionModel functionName="regression" modelName="linear">
    <MiningSchema>
      <MiningField name="x"/>
      <MiningField name="z" missingValueReplacement="0"/>
      <MiningField name="color"/>
      <MiningField name="y" usageType="target"/>
    </MiningSchema>
    <RegressionTable intercept="1">
      <NumericPredictor name="x" coefficient="2"/>
      <NumericPredictor name="z" coefficient="-0.5"/>
      <CategoricalPredictor name="color" value="red" coefficient="3"/>
      <CategoricalPredictor name="color" value="blue" coefficient="0"/>
    </RegressionTable>
  </RegressionModel>
</PMML>
"""


def linear_pmml_expected(x, z, color):
    z = np.where(np.isnan(z), 0.0, z)
    return 1 + 2 * x - 0.5 * z + np.where(np.asarray(color) == "red", 3.0, 0.0)


@pytest.fixture(autouse=True, scope="session")
def _java():
    from byom.java import ensure_java

    ensure_java()
    os.environ.setdefault("BYOM_TEST", "1")


@functools.cache
def spark_session():
    """One local[2] Spark for the whole run, with small Arrow batches so that every query
    spans several partitions and several batches per partition."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    return (
        SparkSession.builder.master("local[2]")
        .appName("byom-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "200")
        .config("spark.driver.memory", "2g")
        .config("spark.sql.warehouse.dir", tempfile.mkdtemp(prefix="byom-spark-warehouse-"))
        .getOrCreate()
    )


@pytest.fixture(scope="session")
def spark():
    return spark_session()
