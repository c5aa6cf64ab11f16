"""The benchmarks' shared harness: timing, interleaved rounds, load check, report, chart, JSON.

Every benchmark in this folder measures the same way:

* a contender is a function of no arguments that scores the rows and returns a value (a sum, an
  output) kept from its warm-up call for the sanity checks;
* contenders sit in groups (a configuration: DuckDB's thread count, say). Every contender runs
  once to warm up, then ``rounds`` timed rounds; within a round the contenders are interleaved
  in an order that rotates each round, and the groups alternate which goes first;
* each call is timed in wall-clock time and in CPU time, of this process (``cpu="process"``,
  all its threads) or of the whole process tree (``cpu="tree"``: this process and every
  descendant, from /proc, reaped children included: Spark's JVM and Python workers, a script
  run as a subprocess);
* other processes' CPU use is measured during every round (``OtherLoad``); with ``quiet > 0``
  a round first waits for a quiet machine, and a round they disturbed is discarded and redone;
* medians, ratios of medians to a baseline, a printed table, a PNG chart and a JSON file.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
if str(ROOT) not in sys.path:  # run from a checkout without installing byom
    sys.path.insert(0, str(ROOT))

#: Other processes' load (cores) above which the machine is not quiet.
BUSY = 0.2
TICK = 1.0 / os.sysconf("SC_CLK_TCK")
CPUS = os.cpu_count() or 1


# ------------------------------------------------------------------------------- CPU clocks
def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, utime+stime+cutime+cstime in clock ticks) for every process."""
    out: dict[int, tuple[int, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(entry.name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]))
    return out


def tree_cpu_seconds() -> float:
    """CPU seconds of this process and all its descendants. Children that exited and were
    reaped are counted in their parent's cutime, so nothing is counted twice."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0, [os.getpid()]
    while stack:
        pid = stack.pop()
        total += table.get(pid, (0, 0))[1]
        stack.extend(children.get(pid, []))
    return total * TICK


#: The two ways of measuring CPU time, by name (``cpu=`` of ``timed`` and ``run_rounds``).
CPU_CLOCKS: dict[str, Callable[[], float]] = {
    "process": time.process_time,
    "tree": tree_cpu_seconds,
}


def timed(fn: Callable[[], Any], cpu: str = "process") -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds (by the named clock) and fn's value."""
    clock = CPU_CLOCKS[cpu]
    c0, t0 = clock(), time.perf_counter()
    value = fn()
    t1, c1 = time.perf_counter(), clock()
    return t1 - t0, c1 - c0, value


class OtherLoad:
    """CPU used by processes outside this process tree, in cores, since construction."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float] | None:
        try:
            with open("/proc/stat") as f:
                cpu = [int(v) for v in f.readline().split()[1:]]
            busy = sum(cpu[i] for i in (0, 1, 2, 5, 6)) * TICK  # user nice system irq softirq
            return time.perf_counter(), busy, tree_cpu_seconds()
        except (OSError, ValueError, IndexError):
            return None

    def cores(self) -> float | None:
        end = self._sample()
        if self.start is None or end is None or end[0] <= self.start[0]:
            return None
        other = (end[1] - self.start[1]) - (end[2] - self.start[2])
        # A process of this tree that exits unreaped by it (an orphan) takes its CPU time out
        # of the tree's total: clamp what that can make of the estimate.
        return min(max(0.0, other / (end[0] - self.start[0])), float(CPUS))


def wait_quiet(limit: float, window: float = 5.0) -> None:
    """Sleep until other processes used < BUSY cores over a window (at most limit s)."""
    start = time.perf_counter()
    said = start - 60.0
    while True:
        probe = OtherLoad()
        time.sleep(window)
        load = probe.cores()
        now = time.perf_counter()
        if load is None or load < BUSY:
            if now - start > window * 1.5:  # only when it had to wait
                print(f"  machine quiet after {now - start:.0f} s of waiting", flush=True)
            return
        if now - start >= limit:
            print(f"  still busy after {limit:.0f} s ({load:.2f} cores): timing anyway", flush=True)
            return
        if now - said >= 60.0:
            print(f"  waiting: other processes use {load:.2f} cores", flush=True)
            said = now


# ------------------------------------------------------------------------------- rounds
@dataclass
class Series:
    rows: int
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    value: Any = None  # what the warm-up call returned

    def rps(self) -> float:
        return self.rows / statistics.median(self.wall)

    def cpu_rps(self) -> float:
        return self.rows / statistics.median(self.cpu)

    def spread(self) -> tuple[float, float]:
        return self.rows / max(self.wall), self.rows / min(self.wall)

    def medians(self) -> tuple[float, float]:
        return statistics.median(self.wall), statistics.median(self.cpu)


@dataclass
class Group:
    """Contenders measured in one configuration: name -> (rows, fn). ``enter`` sets the
    configuration up before the group's turn in each round."""

    key: str
    label: str
    contenders: dict[str, tuple[int, Callable[[], Any]]]
    enter: Callable[[], Any] = lambda: None
    series: dict[str, Series] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.series = {name: Series(rows) for name, (rows, _) in self.contenders.items()}


