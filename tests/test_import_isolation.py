"""Importing byom pulls in no engine: engines load only inside their adapter."""

from __future__ import annotations

import subprocess
import sys

ENGINES = ("duckdb", "pyspark", "teradataml")


def _loaded_after(statement: str) -> set[str]:
    code = f"{statement}\nimport sys\nprint(' '.join(m for m in {ENGINES!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_core_imports_no_engine():
    assert _loaded_after("import byom, byom.scoring, byom.store, byom_cli") == set()


def test_duckdb_adapter_imports_duckdb_only_when_used():
    assert _loaded_after("import udfs.duckdb") == set()
    used = "import duckdb, udfs.duckdb\nudfs.duckdb.register(duckdb.connect())"
    assert _loaded_after(used) == {"duckdb"}


def test_spark_adapter_imports_pyspark_only_when_used():
    assert _loaded_after("import udfs.spark") == set()
