"""Throughput of byom's Spark SQL `score(...)` against onnxruntime and MLflow's spark_udf.

    python bench/bench_spark.py [--rows N] [--rounds K] [--partitions P] [--profile]
                                [--wait-quiet S]

One process, Spark ``local[2]``, the shared 100-tree LightGBM classifier (workload.py):

* onnxruntime: ``sess.run(["probabilities"], {"input": X})`` on the whole float32 array with
  --ort-threads intra-op threads: the baseline, ratio 1.0 (and at one thread, for reference);
* byom: ``SELECT sum(score('m', struct(*))) FROM t`` and the positional
  ``score('m', f0, ..., f19)``, with ``udfs.spark.register(spark, models_table=<parquet>)``;
* MLflow: ``mlflow.pyfunc.spark_udf`` over a PythonModel wrapping onnxruntime;
* a lean iterator ``arrow_udf`` (stack, onnxruntime, column 1): the ceiling for a Python UDF.

The table ``t`` is written once to Parquet, read back, repartitioned, cached and materialized:
timed queries scan Spark's in-memory cache. CPU time is the whole process tree's (driver, JVM,
Python workers). --wait-quiet waits for a quiet machine before each round and redoes disturbed
rounds. Results: bench/results/spark_throughput.{json,png}; --profile adds a cost ladder and a
cProfile of byom's UDF inside the workers.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness as h
from spark_parts import BATCH, MASTER, Setup, lean_udf, mlflow_udf, register_byom, setup_spark
from workload import COLS, MODEL, N_FEATURES, Models, build_models, ort_session, ort_sum

ORT = "onnxruntime direct (2 thr)"
ORT1 = "onnxruntime direct (1 thr)"
BYOM_ROW = "byom score(m, struct(*))"
BYOM_POS = "byom score(m, f0..f19)"
MLFLOW = "MLflow pyfunc.spark_udf"
LEAN = "lean arrow_udf (iterator)"
COLORS = {ORT: "#d62728", ORT1: "#f0a0a0", BYOM_ROW: "#1f77b4", BYOM_POS: "#7fb2dc"}
COLORS |= {MLFLOW: "#ff7f0e", LEAN: "#2ca02c"}
CPU = "tree"


def queries(st: Setup) -> tuple[Callable[[str], Callable[[], float]], Callable[[Any], Any]]:
    """Contender makers: a SQL query's sum, and a UDF's sum over the table's 20 columns."""
    from pyspark.sql import functions as F

    def sql(q: str) -> Callable[[], float]:
        return lambda: float(st.spark.sql(q).collect()[0][0])

    def agg(udf: Any) -> Callable[[], float]:
        return lambda: float(st.df.select(F.sum(udf(*COLS))).collect()[0][0])

    return sql, agg


BYOM_SQL = {
    BYOM_ROW: "SELECT sum(score('m', struct(*))) FROM t",
    BYOM_POS: f"SELECT sum(score('m', {', '.join(COLS)})) FROM t",
}


def make_group(
    st: Setup, models: Models, skip: set[str], ort_threads: int
) -> tuple[h.Group, dict[str, Any]]:
    X, n = models.X, len(models.X)
    sess, one = ort_session(models.onnx, ort_threads), ort_session(models.onnx, 1)
    sql, agg = queries(st)
    contenders = {ORT: lambda: ort_sum(sess, X), ORT1: lambda: ort_sum(one, X)}
    info: dict[str, Any] = {}
    if "byom" not in skip:
        info["byom_adapter"] = register_byom(st)
        contenders |= {name: sql(q) for name, q in BYOM_SQL.items()}
    if "mlflow" not in skip:
        udf, info["mlflow"] = mlflow_udf(st.spark, st.tmp / "model.onnx", st.tmp)
        contenders[MLFLOW] = agg(udf)
    if "lean" not in skip:
        contenders[LEAN] = agg(lean_udf(models.onnx))
    return h.Group("spark", f"Spark {MASTER}", {k: (n, fn) for k, fn in contenders.items()}), info


def targets(s: dict[str, h.Series]) -> list[str]:
    if BYOM_ROW not in s:
        return []
    lines = [h.target(s, BYOM_ROW, ORT, "byom / onnxruntime", 0.65, BYOM_POS)]
    if MLFLOW in s:
        lines.append(h.target(s, BYOM_ROW, MLFLOW, "byom / MLflow", 1.0, BYOM_POS))
    if LEAN in s:
        lines.append(h.target(s, BYOM_ROW, LEAN, "byom / lean arrow_udf", None))
    return lines


