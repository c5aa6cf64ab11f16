"""The benchmark harness (the bench/harness package) on fixed numbers: medians, ratios, the
table, the targets, the sanity checks, the JSON record and the chart file. Nothing here is timed."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
harness = pytest.importorskip("harness")


def _group(label: str = "cfg") -> harness.Group:
    g = harness.Group("k", label, {"base": (1000, lambda: 1.0), "fast": (1000, lambda: 1.0)})
    g.series["base"].wall = [2.0, 1.0, 4.0]  # median 2 s: 500 rows/s
    g.series["base"].cpu = [2.0, 2.0, 2.0]
    g.series["fast"].wall = [1.0, 0.5, 9.0]  # median 1 s: 1000 rows/s
    g.series["fast"].cpu = [4.0, 4.0, 4.0]
    return g


def test_medians_ratios_and_spread() -> None:
    s = _group().series
    assert s["base"].rps() == 500.0 and s["fast"].rps() == 1000.0
    assert harness.ratio(s, "fast", "base") == 2.0
    assert harness.ratio(s, "fast", "base", cpu=True) == 0.5
    assert s["fast"].spread() == (1000 / 9.0, 2000.0)


def test_table_targets_and_checks(capsys: pytest.CaptureFixture[str]) -> None:
    g = _group()
    lines = harness.table([g], 3, "base")
    row = next(line for line in lines if " fast " in line)
    assert row.split()[-5:] == ["1,000", "1,000", "2.000", "250", "0.500"]
    assert "meets target" in harness.target(g.series, "fast", "base", "fast / base", 1.5)
    assert "BELOW target" in harness.target(g.series, "fast", "base", "fast / base", 2.5)
    checks = {"a": harness.sum_check(1.0, 1.0 + 1e-9), "b": harness.sum_check(1.0, 2.0)}
    harness.sanity("t", checks)
    out = capsys.readouterr().out.splitlines()
    assert out[-2].endswith("ok") and out[-1].endswith("MISMATCH")


def test_run_rounds_interleaves_and_keeps_values() -> None:
    calls: list[str] = []
    g = harness.Group("k", "cfg", {n: (10, lambda n=n: calls.append(n) or n) for n in "abc"})
    log = harness.run_rounds([g], 3, cpu="tree", verbose=False)
    assert calls[:3] == ["a", "b", "c"]  # warm-up, then rotating rounds
    assert calls[3:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]
    assert all(len(s.wall) == 3 and len(s.cpu) == 3 for s in g.series.values())
    assert g.series["b"].value == "b" and len(log.loads) == 3


def test_finish_writes_chart_and_json(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    g = _group("one configuration")
    log = harness.RoundsLog(loads=[0.0, 0.1, 0.2])
    out = harness.Outcome("x", [g], log, "base", "process", [], {})
    args = argparse.Namespace(rows=1000, rounds=3, out=tmp_path)
    record = harness.finish(args, out, "title", {"base": "#d62728"}, model="m")
    harness.write_json(tmp_path / "x.json", record)
    assert (tmp_path / "x_throughput.png").read_bytes()[:4] == b"\x89PNG"
    data = json.loads((tmp_path / "x.json").read_text())
    assert data["groups"]["k"]["contenders"]["fast"]["ratio"] == 2.0
    assert data["other_processes_cores"] == pytest.approx(0.1) and data["model"] == "m"


def test_chart_takes_groups_of_different_contenders(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    other = harness.Group("o", "other", {"base": (10, lambda: 1.0), "third": (10, lambda: 1.0)})
    for s in other.series.values():
        s.wall, s.cpu = [0.1, 0.2], [0.1, 0.2]
    harness.chart([_group(), other], tmp_path / "c.png", "t", "base", {}, log_scale=True)
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"
