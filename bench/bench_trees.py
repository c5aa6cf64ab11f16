"""Tree models in one run: byom's compiled kernel, alone and in DuckDB, Spark and the Teradata
script, against onnxruntime, lleaves, the libraries' own predict and MLflow's spark_udf.

    python bench/bench_trees.py [--rows N] [--big-rows N] [--rounds K] [--skip PART]

Three models (tree_models.py), each as the text byom reads and as its onnxmltools ONNX export:

* lgb100: the shared workload (workload.py): LightGBM, 100 trees x 31 leaves, 20 float
  features, --rows rows (default 1,000,000) never trained on;
* lgb500: LightGBM, 500 trees x 255 leaves, on the first --big-rows of the same rows;
* xgb100: XGBoost binary:logistic, 100 trees of depth 8, 100 float features, --rows rows.

Contenders, one thread each, in one group per model: the byom kernel (`kernel.margins` on the
float64 columns, as byom's core calls it), onnxruntime (`sess.run(["probabilities"], ...)` on
the float32 matrix, P(class 1) summed: the baseline of every ratio), lleaves (LightGBM models;
lleaves pins an llvmlite older than byom's, so it runs from its own virtualenv,
bench/.lleaves-venv, created here, in a worker process that times one `predict(X, n_jobs=1)`
per command over the same rows saved as .npy: interleaved with the others) and the library's
own predict (raw scores). lgb100 also runs in DuckDB (`SELECT sum(score('m', t)) FROM t`,
the model saved as LightGBM text and, as `o`, as ONNX) at `SET threads=1`, and in a second
group at two threads (the kernel on two halves from two Python threads: ctypes releases the GIL;
onnxruntime, LightGBM and DuckDB at two threads). Then, with lgb100's LightGBM text:

* Spark `local[2]`: `SELECT sum(score('m', struct(*))) FROM t` (udfs.spark) against MLflow's
  `mlflow.pyfunc.spark_udf` over the booster saved with `mlflow.lightgbm.save_model` (one
  OpenMP thread per task: Spark runs two tasks on two cores), and onnxruntime at two threads;
* the Teradata script (udfs/teradata/byom_score.py) over a pipe, the rows as the tab-separated
  text a server sends (parsing and start-up included), against onnxruntime at one thread.

Compile time (a fresh cache folder) and load from the disk cache (the memory cache cleared),
medians of --compile-rounds for lgb100, one compile for the others. Interleaved rounds,
medians; CPU time of the process tree (the lleaves worker, Spark and the script are children).
Outputs: bench/results/trees_throughput.{json,png}.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import harness as h
import numpy as np
import pyarrow as pa  # module level: DuckDB and pyspark resolve the UDFs' annotations here
import pyarrow.parquet as pq
import tree_models as tm
from workload import COLS, Models, arrow_table, build_models, ort_proba, ort_session, ort_sum

KERNEL, ORT, LLEAVES = "byom kernel", "onnxruntime", "lleaves"
LGB, XGB = "LightGBM predict", "XGBoost predict"
DUCK_LGB, DUCK_ONNX = "DuckDB score(m, t), LightGBM text", "DuckDB score(m, t), ONNX"
SPARK_BYOM = "Spark byom, LightGBM text"
MLFLOW = "Spark MLflow spark_udf (lightgbm)"
TD_BYOM = "byom_score.py, LightGBM text"
COLORS = {KERNEL: "#1f77b4", ORT: "#d62728", LLEAVES: "#17becf", LGB: "#2ca02c", XGB: "#8c564b"}
COLORS |= {DUCK_LGB: "#9467bd", DUCK_ONNX: "#c5b0d5", SPARK_BYOM: "#7fb2dc", MLFLOW: "#ff7f0e"}
COLORS |= {TD_BYOM: "#e377c2"}
CPU = "tree"
#: Issue 17's targets: contender / reference.
KERNEL_VS_ORT, KERNEL_VS_LLEAVES, DUCK_VS_ORT, SPARK_VS_MLFLOW, TD_VS_ORT = 3.5, 1.0, 2.5, 1.5, 1.2
COMPILE_S, LOAD_MS = 5.0, 50.0


def options() -> Any:
    p = h.parser(__doc__)
    p.add_argument("--big-rows", type=int, default=200_000, help="rows for the 500-tree model")
    p.add_argument("--big-train-rows", type=int, default=50_000)
    p.add_argument("--compile-rounds", type=int, default=3, help="for the 100-tree model")
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["lgb500", "xgb100", "lleaves", "spark", "teradata"],
    )
    return p


def compile_and_load(ensemble: Any, rounds: int) -> tuple[dict[str, float], Any]:
    """Median seconds to compile (empty cache folder) and to load from the disk cache; and the
    kernel last loaded."""
    from byom.trees import kernel_cache

    compiles, loads, kernel = [], [], None
    for _ in range(rounds):
        with tempfile.TemporaryDirectory(prefix="byom_kernels_") as folder:
            os.environ["BYOM_KERNEL_CACHE"] = folder
            kernel_cache.clear_memory()
            started = time.perf_counter()
            kernel_cache.kernel_for(ensemble)
            compiles.append(time.perf_counter() - started)
            kernel_cache.clear_memory()
            started = time.perf_counter()
            kernel = kernel_cache.kernel_for(ensemble)
            loads.append(time.perf_counter() - started)
    del os.environ["BYOM_KERNEL_CACHE"]
    kernel_cache.clear_memory()
    assert kernel is not None
    times = {"compile_s": statistics.median(compiles), "disk_load_s": statistics.median(loads)}
    return times | {"compile_rounds": rounds}, kernel


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


@dataclasses.dataclass
class Entry:
    """A model under test: its kernel, columns, times, and its lleaves worker (or None)."""

    model: tm.TreeModel
    kernel: Any
    columns: list[np.ndarray]
    times: dict[str, float]
    lleaves: tm.Lleaves | None = None


def one_thread(e: Entry) -> h.Group:
    """Kernel, onnxruntime, lleaves and the library's predict, one thread each."""
    m, n = e.model, len(e.model.X)
    sess, X64 = ort_session(m.onnx, 1), m.X.astype(np.float64)
    contenders: dict[str, tuple[int, Callable[[], Any]]] = {
        KERNEL: (n, lambda: e.kernel.margins(e.columns)),
        ORT: (n, lambda: ort_sum(sess, m.X)),
    }
    if e.lleaves is not None:
        contenders[LLEAVES] = (n, e.lleaves.run)
    contenders[m.native_name] = (n, lambda: m.predict(X64, 1))
    return h.Group(f"{m.key} 1 thr", f"{m.key}, 1 thread", contenders)


