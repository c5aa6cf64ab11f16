"""`byom demo` runs end to end and agrees with the native models (small sizes for the suite)."""

from __future__ import annotations

import io

from rich.console import Console

from byom.demo import run_demo


def test_demo_end_to_end(tmp_path):
    out = io.StringIO()
    figures = run_demo(
        rows=20_000,
        db=str(tmp_path / "demo.duckdb"),
        pmml_rows=500,
        console=Console(file=out, width=200),
    )
    assert figures["onnx_max_diff"] < 1e-4
    assert figures["pmml_max_diff"] < 1e-9
    text = out.getvalue()
    assert "SELECT id, score(model_id, *) AS score FROM customers" in text
    assert "byom demo results" in text
