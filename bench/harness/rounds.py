"""Contenders, groups and interleaved rounds; a profile's cost ladder and cProfile.

A contender is a function of no arguments that scores the rows and returns a value (kept from its
warm-up call for the sanity checks). Contenders sit in groups (a configuration); every one runs
once to warm up, then ``rounds`` timed rounds, interleaved in an order that rotates each round,
the groups alternating which goes first.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .clock import BUSY, OtherLoad, timed, wait_quiet


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