def profile(st: Setup, models: Models, reps: int) -> dict[str, Any]:
    """A ladder of queries over the cached table (scan; no-op arrow_udf; lean UDF; byom) and
    onnxruntime on Arrow-batch slices; then Spark's UDF profiler on byom's UDF (wall time in
    the workers, which share the cores with Spark's JVM)."""
    X, batch = models.X, int(st.conf[BATCH])
    one = ort_session(models.onnx, 1)
    sql, agg = queries(st)
    slices = f"onnxruntime 1 thr, {batch}-row slices"
    steps = {
        "Spark scan: sum(f0+...+f19)": sql(f"SELECT sum({' + '.join(COLS)}) FROM t"),
        "no-op arrow_udf (20 args)": agg(lean_udf(None)),
        LEAN: agg(lean_udf(models.onnx)),
        BYOM_ROW: sql(BYOM_SQL[BYOM_ROW]),
        slices: lambda: sum(ort_sum(one, X[i : i + batch]) for i in range(0, len(X), batch)),
    }
    title = (
        f"Cost ladder, {len(X):,} rows, {len(st.partition_rows)} partitions, Arrow batches of "
        f"{batch} rows, median of {reps} interleaved reps (cpu = whole process tree)"
    )
    med, lines = h.ladder(steps, reps, CPU, len(X), title, 40)
    c = [v[1] for v in med.values()]  # scan, noop, lean, byom, slices
    split = {
        "spark_scan_of_the_cache": c[0],
        "spark_jvm_to_python_arrow_round_trip": c[1] - c[0],
        "onnxruntime_1_thread": c[4],
        "lean_udf_glue_stack_and_call": c[2] - c[1] - c[4],
        "byom_beyond_lean_udf": c[3] - c[2],
    }
    lines += h.split_lines(split, c[3])
    try:  # Spark 4's UDF profiler: cProfile inside the Python workers, per UDF
        st.spark.conf.set("spark.sql.pyspark.udf.profiler", "perf")
        steps[BYOM_ROW]()
        st.spark.conf.unset("spark.sql.pyspark.udf.profiler")
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            st.spark.profile.show(type="perf")
        prof = "\n".join(buf.getvalue().splitlines()[:35])  # header and 25 costliest functions
    except Exception as exc:  # the profiler is best effort
        prof = f"(UDF profiler unavailable: {exc})"
    print("\n" + "\n".join(lines) + "\n\ncProfile of byom's UDF in the Spark workers:\n" + prof)
    return {"median_wall_cpu_s": med, "cpu_split_s": split, "cprofile_byom_udf": prof}


def options() -> Any:
    p = h.parser(__doc__)
    p.add_argument("--partitions", type=int, default=4, help="partitions of the cached table")
    p.add_argument("--arrow-batch", type=int, default=None, help=f"{BATCH} (default: Spark's)")
    p.add_argument("--ort-threads", type=int, default=2, help="baseline's intra-op threads")
    p.add_argument("--skip", action="append", default=[], choices=["byom", "mlflow", "lean"])
    p.add_argument("--profile", action="store_true", help="break down a byom query's time")
    p.add_argument("--profile-reps", type=int, default=3)
    return p


def main(argv: list[str] | None = None) -> int:
    args = options().parse_args(argv)
    models = build_models(args.rows, args.train_rows, with_pmml=False)
    tmp = Path(tempfile.mkdtemp(prefix="byom_bench_spark_"))
    try:
        print(f"Starting Spark {MASTER}; caching {args.rows:,} rows ...", flush=True)
        st = setup_spark(models, args.partitions, tmp, args.arrow_batch)
        print(f"  rows per partition {st.partition_rows}; {BATCH} = {st.conf[BATCH]}")
        group, info = make_group(st, models, set(args.skip), args.ort_threads)
        log = h.run_rounds([group], args.rounds, CPU, quiet=args.wait_quiet)
        s = group.series
        checks = {name: h.sum_check(s[name].value, s[ORT].value) for name in s if name != ORT}
        out = h.Outcome("spark", [group], log, ORT, CPU, targets(s), checks)
        title = f"Spark {MASTER}: 100-tree LightGBM, {args.rows:,} rows x 20 floats"
        result = h.finish(args, out, title, COLORS, model=MODEL, features=N_FEATURES, info=info)
        result |= {
            "spark_master": MASTER,
            "partitions": args.partitions,
            "rows_per_partition": st.partition_rows,
            "spark_conf": st.conf,
            "onnxruntime_intra_op_threads": args.ort_threads,
            "versions": h.versions("pyspark", "pandas", "mlflow"),
        }
        if args.profile:
            if args.wait_quiet > 0:
                h.wait_quiet(args.wait_quiet)
            result["profile"] = profile(st, models, args.profile_reps)
        h.write_json(args.out / "spark_throughput.json", result)
        st.spark.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
