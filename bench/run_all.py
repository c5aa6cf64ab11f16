"""Run every benchmark, one after another, and print the README's Throughput table from them.

    python bench/run_all.py            # what the READMEs publish (about an hour on 2 cores)
    python bench/run_all.py --quick    # a smoke run: 200,000 rows, 3 rounds, into a temp folder
    python bench/run_all.py --only duckdb --only pmml

Each benchmark runs as its own process (never two at once: they would time each other), with
the options that produced the published figures; the charts and JSON go to --out (default
bench/results, or a temporary folder with --quick). Then the figures of README.md's Throughput
table are printed as its Markdown rows, read back from the JSON files.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import bench_duckdb as duckdb
import bench_pmml as pmml
import bench_spark as spark
import bench_teradata as teradata
import bench_trees as trees
from harness import BENCH, RESULTS

#: The options behind the published figures, per benchmark.
FULL = {
    "duckdb": ["--rounds", "7", "--profile"],
    "spark": ["--rounds", "7", "--profile", "--wait-quiet", "600"],
    "teradata": [],
    "pmml": [],
    "trees": ["--rounds", "3"],  # 1M rows (the 500-tree model: 200,000), lleaves, Spark
    "many": ["--rounds", "3"],  # 1M rows; 1 to 10,000 models; DuckDB, Spark, memory child
    "mojo": ["--rounds", "3"],  # 1M rows; a 100-tree GBM MOJO; PredictCsv, H2O's predict
}
QUICK = ["--rows", "200000", "--rounds", "3"]
QUICK_EXTRA = {"duckdb": ["--profile", "--profile-reps", "2"], "pmml": ["--pypmml-rows", "2000"]}
QUICK_EXTRA["trees"] = ["--big-rows", "20000", "--compile-rounds", "1"]
QUICK_EXTRA["many"] = ["--spark-counts", "1,100,1000"]  # registering 10,000 in Spark: ~40 s
#: Scripts not named bench_<name>.py.
SCRIPTS = {"many": "bench_many_models.py"}


#: README.md's Throughput rows: (label, benchmark, group, contender, reference (None: the
#: baseline), the reference's label ("": not shown), target).
ROWS = [
    (
        "DuckDB, one thread each (`bench_duckdb.py`)",
        "duckdb",
        "single",
        duckdb.BYOM_POS,
        None,
        "onnxruntime 1 thread",
        "0.9",
    ),
    (
        "DuckDB, whole machine (2 cores)",
        "duckdb",
        "machine",
        duckdb.BYOM_POS,
        None,
        "onnxruntime 2 threads",
        "0.9",
    ),
    (
        "Spark SQL `local[2]`, `score(m, struct(*))` (`bench_spark.py`)",
        "spark",
        "spark",
        spark.BYOM_ROW,
        None,
        "onnxruntime 2 threads",
        "0.65",
    ),
    (
        "… MLflow `spark_udf` (onnxruntime in a PythonModel), same run",
        "spark",
        "spark",
        spark.MLFLOW,
        None,
        "",
        "byom ≥ MLflow",
    ),
    (
        "Teradata SCRIPT, one instance over a pipe, start-up included (`bench_teradata.py`)",
        "teradata",
        "amp",
        teradata.BYOM,
        None,
        "onnxruntime 1 thread",
        "0.5",
    ),
    (
        "PMML, native evaluator, no engine (`bench_pmml.py`)",
        "pmml",
        "direct",
        pmml.NATIVE,
        None,
        "onnxruntime 1 thread",
        "0.5",
    ),
    (
        "PMML, native vs pypmml, same run",
        "pmml",
        "direct",
        pmml.NATIVE,
        pmml.PYPMML,
        "pypmml",
        "20×",
    ),
    (
        "Tree kernel, 100 trees x 31 leaves, no engine, 1 thread (`bench_trees.py`)",
        "trees",
        "lgb100 1 thr",
        trees.KERNEL,
        None,
        "onnxruntime 1 thread",
        "3.5",
    ),
    (
        "… vs lleaves, 1 thread, same run",
        "trees",
        "lgb100 1 thr",
        trees.KERNEL,
        trees.LLEAVES,
        "lleaves",
        "1.0",
    ),
    (
        "Tree kernel, 500 trees x 255 leaves, 1 thread",
        "trees",
        "lgb500 1 thr",
        trees.KERNEL,
        None,
        "onnxruntime 1 thread",
        "3.5",
    ),
    (
        "… vs lleaves, 1 thread, same run",
        "trees",
        "lgb500 1 thr",
        trees.KERNEL,
        trees.LLEAVES,
        "lleaves",
        "1.0",
    ),
    (
        "Tree kernel, XGBoost 100 trees of depth 8, 100 features, 1 thread",
        "trees",
        "xgb100 1 thr",
        trees.KERNEL,
        None,
        "onnxruntime 1 thread",
        "3.5",
    ),
    (
        "DuckDB one thread, LightGBM text model (`bench_trees.py`)",
        "trees",
        "lgb100 1 thr",
        trees.DUCK_LGB,
        None,
        "onnxruntime 1 thread",
        "2.5",
    ),
    (
        "DuckDB whole machine (2 threads), LightGBM text model",
        "trees",
        "lgb100 2 thr",
        trees.DUCK_LGB,
        None,
        "onnxruntime 2 threads",
        "2.5",
    ),
    (
        "Spark `local[2]`, LightGBM text model, vs MLflow `spark_udf` (`mlflow.lightgbm`)",
        "trees",
        "spark",
        trees.SPARK_BYOM,
        trees.MLFLOW,
        "MLflow",
        "1.5",
    ),
    (
        "Teradata script over a pipe, LightGBM text model, parsing included",
        "trees",
        "teradata",
        trees.TD_BYOM,
        None,
        "onnxruntime 1 thread",
        "1.2",
    ),
]


def readme_rows(out: Path) -> list[str]:
    """The rows of README.md's Throughput table, from whichever results exist in out."""
    found = {p.name.split("_")[0]: p for p in out.glob("*_throughput.json")}
    results = {name: json.loads(path.read_text()) for name, path in found.items()}
    lines = ["| engine (benchmark) | byom | reference | ratio | target |"]
    lines.append("|---|---:|---:|---:|---:|")
    for label, bench, group, name, ref, ref_label, target in ROWS:
        contenders = results.get(bench, {}).get("groups", {}).get(group, {}).get("contenders", {})
        ref = ref or results.get(bench, {}).get("baseline")
        if name not in contenders or ref not in contenders:
            continue
        rps, ref_rps = (contenders[n]["median_rows_per_s"] for n in (name, ref))
        r = rps / ref_rps
        ratio = f"{r:.1f}×" if r >= 10 else f"{r:.2f}"
        reference = f"{ref_label} {ref_rps:,.0f}" if ref_label else ""
        ratio = f"**{ratio}**" if ref_label else ratio
        lines.append(f"| {label} | {rps:,.0f} rows/s | {reference} | {ratio} | {target} |")
    times = results.get("trees", {}).get("compile_and_load", {}).get("lgb100")
    if times:
        c, ms = times["compile_s"], 1000 * times["disk_load_s"]
        lines.append(
            f"| Tree kernel, 100-tree model: compile (fresh cache) | {c:.2f} s | | | ≤ 5 s |"
        )
        lines.append(f"| … load from the disk cache | {ms:.1f} ms | | | ≤ 50 ms |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="smoke run: 200,000 rows, 3 rounds")
    p.add_argument(
        "--only", action="append", choices=list(FULL), help="this benchmark (repeatable)"
    )
    p.add_argument("--out", type=Path, default=None, help="results folder")
    args = p.parse_args(argv)
    out = args.out or (Path(tempfile.mkdtemp(prefix="byom_bench_")) if args.quick else RESULTS)
    failed = []
    for name in args.only or list(FULL):
        opts = QUICK + QUICK_EXTRA.get(name, []) if args.quick else FULL[name]
        script = BENCH / SCRIPTS.get(name, f"bench_{name}.py")
        cmd = [sys.executable, str(script), *opts, "--out", str(out)]
        print(f"\n=== {' '.join(cmd)}", flush=True)
        if subprocess.run(cmd, check=False).returncode != 0:
            failed.append(name)
    print(f"\nREADME.md's Throughput table, from {out}:\n")
    print("\n".join(readme_rows(out)))
    if failed:
        print(f"\nFAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
