"""`byom demo`: the whole product in one minute, on an embedded DuckDB.

Trains two scikit-learn models on a data set that ships with scikit-learn, exports them to ONNX
and PMML, saves them in a model table, scores a generated table of a million rows with the
card's query, and compares every score with the native model's own predictions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
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


@dataclass
class _Models:
    """The demo's two trained pipelines, on the breast cancer data's features."""

    features: list[str]
    X: Any
    logreg: Any
    forest: Any

    def native(self, values: np.ndarray, picks: np.ndarray) -> np.ndarray:
        """P(malignant) from the model each row picked (even rows: logreg, odd: forest)."""
        import pandas as pd

        frame = pd.DataFrame(values, columns=self.features)
        logreg = self.logreg.predict_proba(frame)[:, 1]
        return np.where(picks % 2 == 0, logreg, self.forest.predict_proba(frame)[:, 1])


def _train() -> _Models:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    from sklearn2pmml.pipeline import PMMLPipeline

    data = load_breast_cancer(as_frame=True)
    features = [c.replace(" ", "_") for c in data.feature_names]
    frame = data.frame.copy()
    frame.columns = [*features, "target"]
    X, y = frame[features], frame["target"]
    logreg = PMMLPipeline(
        [("scaler", StandardScaler()), ("classifier", LogisticRegression(max_iter=5000))]
    ).fit(X, y)
    forest = PMMLPipeline(
        [("classifier", RandomForestClassifier(n_estimators=30, max_depth=6, random_state=0))]
    ).fit(X, y)
    return _Models(features, X, logreg, forest)


def _export(models: _Models) -> dict[str, bytes]:
    from skl2onnx import to_onnx

    sample = models.X.to_numpy(np.float32)[:1]

    def onnx(pipeline: Any) -> bytes:
        return to_onnx(_plain(pipeline), sample, options={"zipmap": False}).SerializeToString()

    return {
        "cancer_logreg": onnx(models.logreg),
        "cancer_forest": onnx(models.forest),
        "cancer_forest_pmml": sklearn_to_pmml(models.forest),
    }


def _customers(con: Any, models: _Models, rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Table customers: rows drawn near the data set's, each naming the model to score it."""
    import pyarrow as pa

    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(models.X), rows)
    values = models.X.to_numpy()[picks] * rng.normal(1.0, 0.05, size=(rows, len(models.features)))
    customers = pa.table(
        {
            "id": np.arange(rows),
            "model_id": np.where(picks % 2 == 0, "cancer_logreg", "cancer_forest"),
            **{f: values[:, j] for j, f in enumerate(models.features)},
        }
    )
    con.register("customers_arrow", customers)
    con.execute("CREATE OR REPLACE TABLE customers AS SELECT * FROM customers_arrow")
    con.unregister("customers_arrow")
    return picks, values


def _timed(con: Any, query: str) -> tuple[np.ndarray, float]:
    from udfs.duckdb import sql

    start = time.perf_counter()
    scores = sql(con, query).fetchnumpy()["score"]
    return scores, time.perf_counter() - start


def run_demo(rows: int, db: str, pmml_rows: int, console: Console) -> dict[str, float]:
    """Run the demo; returns the measured figures (rows/s, largest differences)."""
    _require_demo_extras()
    import duckdb

    from udfs.duckdb import register

    say = console.print
    say("[bold]1. Train[/] two models on scikit-learn's breast cancer data set")
    models = _train()
    say("[bold]2. Export[/] to ONNX (skl2onnx) and PMML (sklearn2pmml)")
    blobs = _export(models)

    con = duckdb.connect(db)
    if console.is_terminal:
        con.execute("SET enable_progress_bar = true")
    store = register(con)
    say(f"[bold]3. Save[/] the models in table byom_models of DuckDB database {db!r}")
    for model_id, blob in blobs.items():
        inputs = None if model_id.endswith("_pmml") else ",".join(models.features)
        store.add(model_id, blob, replace=True, inputs=inputs, description="byom demo")

    say(f"[bold]4. Generate[/] table customers: {rows:,} rows, model chosen per row")
    picks, values = _customers(con, models, rows)

    query = "SELECT id, score(model_id, *) AS score FROM customers ORDER BY id"
    say(f"[bold]5. Score[/] with the card's query: [cyan]{query}[/]")
    scores, onnx_seconds = _timed(con, query)
    onnx_diff = float(np.max(np.abs(scores - models.native(values, picks))))

    n_pmml = min(pmml_rows, rows)
    say(f"[bold]6. Score PMML[/] (byom's native evaluator, vectorized) on {n_pmml:,} rows")
    pmml_scores, pmml_seconds = _timed(
        con,
        f"SELECT id, score('cancer_forest_pmml', *) AS score FROM customers "
        f"WHERE id < {n_pmml} ORDER BY id",
    )
    forest_only = np.ones(n_pmml, dtype=np.int64)  # odd picks: the forest
    pmml_native = models.native(values[:n_pmml], forest_only)
    pmml_diff = float(np.max(np.abs(pmml_scores - pmml_native)))
    con.close()

    figures = {
        "onnx_rows_per_s": rows / onnx_seconds,
        "onnx_max_diff": onnx_diff,
        "pmml_rows_per_s": n_pmml / pmml_seconds,
        "pmml_max_diff": pmml_diff,
    }
    console.print(_report(figures, rows, n_pmml))
    if onnx_diff > 1e-4 or pmml_diff > 1e-9:
        raise ByomError(
            f"scores differ from the native models (ONNX {onnx_diff:.2e}, PMML {pmml_diff:.2e})"
        )
    return figures


def _report(figures: dict[str, float], rows: int, n_pmml: int) -> Table:
    report = Table(title="byom demo results")
    report.add_column("model format")
    report.add_column("rows", justify="right")
    report.add_column("rows/s", justify="right")
    report.add_column("max |byom - native|", justify="right")
    for name, n, key in (
        ("ONNX (2 models, per-row choice)", rows, "onnx"),
        ("PMML (native)", n_pmml, "pmml"),
    ):
        speed, diff = figures[f"{key}_rows_per_s"], figures[f"{key}_max_diff"]
        report.add_row(name, f"{n:,}", f"{speed:,.0f}", f"{diff:.2e}")
    return report


def _plain(pipeline: Any) -> Any:
    """The scikit-learn Pipeline inside a PMMLPipeline, which skl2onnx converts."""
    from sklearn.pipeline import Pipeline

    return Pipeline(list(pipeline.steps))
