"""Acceptance 1: models from scikit-learn, LightGBM and XGBoost, exported to ONNX and PMML,
score in DuckDB SQL as the native library predicts, within the tolerances in model_zoo."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from model_zoo import NAMES, TOLERANCE, build

from udfs.duckdb import sql

CASES = [(name, fmt) for name in NAMES for fmt in ("onnx", "pmml")]


@pytest.mark.parametrize(("name", "fmt"), CASES, ids=[f"{n}-{f}" for n, f in CASES])
def test_duckdb_matches_native(con, store, name, fmt):
    zoo = build(name)
    blob = zoo.onnx if fmt == "onnx" else zoo.pmml
    assert blob is not None
    inputs = None
    if fmt == "onnx":
        inputs = ";".join(f"{k}={','.join(v)}" for k, v in zoo.onnx_inputs.items())
    store.add(name, blob, inputs=inputs)
    table = pa.Table.from_pandas(zoo.data.reset_index(drop=True), preserve_index=False)
    table = table.append_column("_row", pa.array(np.arange(table.num_rows)))
    con.register("zoo_rows", table)
    rows = sql(
        con,
        f"SELECT score('{name}', *) AS s, predict('{name}', *) AS p FROM zoo_rows ORDER BY _row",
    ).fetchall()
    assert len(rows) == len(zoo.data)
    scores = np.array([r[0] for r in rows], dtype=np.float64)
    tol = TOLERANCE[name][fmt]
    if zoo.task == "regression":
        np.testing.assert_allclose(scores, zoo.native_pred, rtol=0, atol=tol)
        return
    assert zoo.native_proba is not None and zoo.classes is not None
    proba = zoo.native_proba
    expected = proba[:, 1] if zoo.task == "binary" else proba.max(axis=1)
    np.testing.assert_allclose(scores, expected, rtol=0, atol=tol)
    got_proba = np.array([[r[1]["probabilities"][c] for c in zoo.classes] for r in rows])
    np.testing.assert_allclose(got_proba, proba, rtol=0, atol=tol)
    labels = np.array([r[1]["label"] for r in rows])
    np.testing.assert_array_equal(labels, np.asarray(zoo.native_pred).astype(str))
