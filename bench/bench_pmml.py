"""Throughput of byom's native PMML evaluator against pypmml and onnxruntime, in one run.

    python bench/bench_pmml.py [--rows N] [--pypmml-rows M] [--rounds K] [--batch B]

The shared 100-tree LightGBM classifier (workload.py), exported to PMML (sklearn2pmml) and ONNX
(onnxmltools), scored directly, without an engine:

* native: ``NativePmmlScorer.predict`` on the PMML, in batches of --batch rows;
* pypmml: byom's ``PypmmlScorer.predict`` (the JVM evaluator) on the first --pypmml-rows rows;
* onnxruntime: ``sess.run(["probabilities"], ...)`` with one intra-op thread, same batches.

CPU time is the process tree's (pypmml's JVM is a child). Medians and ratios go to stdout and
bench/results/pmml_throughput.{json,png}. Targets: native at least 0.5 of onnxruntime and 20x
pypmml. Agreement is checked on the pypmml rows: native vs pypmml and vs onnxruntime (float32).
"""

from __future__ import annotations

import sys
from typing import Any

import harness as h
import numpy as np
from workload import COLS, MODEL, build_models, ort_proba, ort_session

NATIVE = "native PMML"
ORT = "onnxruntime"
PYPMML = "pypmml"
COLORS = {NATIVE: "#1f77b4", ORT: "#d62728", PYPMML: "#2ca02c"}
CPU = "tree"


def features(X: np.ndarray) -> dict[str, np.ndarray]:
    return {c: X[:, j].astype(np.float64) for j, c in enumerate(COLS)}


def pypmml_scorer(blob: bytes) -> Any:
    """byom's pypmml (JVM) scorer."""
    from byom.scorers.pypmml import PypmmlScorer

    return PypmmlScorer(blob)


def agreement(native: Any, jvm: Any, sess: Any, small: np.ndarray) -> dict[str, dict[str, Any]]:
    """Native P(class 1) against pypmml's (both double) and onnxruntime's (float32)."""
    got = native.predict(features(small), len(small)).probabilities
    ref = jvm.predict(features(small), len(small)).probabilities
    assert got is not None and ref is not None
    return {
        "native vs pypmml": {"max_abs_diff": float(np.nanmax(np.abs(got - ref))), "tol": 1e-9},
        "native vs onnxruntime (float32)": {
            "max_abs_diff": float(np.nanmax(np.abs(got[:, 1] - ort_proba(sess, small)))),
            "tol": 1e-5,
        },
    }


def main(argv: list[str] | None = None) -> int:
    p = h.parser(__doc__)
    p.add_argument("--pypmml-rows", type=int, default=5_000, help="rows scored by pypmml")
    p.add_argument("--batch", type=int, default=50_000, help="rows per predict / run call")
    args = p.parse_args(argv)

    from byom.pmml.scorer import NativePmmlScorer

    models = build_models(args.rows, args.train_rows, with_pmml=True)
    assert models.pmml is not None
    X, n = models.X, len(models.X)
    native, jvm = NativePmmlScorer(models.pmml), pypmml_scorer(models.pmml)
    sess = ort_session(models.onnx, 1)
    batches = [X[i : i + args.batch] for i in range(0, n, args.batch)]
    feeds = [(features(b), len(b)) for b in batches]
    small = X[: args.pypmml_rows]
    small_feed = features(small)
    contenders = {
        NATIVE: (n, lambda: [native.predict(f, k, full=False) for f, k in feeds]),
        ORT: (n, lambda: [sess.run(["probabilities"], {"input": b}) for b in batches]),
        PYPMML: (len(small), lambda: jvm.predict(small_feed, len(small), full=False)),
    }
    group = h.Group("direct", f"no engine, batches of {args.batch:,}", contenders)
    checks = agreement(native, jvm, sess, small)
    log = h.run_rounds([group], args.rounds, CPU, args.wait_quiet)
    s = group.series
    targets = [
        h.target(s, NATIVE, ORT, "native / onnxruntime", 0.5),
        h.target(s, NATIVE, PYPMML, "native / pypmml", 20.0),
    ]
    out = h.Outcome("pmml", [group], log, ORT, CPU, targets, checks)
    title = f"PMML, no engine: 100-tree LightGBM, {n:,} rows x 20 floats"
    result = h.finish(args, out, title, COLORS, log_scale=True, model=MODEL, batch=args.batch)
    h.write_json(args.out / "pmml_throughput.json", result | {"versions": h.versions("pypmml")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
