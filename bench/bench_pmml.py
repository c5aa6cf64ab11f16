"""Throughput of byom's native PMML evaluator against pypmml and onnxruntime, in one run.

    python bench/bench_pmml.py [--rows N] [--pypmml-rows M] [--rounds K] [--batch B]

The 100-tree LightGBM binary classifier of bench_duckdb.py (20 float features), exported to
PMML (sklearn2pmml) and ONNX (onnxmltools), scored directly, without an engine:

* native: ``NativePmmlScorer.predict`` on the PMML, in batches of --batch rows;
* pypmml: ``PmmlScorer.predict`` (the JVM evaluator) on the first --pypmml-rows rows;
* onnxruntime: ``sess.run(["probabilities"], ...)`` with one intra-op thread, same batches.

Contenders are interleaved for --rounds rounds; medians of rows/s and their ratios are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_duckdb import COLS, build_models, ort_session


def _features(X: np.ndarray) -> dict[str, np.ndarray]:
    return {c: X[:, j].astype(np.float64) for j, c in enumerate(COLS)}


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--pypmml-rows", type=int, default=5_000)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batch", type=int, default=50_000)
    p.add_argument("--train-rows", type=int, default=20_000)
    args = p.parse_args()

    from byom.pmml.scorer import NativePmmlScorer
    from byom.scorers.pmml import PmmlScorer

    models = build_models(args.rows, args.train_rows, with_pmml=True)
    assert models.pmml is not None
    X = models.X
    native = NativePmmlScorer(models.pmml)
    jvm = PmmlScorer(models.pmml)
    sess = ort_session(models.onnx, 1)
    batches = [X[i : i + args.batch] for i in range(0, len(X), args.batch)]
    native_feeds = [(_features(b), len(b)) for b in batches]
    small = X[: args.pypmml_rows]
    small_feed = _features(small)

    def run_native() -> None:
        for feed, n in native_feeds:
            native.predict(feed, n, full=False)

    def run_ort() -> None:
        for b in batches:
            sess.run(["probabilities"], {"input": b})

    def run_pypmml() -> None:
        jvm.predict(small_feed, len(small), full=False)

    # Agreement first: native P(class 1) vs onnxruntime's (float32) and pypmml's.
    got = native.predict(_features(small), len(small)).probabilities
    ort = sess.run(["probabilities"], {"input": small})[0]
    ref = jvm.predict(small_feed, len(small)).probabilities
    assert got is not None and ref is not None
    print(f"max |native - pypmml|      = {np.nanmax(np.abs(got - ref)):.3g}")
    print(f"max |native - onnxruntime| = {np.nanmax(np.abs(got[:, 1] - ort[:, 1])):.3g}")

    contenders = {
        "native PMML": (run_native, len(X)),
        "onnxruntime": (run_ort, len(X)),
        "pypmml": (run_pypmml, len(small)),
    }
    for fn, _ in contenders.values():  # warm-up
        fn()
    rates: dict[str, list[float]] = {k: [] for k in contenders}
    names = list(contenders)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            fn, rows = contenders[name]
            rates[name].append(rows / _timed(fn))
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"\n100-tree LightGBM, {len(X):,} rows x {len(COLS)} features, batches of {args.batch:,}")
    for name, rate in med.items():
        print(f"  {name:<14} {rate:>14,.0f} rows/s")
    print(f"native / onnxruntime = {med['native PMML'] / med['onnxruntime']:.2f} (target >= 0.5)")
    print(f"native / pypmml      = {med['native PMML'] / med['pypmml']:.1f} (target >= 20)")


if __name__ == "__main__":
    main()