def lgb100_groups(e: Entry, models: Models) -> list[h.Group]:
    """lgb100's one-thread group with DuckDB at SET threads=1, and its two-thread group."""
    con, duck = duckdb_scorers(models)
    one = one_thread(e)
    one.contenders |= {name: (len(models.X), fn) for name, fn in duck.items()}
    one.series |= {name: h.Series(len(models.X)) for name in duck}
    one.enter = lambda: con.execute("SET threads=1")
    X, X64, n = models.X, models.X.astype(np.float64), len(models.X)
    sess2, booster = ort_session(models.onnx, 2), models.booster
    two = partial(in_two_threads, e.kernel)
    contenders: dict[str, tuple[int, Callable[[], Any]]] = {
        KERNEL: (n, lambda: two(e.columns)),
        ORT: (n, lambda: ort_sum(sess2, X)),
        LGB: (n, lambda: booster.predict(X64, raw_score=True, num_threads=2)),
    }
    contenders |= {name: (n, fn) for name, fn in duck.items()}
    enter = lambda: con.execute("SET threads=2")  # noqa: E731
    group = h.Group("lgb100 2 thr", "lgb100, 2 threads", contenders, enter)
    assert np.array_equal(two(e.columns), e.kernel.margins(e.columns))
    return [one, group]


