"""What the tests share besides fixtures: the test models and their references, the corpus's
place, the Spark session, and the one comparison helper with its named tolerances.

Fixtures stay in conftest.py; tests import everything else from here (`from helpers import ...`).

Tolerances
----------
Every numeric comparison of a result with its reference goes through `assert_close` with one
of these, chosen by what the two sides compute:

- `EXACT`: the same computation on both sides (an engine against the core, the same bytes
  scored twice): bit for bit, NaN matching NaN.
- `ULPS` (1e-14 relative): the same float64 arithmetic written out by hand in the test, perhaps
  in another order: a few units in the last place.
- `PMML_DOUBLE` (1e-12): byom's native PMML evaluator against pypmml (JPMML) or a hand
  computation through exp/log/pow: both in float64, with other summation orders and other
  libm functions.
- `FLOAT32` (1e-6): an ONNX model, computing in float32 tensors, against the native library
  (scikit-learn, LightGBM) in float64; the error seen is a few times float32's epsilon (1.2e-7)
  of the value, 4e-7 at most on the test models.

Per-model tolerances of exported models (sklearn2pmml, onnxmltools) are in
`model_zoo.TOLERANCE`; the PMML corpus states its own per case.
"""

from __future__ import annotations

import functools
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest


# -- tolerances -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerance:
    """|got - want| <= atol + rtol * |want|, elementwise."""

    name: str
    rtol: float
    atol: float


EXACT = Tolerance("EXACT", 0.0, 0.0)
ULPS = Tolerance("ULPS", 1e-14, 0.0)
PMML_DOUBLE = Tolerance("PMML_DOUBLE", 1e-12, 1e-12)
FLOAT32 = Tolerance("FLOAT32", 1e-6, 1e-6)


def assert_close(got: object, want: object, tol: Tolerance, err_msg: str = "") -> None:
    """Numbers (scalars, sequences, arrays; None is NaN) agree within `tol`, with NaN (NULL)
    exactly where the reference has it and the same shape (a scalar reference holds for
    every value)."""
    have = np.asarray(got, dtype=np.float64)
    expected = np.asarray(want, dtype=np.float64)
    if expected.ndim == 0:
        expected = np.broadcast_to(expected, have.shape)
    np.testing.assert_allclose(
        have,
        expected,
        rtol=tol.rtol,
        atol=tol.atol,
        equal_nan=True,
        err_msg=f"{tol.name}: {err_msg}" if err_msg else tol.name,
        strict=True,
    )


# -- test models ----------------------------------------------------------------------------------
IRIS_FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

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
    """LINEAR_PMML's prediction, by hand: a NULL z is the model's replacement, 0."""
    z = np.where(np.isnan(z), 0.0, z)
    return 1 + 2 * x - 0.5 * z + np.where(np.asarray(color) == "red", 3.0, 0.0)


# -- the PMML corpus ------------------------------------------------------------------------------
SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = SHARED / "conformance" / "pmml"


def corpus_dir() -> Path:
    """The PMML conformance corpus beside the checkout; tests skip where it is absent."""
    if not CORPUS.is_dir():
        pytest.skip(
            f"PMML conformance corpus not found at {CORPUS} (it ships beside CI's checkout)"
        )
    return CORPUS


# -- Spark ----------------------------------------------------------------------------------------
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
