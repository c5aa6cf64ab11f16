"""CPU clocks and the other-processes load: how a call is timed and whether the machine is quiet.

Two named CPU clocks: ``process`` (this process, all its threads) and ``tree`` (this process and
every descendant, from /proc, reaped children included). ``OtherLoad`` measures the CPU that
processes outside this tree used; ``wait_quiet`` sleeps until it drops below ``BUSY``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

#: Other processes' load (cores) above which the machine is not quiet.
BUSY = 0.2
TICK = 1.0 / os.sysconf("SC_CLK_TCK")
CPUS = os.cpu_count() or 1


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