def spark_group(models: Models, tmp: Path) -> tuple[h.Group, Any]:
    """Spark local[2]: byom's UDF and MLflow's spark_udf over the LightGBM model, the same
    cached table; onnxruntime at two threads in this process."""
    import mlflow.lightgbm
    import mlflow.pyfunc
    from pyspark.sql import functions as F
    from spark_parts import setup_spark

    from udfs.spark import register

    # MLflow's LightGBM predicts with OpenMP: one thread per task, as Spark runs 2 tasks at once.
    os.environ["OMP_NUM_THREADS"] = "1"
    st = setup_spark(models, 4, tmp, None)
    table = {"model_id": ["m"], "model": [models.lgb_text]}
    pq.write_table(pa.table(table), tmp / "models_lgb.parquet")
    register(st.spark, models_table=str(tmp / "models_lgb.parquet"))
    path = tmp / "mlflow_lightgbm"
    mlflow.lightgbm.save_model(models.booster, str(path), pip_requirements=["lightgbm"])
    udf = mlflow.pyfunc.spark_udf(st.spark, str(path), result_type="double", env_manager="local")
    sess, n = ort_session(models.onnx, 2), len(models.X)
    q = "SELECT sum(score('m', struct(*))) FROM t"
    contenders: dict[str, tuple[int, Callable[[], Any]]] = {
        ORT: (n, lambda: ort_sum(sess, models.X)),
        SPARK_BYOM: (n, lambda: float(st.spark.sql(q).collect()[0][0])),
        MLFLOW: (n, lambda: float(st.df.select(F.sum(udf(*COLS))).collect()[0][0])),
    }
    return h.Group("spark", "Spark local[2] (onnxruntime 2 thr)", contenders), st


def teradata_group(models: Models, tmp: Path) -> h.Group:
    """One byom_score.py instance over a pipe with the LightGBM text model, against
    onnxruntime at one thread on the same rows."""
    from bench_teradata import run_script, write_input

    data, model = tmp / "amp0.tsv", tmp / "model.txt"
    model.write_bytes(models.lgb_text)
    write_input(models.X, data)
    sess, n = ort_session(models.onnx, 1), len(models.X)
    contenders: dict[str, tuple[int, Callable[[], Any]]] = {
        TD_BYOM: (n, lambda: run_script(data, model, ";".join(f"{c}={c}" for c in COLS))),
        ORT: (n, lambda: ort_proba(sess, models.X)),
    }
    return h.Group("teradata", "Teradata script, pipe", contenders)


def teradata_check(out: bytes, e: Entry, tmp: Path) -> dict[str, dict[str, float]]:
    """Every row of the script's output against the kernel on the values the script parsed:
    the text's shortest float32 decimals read as doubles are not the float32 values
    themselves, and a row that close to a threshold may take the other branch."""
    import pyarrow.csv as pacsv
    from bench_teradata import check

    names = ["id", *COLS]
    text = pacsv.read_csv(
        tmp / "amp0.tsv",
        read_options=pacsv.ReadOptions(column_names=names),
        parse_options=pacsv.ParseOptions(delimiter="\t"),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.float64() for c in COLS}),
    )
    margins = e.kernel.margins([text[c].to_numpy() for c in COLS])[:, 0]
    return check(out, 1.0 / (1.0 + np.exp(-margins)))


def model_checks(e: Entry, g: h.Group) -> dict[str, dict[str, Any]]:
    """The kernel vs the library's raw scores and onnxruntime's probabilities (first 100,000
    rows), lleaves' sum vs the kernel's."""
    m, rows = e.model, slice(0, 100_000)
    margins = g.series[KERNEL].value[:, 0]
    raw = m.predict(m.X[rows].astype(np.float64), 1)
    proba = 1.0 / (1.0 + np.exp(-margins))
    ort = ort_proba(ort_session(m.onnx, 1), m.X[rows])
    tol = 1e-12 if m.lightgbm_text is not None else 1e-5  # XGBoost sums in float32
    checks = {
        f"{m.key}: kernel vs {m.native_name} raw": {
            "max_abs_diff": float(np.max(np.abs(margins[rows] - raw))),
            "tol": tol,
        },
        f"{m.key}: kernel vs onnxruntime (float32)": {
            "max_abs_diff": float(np.max(np.abs(proba[rows] - ort))),
            "tol": 1e-5,
        },
    }
    if LLEAVES in g.series:
        got = g.series[LLEAVES].value
        checks[f"{m.key}: lleaves sum vs kernel"] = h.sum_check(got, float(proba.sum()), 1e-9)
    return checks


