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

Modules: ``clock`` (CPU clocks, other processes' load, waiting for quiet), ``rounds``
(contenders, groups, interleaved rounds, cost ladder, cProfile), ``report`` (ratios, table,
targets, load lines, sanity checks, versions, JSON), ``chart`` (the PNG) and ``cli`` (folders,
common options, ``finish``). Every public name is importable from ``harness`` itself.
"""

from .chart import chart
from .cli import BENCH, RESULTS, ROOT, Outcome, finish, parser
from .clock import BUSY, CPU_CLOCKS, CPUS, TICK, OtherLoad, timed, tree_cpu_seconds, wait_quiet
from .report import (
    CPU_NOTES,
    MODULES,
    load_lines,
    ratio,
    report,
    results,
    sanity,
    sum_check,
    table,
    target,
    target_line,
    versions,
    write_json,
)
from .rounds import Group, RoundsLog, Series, cprofile, ladder, run_rounds, split_lines

__all__ = [
    "BENCH",
    "BUSY",
    "CPUS",
    "CPU_CLOCKS",
    "CPU_NOTES",
    "MODULES",
    "RESULTS",
    "ROOT",
    "TICK",
    "Group",
    "OtherLoad",
    "Outcome",
    "RoundsLog",
    "Series",
    "chart",
    "cprofile",
    "finish",
    "ladder",
    "load_lines",
    "parser",
    "ratio",
    "report",
    "results",
    "run_rounds",
    "sanity",
    "split_lines",
    "sum_check",
    "table",
    "target",
    "target_line",
    "timed",
    "tree_cpu_seconds",
    "versions",
    "wait_quiet",
    "write_json",
]
