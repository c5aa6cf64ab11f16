"""The layer check really fails when a layer is crossed: lint-imports, with the project's own
contracts, run on a copy of the code with one bad import added (inside a function, where a
check of module-level imports alone would miss it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("byom", "udfs", "byom_cli", "spark_jobs")


def _lint(tmp_path: Path, module: str, source: str) -> subprocess.CompletedProcess[str]:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / Path(*module.split("."))).with_suffix(".py").write_text(source)
    lint = Path(sys.executable).with_name("lint-imports")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.run(
        [str(lint), "--no-cache"], cwd=tmp_path, env=env, capture_output=True, text=True
    )


def test_the_project_keeps_its_layers(tmp_path):
    run = _lint(tmp_path, "byom.harmless", "import byom.scoring\n")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 kept, 0 broken" in run.stdout


@pytest.mark.parametrize(
    ("module", "source", "broken"),
    [
        ("byom.sneaky", "def f():\n    import udfs.duckdb\n", "engine adapters, then the core"),
        ("byom.sneaky", "def f():\n    from byom_cli import app\n", "engine adapters, then"),
        ("udfs.spark.sneaky", "def f():\n    import udfs.duckdb.store\n", "each other"),
    ],
    ids=["core-imports-adapter", "core-imports-cli", "adapter-imports-adapter"],
)
def test_a_crossed_layer_fails_the_check(tmp_path, module, source, broken):
    run = _lint(tmp_path, module, source)
    assert run.returncode != 0
    assert f"{module} -> " in run.stdout, run.stdout
    broken_lines = [line for line in run.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(broken in line for line in broken_lines), run.stdout