def compile_lines(entries: list[Entry]) -> list[str]:
    lines = []
    for e in entries:
        c, ms = e.times["compile_s"], 1000 * e.times["disk_load_s"]
        goal = e.model.key == "lgb100"
        c_note = f"{'meets' if c <= COMPILE_S else 'ABOVE'} target <= {COMPILE_S:g}" if goal else ""
        l_note = f"{'meets' if ms <= LOAD_MS else 'ABOVE'} target <= {LOAD_MS:g}" if goal else ""
        label = f"{e.model.key}: compile s (median of {int(e.times['compile_rounds'])})"
        lines.append(h.target_line(label, c, None, c_note))
        lines.append(h.target_line(f"{e.model.key}: disk-cache load ms", ms, None, l_note))
        if e.lleaves is not None and not e.lleaves.compiled["cached"]:
            lleaves_s = e.lleaves.compiled["compile_s"]
            lines.append(h.target_line(f"{e.model.key}: lleaves compile s", lleaves_s, None))
    return lines


def targets(groups: dict[str, h.Group], entries: list[Entry]) -> list[str]:
    lines = []
    for e in entries:
        s, key = groups[f"{e.model.key} 1 thr"].series, e.model.key
        lines.append(h.target(s, KERNEL, ORT, f"{key}: kernel / onnxruntime, 1 thr", KERNEL_VS_ORT))
        if LLEAVES in s:
            label = f"{key}: kernel / lleaves, 1 thr"
            lines.append(h.target(s, KERNEL, LLEAVES, label, KERNEL_VS_LLEAVES))
        label = f"{key}: kernel / {e.model.native_name}, 1 thr"
        lines.append(h.target(s, KERNEL, e.model.native_name, label, None))
    s1, s2 = groups["lgb100 1 thr"].series, groups["lgb100 2 thr"].series
    lines += [
        h.target(s1, DUCK_LGB, ORT, "DuckDB LightGBM text / onnxruntime, 1 thr", DUCK_VS_ORT),
        h.target(s1, DUCK_ONNX, ORT, "DuckDB ONNX / onnxruntime, 1 thr", None),
        h.target(s2, DUCK_LGB, ORT, "DuckDB LightGBM text / onnxruntime, 2 thr", DUCK_VS_ORT),
        h.target(s2, KERNEL, ORT, "kernel (2 halves) / onnxruntime, 2 thr", None),
    ]
    if "spark" in groups:
        s = groups["spark"].series
        lines.append(h.target(s, SPARK_BYOM, MLFLOW, "Spark byom / MLflow spark_udf", 1.5))
        lines.append(h.target(s, SPARK_BYOM, ORT, "Spark byom / onnxruntime, 2 thr", None))
    if "teradata" in groups:
        s = groups["teradata"].series
        lines.append(h.target(s, TD_BYOM, ORT, "Teradata script / onnxruntime, 1 thr", TD_VS_ORT))
    return lines + compile_lines(entries)