@dataclass
class RoundsLog:
    """Other processes' load (cores) during each kept round and each discarded one."""

    loads: list[float | None] = field(default_factory=list)
    discarded: list[float | None] = field(default_factory=list)

    def mean_load(self) -> float | None:
        measured = [v for v in self.loads if v is not None]
        return statistics.mean(measured) if measured else None


def _one_round(
    groups: Sequence[Group], r: int, rounds: int, cpu: str, say: Callable[[str], None]
) -> dict[tuple[int, str], tuple[float, float]]:
    timings: dict[tuple[int, str], tuple[float, float]] = {}
    for g in groups if r % 2 == 0 else groups[::-1]:
        g.enter()
        names = list(g.contenders)
        k = r % len(names)
        for name in names[k:] + names[:k]:
            wall, cpu_s, _ = timed(g.contenders[name][1], cpu)
            timings[id(g), name] = (wall, cpu_s)
            rows = g.series[name].rows
            say(
                f"  round {r + 1}/{rounds}  {g.key:<8} {name:<34} {wall:7.3f} s "
                f"(cpu {cpu_s:6.3f} s)  {rows / wall:>12,.0f} rows/s"
            )
    return timings


def run_rounds(
    groups: Sequence[Group],
    rounds: int,
    cpu: str = "process",
    quiet: float = 0.0,
    verbose: bool = True,
) -> RoundsLog:
    """Warm every contender up (its value is kept), then time ``rounds`` kept rounds.

    With quiet > 0, each round first waits (up to that many seconds) for a quiet machine, and a
    round during which other processes used more than BUSY cores is discarded and run again
    (at most ``rounds`` times in all), so that the medians come from quiet rounds."""

    def say(line: str) -> None:
        if verbose:
            print(line, flush=True)

    for g in groups:
        g.enter()
        for name, (_, fn) in g.contenders.items():
            wall, _, g.series[name].value = timed(fn, cpu)
            say(f"  warm-up        {g.key:<8} {name:<34} {wall:7.3f} s")
    log = RoundsLog()
    while len(log.loads) < rounds:
        r = len(log.loads)
        if quiet > 0:
            wait_quiet(quiet)
        others = OtherLoad()
        timings = _one_round(groups, r, rounds, cpu, say)
        load = others.cores()
        if quiet > 0 and load is not None and load > BUSY and len(log.discarded) < rounds:
            log.discarded.append(load)
            say(f"  round {r + 1}/{rounds}  other processes: {load:.2f} cores: discarded, redone")
            continue
        for g in groups:
            for name, s in g.series.items():
                s.wall.append(timings[id(g), name][0])
                s.cpu.append(timings[id(g), name][1])
        log.loads.append(load)
        say(f"  round {r + 1}/{rounds}  other processes: {load or 0:.2f} cores")
    return log


def ladder(
    steps: dict[str, Callable[[], Any]], reps: int, cpu: str, rows: int, title: str, width: int
) -> tuple[dict[str, tuple[float, float]], list[str]]:
    """A profile's cost ladder: each step timed like a contender (interleaved, ``reps`` rounds).
    Returns (median wall s, median CPU s) per step and the printed table's lines."""
    g = Group("ladder", title, {name: (rows, fn) for name, fn in steps.items()})
    run_rounds([g], reps, cpu, verbose=False)
    med = {name: s.medians() for name, s in g.series.items()}
    lines = [title, f"{'step':<{width}} {'wall s':>8} {'cpu s':>8} {'rows/cpu-s':>12}"]
    lines += [f"{k:<{width}} {w:>8.3f} {c:>8.3f} {rows / c:>12,.0f}" for k, (w, c) in med.items()]
    return med, lines


