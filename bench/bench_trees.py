"""Throughput of byom's compiled tree kernel (alone and in DuckDB) against onnxruntime and
LightGBM, in one run.

    python bench/bench_trees.py [--rows N] [--rounds K]

The shared workload's model and rows (workload.py: a 100-tree x 31-leaf LightGBM binary
classifier on 20 float features, trained on --train-rows rows of one make_classification draw;
--rows further rows, float32), as LightGBM text (``booster.model_to_string()``, read by byom)
and as ONNX (onnxmltools, zipmap=False):

* byom kernel: `kernel.margins` on the 20 float64 columns (what the core hands it), one thread;
* onnxruntime: `sess.run(["probabilities"], ...)` on the float32 matrix, P(class 1) summed, one
  intra-op thread (the baseline);
* LightGBM: `Booster.predict(X, raw_score=True, num_threads=1)` on the float64 matrix;
* DuckDB: `SELECT sum(score('m', t)) FROM t` over a table of 20 FLOAT columns, the model saved
  with `udfs.duckdb.register(con).add` as LightGBM text and, as `o`, as ONNX; `SET threads=1`;
* two threads: the kernel on two halves of the rows from two Python threads at once (ctypes
  releases the GIL, so the halves overlap), onnxruntime and LightGBM with two threads, DuckDB
  `SET threads=2`.

Also measured: compiling the model (fresh cache folder) and loading it from the disk cache (the
memory cache cleared), medians of --rounds. CPU time is this process's. Agreement: the kernel
equals LightGBM's raw scores within 1e-12; its probabilities equal onnxruntime's within 1e-5
(float32 thresholds); DuckDB's sums equal onnxruntime's within 1e-6 relative.
Outputs: bench/results/trees_throughput.{json,png}.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import harness as h
import numpy as np
import pyarrow as pa  # noqa: F401  (module level: DuckDB evaluates the UDFs' annotations here)
from workload import (
    COLS,
    N_FEATURES,
    Models,
    arrow_table,
    build_models,
    ort_proba,
    ort_session,
    ort_sum,
)

KERNEL = "byom kernel"
ORT = "onnxruntime"
LGB = "LightGBM predict"
DUCK_LGB, DUCK_ONNX = "DuckDB score(m, t), LightGBM text", "DuckDB score(m, t), ONNX"
COLORS = {KERNEL: "#1f77b4", ORT: "#d62728", LGB: "#2ca02c"}
COLORS |= {DUCK_LGB: "#9467bd", DUCK_ONNX: "#c5b0d5"}
MODEL = "LGBMClassifier(n_estimators=100, num_leaves=31), LightGBM text and onnxmltools ONNX"


def duckdb_scorers(models: Models) -> tuple[Any, dict[str, Callable[[], float]]]:
    """The connection and ``SELECT sum(score(m, t)) FROM t`` with the LightGBM text model and
    with its ONNX export, both saved through ``udfs.duckdb.register(con).add``."""
    import duckdb

    from udfs.duckdb import register

    con = duckdb.connect()
    con.register("bench_src", arrow_table(models.X))
    con.execute("CREATE TABLE t AS SELECT * FROM bench_src")  # 20 FLOAT columns
    con.unregister("bench_src")
    store = register(con)
    store.add("m", models.lgb_text)  # inputs: the feature names LightGBM recorded (f0..f19)
    store.add("o", models.onnx, inputs=",".join(COLS))

    def query(model: str) -> Callable[[], float]:
        q = f"SELECT sum(score('{model}', t)) FROM t"
        return lambda: float(con.execute(q).fetchall()[0][0])

    return con, {DUCK_LGB: query("m"), DUCK_ONNX: query("o")}


def compile_and_load(ensemble: Any, rounds: int) -> dict[str, float]:
    """Median seconds to compile the model (empty cache) and to load it from the disk cache."""
    from byom.trees import kernel_cache

    compiles, loads = [], []
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="byom_kernels_") as folder:
            os.environ["BYOM_KERNEL_CACHE"] = folder
            kernel_cache.clear_memory()
            started = time.perf_counter()
            kernel_cache.kernel_for(ensemble)
            compiles.append(time.perf_counter() - started)
            kernel_cache.clear_memory()
            started = time.perf_counter()
            kernel_cache.kernel_for(ensemble)
            loads.append(time.perf_counter() - started)
    del os.environ["BYOM_KERNEL_CACHE"]
    kernel_cache.clear_memory()
    return {"compile_s": statistics.median(compiles), "disk_load_s": statistics.median(loads)}


def in_two_threads(kernel: Any, columns: list[np.ndarray]) -> np.ndarray:
    """The kernel on two halves of the rows, from two Python threads at once."""
    half = len(columns[0]) // 2
    parts: list[Any] = [None, None]

    def run(i: int, rows: slice) -> None:
        parts[i] = kernel.margins([c[rows] for c in columns])

    threads = [
        threading.Thread(target=run, args=(0, slice(0, half))),
        threading.Thread(target=run, args=(1, slice(half, None))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return np.concatenate(parts)


def agreement(margins: np.ndarray, models: Models, *series: dict[str, h.Series]) -> dict[str, Any]:
    """The kernel vs LightGBM's raw scores and onnxruntime's probabilities (first 100,000
    rows); DuckDB's sums vs onnxruntime's."""
    rows = slice(0, 100_000)
    raw = models.booster.predict(models.X[rows].astype(np.float64), raw_score=True, num_threads=1)
    proba = 1.0 / (1.0 + np.exp(-margins[rows, 0]))
    ort = ort_proba(ort_session(models.onnx, 1), models.X[rows])
    checks = {
        "kernel vs LightGBM raw score": {
            "max_abs_diff": float(np.max(np.abs(margins[rows, 0] - raw))),
            "tol": 1e-12,
        },
        "kernel vs onnxruntime (float32)": {
            "max_abs_diff": float(np.max(np.abs(proba - ort))),
            "tol": 1e-5,
        },
    }
    note = "LightGBM compares in double, ONNX in float32 thresholds"
    for threads, sums in enumerate(series, 1):
        for name in (DUCK_LGB, DUCK_ONNX):
            got, ref = sums[name].value, sums[ORT].value
            checks[f"{threads} thr/{name}"] = h.sum_check(got, ref, 1e-6, note=note)
    return checks


def make_groups(models: Models, compiled: Any) -> tuple[h.Group, h.Group]:
    """One thread each (the kernel, onnxruntime, LightGBM, DuckDB at SET threads=1) and two
    threads each (the kernel on two halves from two Python threads; DuckDB SET threads=2)."""
    X32, X = models.X, models.X.astype(np.float64)
    columns = [np.ascontiguousarray(X[:, j]) for j in range(N_FEATURES)]
    n, booster = len(X), models.booster
    con, duck = duckdb_scorers(models)
    groups = []
    for key, label, threads, score in (
        ("1 thread", "1 thread each", 1, compiled.margins),
        ("2 threads", "2 threads each (kernel: two halves)", 2, partial(in_two_threads, compiled)),
    ):
        sess = ort_session(models.onnx, threads)
        contenders: dict[str, tuple[int, Callable[[], Any]]] = {
            KERNEL: (n, lambda f=score: f(columns)),
            ORT: (n, lambda s=sess: ort_sum(s, X32)),
            LGB: (n, lambda t=threads: booster.predict(X, raw_score=True, num_threads=t)),
        }
        contenders |= {name: (n, fn) for name, fn in duck.items()}
        enter = lambda t=threads: con.execute(f"SET threads={t}")  # noqa: E731
        groups.append(h.Group(key, label, contenders, enter))
    assert np.array_equal(in_two_threads(compiled, columns), compiled.margins(columns))
    return groups[0], groups[1]


def main(argv: list[str] | None = None) -> int:
    args = h.parser(__doc__).parse_args(argv)

    from byom.trees import kernel, kernel_cache
    from byom.trees.lightgbm import read_model

    if not kernel.available():
        print("llvmlite is not installed: nothing to measure", file=sys.stderr)
        return 1
    models = build_models(args.rows, args.train_rows, with_pmml=False)
    ensemble = read_model(models.lgb_text, "bench").ensemble
    times = compile_and_load(ensemble, max(3, args.rounds))
    compiled = kernel_cache.kernel_for(ensemble)
    assert compiled is not None
    one, two = make_groups(models, compiled)
    log = h.run_rounds([one, two], args.rounds, "process", args.wait_quiet)
    s1, s2 = one.series, two.series
    margins = s1[KERNEL].value
    checks = agreement(margins, models, s1, s2)
    speedup = s2[KERNEL].rps() / s1[KERNEL].rps()
    targets = [
        h.target(s1, KERNEL, ORT, "kernel / onnxruntime, 1 thread", 3.5),
        h.target(s1, KERNEL, LGB, "kernel / LightGBM predict, 1 thread", None),
        h.target(s1, DUCK_LGB, ORT, "DuckDB LightGBM text / onnxruntime, 1 thr", 2.5),
        h.target(s1, DUCK_ONNX, ORT, "DuckDB ONNX / onnxruntime, 1 thread", None),
        h.target(s1, DUCK_LGB, DUCK_ONNX, "DuckDB LightGBM text / DuckDB ONNX", None),
        h.target(s2, KERNEL, ORT, "kernel / onnxruntime, 2 threads each", None),
        h.target(s2, DUCK_LGB, ORT, "DuckDB LightGBM text / onnxruntime, 2 thr", 2.5),
        h.target_line("kernel, 2 threads / 1 thread (the GIL released)", speedup, None),
        h.target_line("compile seconds (target <= 5)", times["compile_s"], None),
        h.target_line("disk-cache load ms (target <= 50)", 1000 * times["disk_load_s"], None),
    ]
    out = h.Outcome("trees", [one, two], log, ORT, "process", targets, checks)
    title = f"Tree kernel and DuckDB: 100-tree LightGBM, {len(margins):,} rows x 20 floats"
    result = h.finish(args, out, title, COLORS, log_scale=False, model=MODEL, **times)
    h.write_json(args.out / "trees_throughput.json", result | {"versions": h.versions("llvmlite")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
