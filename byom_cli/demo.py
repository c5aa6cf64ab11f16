"""`byom demo`: the whole product in one minute, on an embedded DuckDB.

Trains two scikit-learn models on a data set that ships with scikit-learn, exports them to ONNX
and PMML, saves them in a model table, scores a generated table of a million rows with the
card's query, and compares every score with the native model's own predictions.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from byom.errors import ByomError
from byom.export import sklearn_to_pmml


def _require_demo_extras() -> None:
    try:
        import skl2onnx  # noqa: F401
        import sklearn  # noqa: F401
        import sklearn2pmml  # noqa: F401
    except ImportError as exc:
        raise ByomError(
            f"the demo needs scikit-learn, skl2onnx and sklearn2pmml ({exc.name} is missing): "
            "run `pip install 'byom[demo]'`"
        ) from None


def run_demo(rows: int, db: str, pmml_rows: int, console: Console) -> dict[str, float]:
    """Run the demo; returns the measured figures (rows/s, largest differences)."""
    _require_demo_extras()
    import duckdb
    import pandas as pd
    import pyarrow as pa
    from skl2onnx import to_onnx
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn2pmml.pipeline import PMMLPipeline

    from udfs.duckdb import register, sql

    say = console.print
    data = load_breast_cancer(as_frame=True)
    features = [c.replace(" ", "_") for c in data.feature_names]
    frame = data.frame.copy()
    frame.columns = [*features, "target"]
    X, y = frame[features], frame["target"]

    say("[bold]1. Train[/] two models on scikit-learn's breast cancer data set")
    logreg = PMMLPipeline(
        [("scaler", StandardScaler()), ("classifier", LogisticRegression(max_iter=5000))]
    ).fit(X, y)
    forest = PMMLPipeline(
        [("classifier", RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0))]
    ).fit(X, y)

    say("[bold]2. Export[/] to ONNX (skl2onnx) and PMML (sklearn2pmml)")
    sample = X.to_numpy(np.float32)[:1]
    blobs = {
        "cancer_logreg": to_onnx(
            _plain(logreg), sample, options={"zipmap": False}
        ).SerializeToString(),
        "cancer_forest": to_onnx(
            _plain(forest), sample, options={"zipmap": False}
        ).SerializeToString(),
        "cancer_forest_pmml": sklearn_to_pmml(forest),
    }

    con = duckdb.connect(db)
    if console.is_terminal:
        con.execute("SET enable_progress_bar = true")
    store = register(con)
    say(f"[bold]3. Save[/] the models in table byom_models of DuckDB database {db!r}")
    for model_id, blob in blobs.items():
        inputs = None if model_id.endswith("_pmml") else ",".join(features)
        store.add(model_id, blob, replace=True, inputs=inputs, description="byom demo")

    say(f"[bold]4. Generate[/] table customers: {rows:,} rows, model chosen per row")
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(X), rows)
    values = X.to_numpy()[picks] * rng.normal(1.0, 0.05, size=(rows, len(features)))
    customers = pa.table(
        {
            "id": np.arange(rows),
            "model_id": np.where(picks % 2 == 0, "cancer_logreg", "cancer_forest"),
            **{f: values[:, j] for j, f in enumerate(features)},
        }
    )
    con.register("customers_arrow", customers)
    con.execute("CREATE OR REPLACE TABLE customers AS SELECT * FROM customers_arrow")
    con.unregister("customers_arrow")

    query = "SELECT id, score(model_id, *) AS score FROM customers ORDER BY id"
    say(f"[bold]5. Score[/] with the card's query: [cyan]{query}[/]")
    start = time.perf_counter()
    scores = sql(con, query).fetchnumpy()["score"]
    onnx_seconds = time.perf_counter() - start

    native = np.where(
        picks % 2 == 0,
        logreg.predict_proba(pd.DataFrame(values, columns=features))[:, 1],
        forest.predict_proba(pd.DataFrame(values, columns=features))[:, 1],
    )
    onnx_diff = float(np.max(np.abs(scores - native)))

    n_pmml = min(pmml_rows, rows)
    say(f"[bold]6. Score PMML[/] (byom's native evaluator, vectorized) on {n_pmml:,} rows")
    pmml_query = (
        f"SELECT id, score('cancer_forest_pmml', *) AS score FROM customers "
        f"WHERE id < {n_pmml} ORDER BY id"
    )
    start = time.perf_counter()
    pmml_scores = sql(con, pmml_query).fetchnumpy()["score"]
    pmml_seconds = time.perf_counter() - start
    pmml_native = forest.predict_proba(pd.DataFrame(values[:n_pmml], columns=features))[:, 1]
    pmml_diff = float(np.max(np.abs(pmml_scores - pmml_native)))

    report = Table(title="byom demo results")
    report.add_column("model format")
    report.add_column("rows", justify="right")
    report.add_column("rows/s", justify="right")
    report.add_column("max |byom - native|", justify="right")
    report.add_row(
        "ONNX (2 models, per-row choice)",
        f"{rows:,}",
        f"{rows / onnx_seconds:,.0f}",
        f"{onnx_diff:.2e}",
    )
    report.add_row(
        "PMML (native)", f"{n_pmml:,}", f"{n_pmml / pmml_seconds:,.0f}", f"{pmml_diff:.2e}"
    )
    console.print(report)
    if onnx_diff > 1e-4 or pmml_diff > 1e-9:
        raise ByomError(
            f"scores differ from the native models (ONNX {onnx_diff:.2e}, PMML {pmml_diff:.2e})"
        )
    con.close()
    return {
        "onnx_rows_per_s": rows / onnx_seconds,
        "onnx_max_diff": onnx_diff,
        "pmml_rows_per_s": n_pmml / pmml_seconds,
        "pmml_max_diff": pmml_diff,
    }


def _plain(pipeline: Any) -> Any:
    """The scikit-learn Pipeline inside a PMMLPipeline, which skl2onnx converts."""
    from sklearn.pipeline import Pipeline

    return Pipeline(list(pipeline.steps))