def cprofile(fn: Callable[[], Any]) -> tuple[str, float, float]:
    """cProfile one call: the report (20 costliest by own time, 25 by cumulative time), the
    seconds profiled and the seconds inside onnxruntime's ``run``."""
    pr = cProfile.Profile()
    pr.enable()
    fn()
    pr.disable()
    buf = io.StringIO()
    stats = pstats.Stats(pr, stream=buf)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(25)
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in table.values())
    ort = sum(v[2] for k, v in table.items() if "onnxruntime_pybind11_state" in str(k[2]))
    return buf.getvalue(), total, ort


def split_lines(split: dict[str, float], total: float) -> list[str]:
    """The byom query's CPU seconds split by differences of the ladder's steps."""
    lines = ["", "CPU seconds of the byom query, split by differences of the ladder:"]
    for part, v in split.items():
        lines.append(
            f"  {part:<38} {v:>7.3f} s  ({100 * v / total:5.1f} % of byom's {total:.3f} s)"
        )
    return lines


# ------------------------------------------------------------------------------- report
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


# ------------------------------------------------------------------------------- chart
def chart(
    groups: Sequence[Group],
    path: Path,
    title: str,
    baseline: str,
    colors: dict[str, str],
    log_scale: bool = False,
) -> None:
    """Rows/s per contender (bars; median, whiskers min..max), one cluster per group, the ratio
    to the baseline above each bar. A contender on fewer rows says so in the legend."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(groups[0].series)
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(min(9.0, 3.0 + 0.9 * len(names) * len(groups)), 4.8), dpi=100)
    rows = max(s.rows for s in groups[0].series.values())
    top, bottom = 0.0, float("inf")
    for j, name in enumerate(names):
        xs = [i + (j - (len(names) - 1) / 2) * width for i in range(len(groups))]
        ys = [g.series[name].rps() for g in groups]
        spans = [g.series[name].spread() for g in groups]
        top, bottom = max(top, *(b for _, b in spans)), min(bottom, *(a for a, _ in spans))
        n = groups[0].series[name].rows
        ax.bar(
            xs,
            ys,
            width * 0.92,
            label=name if n == rows else f"{name}, {n:,} rows",
            color=colors.get(name, "grey"),
            yerr=np.array([[y - a, b - y] for y, (a, b) in zip(ys, spans, strict=True)]).T,
            capsize=2,
            error_kw={"elinewidth": 0.8, "ecolor": "#444"},
        )
        for x, y, (_, b), g in zip(xs, ys, spans, groups, strict=True):
            text = f"{y / 1e3:,.0f}k"
            if name != baseline:
                text += f"\n{ratio(g.series, name, baseline):.2f}x"
            ax.annotate(text, (x, b), xytext=(0, 3), textcoords="offset points", ha="center")
    _decorate(ax, groups, title, baseline, log_scale, (bottom, top))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    print(f"Chart: {path}")


def _decorate(
    ax: Any,
    groups: Sequence[Group],
    title: str,
    baseline: str,
    log_scale: bool,
    span: tuple[float, float],
) -> None:
    for t in ax.texts:  # the value labels above the whiskers
        t.set_fontsize(7.5)
    if log_scale:
        ax.set_yscale("log")
        ax.set_ylim(span[0] / 2, span[1] * 4)
    else:
        ax.set_ylim(0, span[1] * 1.35)
        ax.yaxis.set_major_formatter(lambda v, _: f"{v / 1e3:,.0f}k")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([g.label for g in groups])
    scale = "log scale; " if log_scale else ""
    ax.set_ylabel(f"rows / s ({scale}median, whiskers = min..max)")
    ax.set_title(f"{title}\n(ratio under each value = contender / {baseline})", fontsize=10)
    ax.legend(fontsize=8, loc="upper right", ncols=2)
    ax.grid(axis="y", which="both", alpha=0.25)


# ------------------------------------------------------------------------------- CLI
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
