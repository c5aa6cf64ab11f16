"""`byom demo` runs end to end and agrees with the native models (small sizes for the suite)."""

from __future__ import annotations

import json
import subprocess
import sys

#: scripts/demo installs only `.[demo]`: the demo must run without these.
NOT_IN_THE_DEMO_EXTRA = ("pyspark", "teradataml", "pypmml")

RUN = """
import io, json, sys
for name in {blocked!r}:
    sys.modules[name] = None  # importing it now raises ImportError, as if not installed
from rich.console import Console
from byom_cli.demo import run_demo
out = io.StringIO()
figures = run_demo(rows=20_000, db={db!r}, pmml_rows=500, console=Console(file=out, width=200))
print(json.dumps({{"figures": figures, "text": out.getvalue()}}))
"""


def test_demo_end_to_end_with_only_the_demo_extra(tmp_path):
    code = RUN.format(blocked=NOT_IN_THE_DEMO_EXTRA, db=str(tmp_path / "demo.duckdb"))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["figures"]["onnx_max_diff"] < 1e-4
    assert result["figures"]["pmml_max_diff"] < 1e-9
    assert "SELECT id, score(model_id, *) AS score FROM customers" in result["text"]
    assert "byom demo results" in result["text"]
