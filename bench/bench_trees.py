"""Throughput of byom's compiled tree kernel against onnxruntime and LightGBM, in one run.

    python bench/bench_trees.py [--rows N] [--rounds K]

The shared workload's model (a 100-tree x 31-leaf LightGBM binary classifier on 20 float
features, trained on --train-rows rows of one make_classification draw), kept as LightGBM text
(read by byom) and as ONNX (onnxmltools, zipmap=False), and --rows further rows of the draw:

* byom kernel: `kernel.margins` on the 20 float64 columns (what the core hands it), one thread;
* onnxruntime: `sess.run(["probabilities"], ...)` on the float32 matrix, one intra-op thread
  (the baseline);
* LightGBM: `Booster.predict(X, raw_score=True, num_threads=1)` on the float64 matrix;
* two threads: the kernel on two halves of the rows from two Python threads at once (ctypes
  releases the GIL, so the halves overlap), onnxruntime and LightGBM with two threads.

Also measured: compiling the model (fresh cache folder) and loading it from the disk cache (the
memory cache cleared), medians of --rounds. CPU time is this process's. Agreement: the kernel
equals LightGBM's raw scores within 1e-12; its probabilities equal onnxruntime's within 1e-5
(float32 thresholds). Outputs: bench/results/trees_throughput.{json,png}.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

import harness as h
import numpy as np
from workload import N_FEATURES, SEED, ort_proba, ort_session

KERNEL = "byom kernel"
ORT = "onnxruntime"
LGB = "LightGBM predict"
COLORS = {KERNEL: "#1f77b4", ORT: "#d62728", LGB: "#2ca02c"}
MODEL = "LGBMClassifier(n_estimators=100, num_leaves=31), LightGBM text and onnxmltools ONNX"


def train(rows: int, train_rows: int) -> tuple[Any, bytes, np.ndarray]:
    """The workload's model (same draw and parameters), as a booster and as ONNX; the rows."""
    from lightgbm import LGBMClassifier
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType
    from sklearn.datasets import make_classification

    print(f"Training 100-tree LightGBM on {train_rows:,} rows; exporting ONNX ...", flush=True)
    X, y = make_classification(
        n_samples=train_rows + rows,
        n_features=N_FEATURES,
        n_informative=10,
        n_redundant=4,
        random_state=SEED,
    )
    clf = LGBMClassifier(
        n_estimators=100, random_state=SEED, deterministic=True, force_row_wise=True, n_jobs=1
    )
    clf.set_params(verbose=-1).fit(X[:train_rows], y[:train_rows])
    onx = convert_lightgbm(
        clf, initial_types=[("input", FloatTensorType([None, N_FEATURES]))], zipmap=False
    )
    return clf.booster_, onx.SerializeToString(), np.ascontiguousarray(X[train_rows:])


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


def agreement(margins: np.ndarray, booster: Any, X: np.ndarray, sess: Any) -> dict[str, Any]:
    rows = slice(0, 100_000)
    raw = booster.predict(X[rows], raw_score=True, num_threads=1)
    proba = 1.0 / (1.0 + np.exp(-margins[rows, 0]))
    ort = ort_proba(sess, X[rows].astype(np.float32))
    return {
        "kernel vs LightGBM raw score": {
            "max_abs_diff": float(np.max(np.abs(margins[rows, 0] - raw))),
            "tol": 1e-12,
        },
        "kernel vs onnxruntime (float32)": {
            "max_abs_diff": float(np.max(np.abs(proba - ort))),
            "tol": 1e-5,
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = h.parser(__doc__).parse_args(argv)

    from byom.trees import kernel, kernel_cache
    from byom.trees.lightgbm import read_model

    if not kernel.available():
        print("llvmlite is not installed: nothing to measure", file=sys.stderr)
        return 1
    booster, onnx, X = train(args.rows, args.train_rows)
    ensemble = read_model(booster.model_to_string().encode(), "bench").ensemble
    times = compile_and_load(ensemble, max(3, args.rounds))
    compiled = kernel_cache.kernel_for(ensemble)
    assert compiled is not None
    columns = [np.ascontiguousarray(X[:, j]) for j in range(N_FEATURES)]
    X32 = X.astype(np.float32)
    n = len(X)
    sess1, sess2 = ort_session(onnx, 1), ort_session(onnx, 2)
    one = h.Group(
        "1 thread",
        "1 thread each",
        {
            KERNEL: (n, lambda: compiled.margins(columns)),
            ORT: (n, lambda: sess1.run(["probabilities"], {"input": X32})),
            LGB: (n, lambda: booster.predict(X, raw_score=True, num_threads=1)),
        },
    )
    two = h.Group(
        "2 threads",
        "2 threads each (kernel: two halves)",
        {
            KERNEL: (n, lambda: in_two_threads(compiled, columns)),
            ORT: (n, lambda: sess2.run(["probabilities"], {"input": X32})),
            LGB: (n, lambda: booster.predict(X, raw_score=True, num_threads=2)),
        },
    )
    margins = compiled.margins(columns)
    assert np.array_equal(in_two_threads(compiled, columns), margins)
    checks = agreement(margins, booster, X, sess1)
    log = h.run_rounds([one, two], args.rounds, "process", args.wait_quiet)
    s1, s2 = one.series, two.series
    speedup = s2[KERNEL].rps() / s1[KERNEL].rps()
    targets = [
        h.target(s1, KERNEL, ORT, "kernel / onnxruntime, 1 thread", 3.5),
        h.target(s1, KERNEL, LGB, "kernel / LightGBM predict, 1 thread", None),
        h.target(s2, KERNEL, ORT, "kernel / onnxruntime, 2 threads each", None),
        h.target_line("kernel, 2 threads / 1 thread (the GIL released)", speedup, None),
        h.target_line("compile seconds (target <= 5)", times["compile_s"], None),
        h.target_line("disk-cache load ms (target <= 50)", 1000 * times["disk_load_s"], None),
    ]
    out = h.Outcome("trees", [one, two], log, ORT, "process", targets, checks)
    title = f"Tree kernel, no engine: 100-tree LightGBM, {n:,} rows x 20 floats"
    result = h.finish(args, out, title, COLORS, log_scale=False, model=MODEL, **times)
    h.write_json(args.out / "trees_throughput.json", result | {"versions": h.versions("llvmlite")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
