"""What a run prints and records: ratios of medians, the table, target lines, the load check,
sanity checks, versions and the JSON record."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .clock import BUSY, CPUS
from .rounds import Group, RoundsLog, Series


def ratio(series: dict[str, Series], name: str, base: str, cpu: bool = False) -> float:
    s, b = series[name], series[base]
    return s.cpu_rps() / b.cpu_rps() if cpu else s.rps() / b.rps()


def table(groups: Sequence[Group], rounds: int, baseline: str, width: int = 28) -> list[str]:
    """The medians table: one line per contender and group, ratios to the baseline."""
    lines = [
        f"Median of {rounds} interleaved rounds; ratio = contender / {baseline} (ratio of "
        "medians).",
        f"{'configuration':<{width}} {'contender':<34} {'rows':>9} {'rows/s':>12} {'ratio':>7}"
        f" {'rows/cpu-s':>12} {'cpu ratio':>9}",
    ]
    lines.append("-" * len(lines[-1]))
    for g in groups:
        for name, s in g.series.items():
            lines.append(
                f"{g.label:<{width}} {name:<34} {s.rows:>9,} {s.rps():>12,.0f} "
                f"{ratio(g.series, name, baseline):>7.3f} {s.cpu_rps():>12,.0f} "
                f"{ratio(g.series, name, baseline, cpu=True):>9.3f}"
            )
        lines.append("")
    return lines


def target_line(label: str, value: float, target: float | None, note: str = "") -> str:
    verdict = (
        "" if target is None else f"{'meets' if value >= target else 'BELOW'} target {target:g}"
    )
    detail = "; ".join(filter(None, [verdict, note]))
    return f"  {label:<44} {value:.3f}" + (f"  ({detail})" if detail else "")


def target(
    series: dict[str, Series],
    name: str,
    base: str,
    label: str,
    goal: float | None,
    alt: str | None = None,
) -> str:
    """A target line: name's ratio to base (against goal), alt's ratio, the CPU-time ratio."""
    note = f"per CPU-second {ratio(series, name, base, cpu=True):.3f}"
    if alt is not None:
        note = f"{alt} {ratio(series, alt, base):.3f}; {note}"
    return target_line(label, ratio(series, name, base), goal, note)


def load_lines(log: RoundsLog) -> list[str]:
    """How busy other processes were while the rounds ran, and a warning when they were."""
    mean = log.mean_load()
    if mean is None:
        return []
    per_round = ", ".join(f"{v:.2f}" for v in log.loads if v is not None)
    text = (
        f"Other processes used {mean:.2f} of {CPUS} cores on average while the rounds ran "
        f"(per round: {per_round})."
    )
    if log.discarded:
        text += f" {len(log.discarded)} busier round(s) were discarded and redone."
    lines = ["", text]
    if mean > BUSY:
        lines.append(
            "WARNING: the machine was not quiet; onnxruntime's spinning intra-op threads suffer "
            "most. Re-run when it is quiet (see --wait-quiet), or read the rows/cpu-s column."
        )
    return lines


def sum_check(got: float, ref: float, tol: float = 1e-6, **extra: Any) -> dict[str, Any]:
    rel = abs(got - ref) / abs(ref)
    return {"sum": got, "onnxruntime_sum": ref, "rel_diff": rel, "tol": tol, **extra}


def sanity(title: str, checks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Print each check (a ``sum_check``, or a dict with ``max_abs_diff`` and ``tol``)."""
    print(f"\nSanity: {title}")
    for key, v in checks.items():
        diff = v.get("rel_diff", v.get("max_abs_diff", float("nan")))
        ok = "ok" if diff < v["tol"] else "MISMATCH"
        if "sum" in v:
            what = f"{v['sum']:>20.6f} vs {v['onnxruntime_sum']:>20.6f}  rel diff"
        else:
            what = f"{'':>44}max |diff|"
        print(f"  {key:<40} {what} {diff:.2e}  {ok}")
    return checks


#: Modules every benchmark's versions report names (the model's, onnxruntime's, the data's).
MODULES = ("onnxruntime", "onnxmltools", "lightgbm", "sklearn", "pyarrow", "numpy")


def versions(*modules: str) -> dict[str, str]:
    """Python's version and the ``__version__`` of each importable module: MODULES, and the
    ones named."""
    out = {"python": platform.python_version()}
    for name in (*MODULES, *modules):
        with contextlib.suppress(Exception):
            out[name] = str(importlib.import_module(name).__version__)
    return out


def results(
    args: argparse.Namespace, groups: Sequence[Group], log: RoundsLog, baseline: str
) -> dict[str, Any]:
    """The JSON record common to every benchmark (each adds its own keys)."""
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "rows": args.rows,
        "rounds": args.rounds,
        "cpu_count": CPUS,
        "other_processes_cores": log.mean_load(),
        "other_processes_cores_per_round": log.loads,
        "discarded_rounds_other_processes_cores": log.discarded,
        "baseline": baseline,
        "byom_onnx_threads": int(os.environ.get("BYOM_ONNX_THREADS") or 1),
        "groups": {
            g.key: {"label": g.label, "contenders": _series_json(g.series, baseline)}
            for g in groups
        },
    }


def _series_json(series: dict[str, Series], baseline: str) -> dict[str, Any]:
    return {
        name: {
            "rows": s.rows,
            "wall_s": s.wall,
            "cpu_s": s.cpu,
            "median_rows_per_s": s.rps(),
            "median_rows_per_cpu_s": s.cpu_rps(),
            "ratio": ratio(series, name, baseline),
            "cpu_ratio": ratio(series, name, baseline, cpu=True),
        }
        for name, s in series.items()
    }


def write_json(path: Path, result: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"Results: {path}")


#: What the rows/cpu-s column counts, by CPU clock.
CPU_NOTES = {
    "process": "rows per second of this process's CPU time (all its threads)",
    "tree": "rows per CPU-second of the whole process tree (this process and its children)",
}


def report(
    groups: Sequence[Group], log: RoundsLog, baseline: str, cpu: str, targets: list[str]
) -> str:
    """Print the table, the targets and the load check; return the printed text."""
    width = max(len(g.label) for g in groups) + 2
    lines = table(groups, len(groups[0].series[baseline].wall), baseline, width)
    lines += [f"rows/cpu-s: {CPU_NOTES[cpu]}; steadier than wall time on a shared machine.", ""]
    if targets:
        lines += ["Targets:", *targets]
    lines += load_lines(log)
    text = "\n".join(lines)
    print("\n" + text)
    return text