def build(args: Any, models: Models, tmp: Path) -> list[Entry]:
    """The models, their kernels (compiled and loaded, timed) and lleaves workers."""
    skip = set(args.skip)
    chosen = [tm.lgb_small(models)]
    if "lgb500" not in skip:
        print(f"Training 500-tree x 255-leaf LightGBM on {args.big_train_rows:,} rows ...")
        big = tm.lgb_big(models, args.big_train_rows)
        trees, mean, most = tm.leaf_counts(big.booster)
        print(f"  {trees} trees, {mean:.1f} leaves on average, at most {most}", flush=True)
        chosen.append(dataclasses.replace(big, X=models.X[: args.big_rows]))
    if "xgb100" not in skip:
        print(f"Training 100-tree depth-8 XGBoost on {args.train_rows:,} rows x 100 ...")
        chosen.append(tm.xgb_model(args.rows, args.train_rows))
    python, lleaves_version = (None, "skipped") if "lleaves" in skip else tm.lleaves_python()
    if python is None:
        print(f"lleaves not measured: {lleaves_version}", file=sys.stderr)
    entries = []
    for m in chosen:
        rounds = args.compile_rounds if m.key == "lgb100" else 1
        print(f"Compiling {m.key} ({rounds} round(s)) ...", flush=True)
        times, kernel = compile_and_load(tm.ensemble_of(m.native, m.key), rounds)
        print(f"  compile {times['compile_s']:.2f} s, disk load {times['disk_load_s']:.4f} s")
        e = Entry(m, kernel, m.columns, times)
        if python is not None and m.lightgbm_text is not None:
            print(f"lleaves {lleaves_version}: compiling {m.key} ...", flush=True)
            e.lleaves = tm.Lleaves(python, m.lightgbm_text, m.X, tmp)
            print(f"  {e.lleaves.compiled}", flush=True)
        entries.append(e)
    return entries


def main(argv: list[str] | None = None) -> int:
    args = options().parse_args(argv)
    from byom.trees import kernel

    if not kernel.available():
        print("llvmlite is not installed: nothing to measure", file=sys.stderr)
        return 1
    models = build_models(args.rows, args.train_rows, with_pmml=False)
    tmp = Path(tempfile.mkdtemp(prefix="byom_bench_trees_"))
    spark = None
    try:
        entries = build(args, models, tmp)
        core = lgb100_groups(entries[0], models) + [one_thread(e) for e in entries[1:]]
        log = h.run_rounds(core, args.rounds, CPU, args.wait_quiet)
        engines = []
        if "spark" not in args.skip:
            print("Starting Spark local[2] ...", flush=True)
            group, spark = spark_group(models, tmp)
            engines.append(group)
        if "teradata" not in args.skip:
            engines.append(teradata_group(models, tmp))
        if engines:
            more = h.run_rounds(engines, args.rounds, CPU, args.wait_quiet)
            log = h.RoundsLog(log.loads + more.loads, log.discarded + more.discarded)
        groups = {g.key: g for g in core + engines}
        checks: dict[str, dict[str, Any]] = {}
        for e in entries:
            checks |= model_checks(e, groups[f"{e.model.key} 1 thr"])
        for g in core[:2] + engines:
            ref = g.series[ORT].value
            ref = float(np.sum(ref, dtype=np.float64)) if isinstance(ref, np.ndarray) else ref
            for name in (DUCK_LGB, DUCK_ONNX, SPARK_BYOM, MLFLOW):
                if name in g.series:
                    checks[f"{g.key}/{name}"] = h.sum_check(g.series[name].value, ref)
        if "teradata" in groups:
            checks |= teradata_check(groups["teradata"].series[TD_BYOM].value, entries[0], tmp)
        lines = targets(groups, entries)
        out = h.Outcome("trees", list(groups.values()), log, ORT, CPU, lines, checks)
        rows = ", ".join(f"{e.model.key} {len(e.model.X):,}" for e in entries)
        title = f"Tree models in one run (rows: {rows}): byom vs onnxruntime, lleaves, MLflow"
        extra = {
            "models": {e.model.key: e.model.title for e in entries},
            "rows_per_model": {e.model.key: len(e.model.X) for e in entries},
            "compile_and_load": {e.model.key: e.times for e in entries},
            "lleaves": {e.model.key: e.lleaves.compiled for e in entries if e.lleaves},
        }
        result = h.finish(args, out, title, COLORS, log_scale=True, **extra)
        result["versions"] = h.versions("llvmlite", "xgboost", "duckdb", "pyspark", "mlflow")
        result["versions"]["lleaves"] = tm.lleaves_python()[1] if "lleaves" not in args.skip else ""
        h.write_json(args.out / "trees_throughput.json", result)
    finally:
        for e in locals().get("entries", []):
            if e.lleaves is not None:
                e.lleaves.close()
        if spark is not None:
            spark.spark.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
