"""The benchmarks' folders, their common command-line options and how a run ends (``finish``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chart import chart
from .clock import BUSY
from .report import report, results, sanity
from .rounds import Group, RoundsLog

BENCH = Path(__file__).resolve().parents[1]
ROOT = BENCH.parent
RESULTS = BENCH / "results"
if str(ROOT) not in sys.path:  # run from a checkout without installing byom
    sys.path.insert(0, str(ROOT))


def parser(doc: str, rows: int = 1_000_000, rounds: int = 5) -> argparse.ArgumentParser:
    """The options every benchmark takes: --rows, --rounds, --train-rows, --wait-quiet, --out."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=rows, help=f"rows scored (default {rows:,})")
    p.add_argument("--rounds", type=int, default=rounds, help="interleaved timed rounds")
    p.add_argument("--train-rows", type=int, default=20_000, help="LightGBM training rows")
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help=f"before each round, wait up to S s for other processes to use < {BUSY} cores; "
        "redo a round during which they used more",
    )
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder (bench/results)")
    return p


@dataclass
class Outcome:
    """What a benchmark measured, for ``finish``: its groups, rounds log and baseline, how CPU
    time was counted, its target lines and sanity checks (see ``sum_check``)."""

    name: str  # results/<name>_throughput.{png,json}
    groups: Sequence[Group]
    log: RoundsLog
    baseline: str
    cpu: str
    targets: list[str]
    checks: dict[str, dict[str, Any]]


def finish(
    args: argparse.Namespace, out: Outcome, title: str, colors: dict[str, str], **extra: Any
) -> dict[str, Any]:
    """Print the report and the sanity checks, draw the chart; return the JSON record (written
    by ``write_json`` once the benchmark has added to it)."""
    text = report(out.groups, out.log, out.baseline, out.cpu, out.targets)
    checks = sanity("each contender's result vs onnxruntime's on the same rows", out.checks)
    log_scale = extra.pop("log_scale", False)
    path = args.out / f"{out.name}_throughput.png"
    chart(out.groups, path, title, out.baseline, colors, log_scale)
    record = results(args, out.groups, out.log, out.baseline)
    return record | {"cpu_clock": out.cpu, **extra, "sanity": checks, "table": text}
