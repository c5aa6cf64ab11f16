"""Throughput of byom's Spark SQL `score(...)` against onnxruntime and MLflow's spark_udf.

    python bench/bench_spark.py [--rows N] [--rounds K] [--partitions P] [--profile]
                                [--wait-quiet S]

One process, one run, Spark ``local[2]``: a 100-tree LightGBM binary classifier (20 float
features) is trained on a small synthetic set and exported to ONNX (onnxmltools), the same way
as bench_duckdb.py, and then

* onnxruntime: ``sess.run(["probabilities"], {"input": X})`` on the whole float32 numpy array,
  intra_op_num_threads=2 (the machine), P(class 1) summed: the baseline, ratio 1.0 (and at
  one thread, for reference);
* byom: ``SELECT sum(score('m', struct(*))) FROM t`` and the positional
  ``score('m', f0, ..., f19)``, with ``udfs.spark.register(spark, models_table=<parquet>)``;
* MLflow: ``mlflow.pyfunc.spark_udf(spark, uri, result_type="double", env_manager="local")``
  over a small PythonModel that wraps onnxruntime (MLflow's own ONNX flavor fails on
  onnxmltools LightGBM classifiers), queried as ``df.select(F.sum(udf(*cols)))``;
* a lean reference: a minimal iterator ``arrow_udf`` (stack the 20 columns, run onnxruntime,
  return column 1), the ceiling for any Python UDF on this Spark path.

The Spark table ``t`` (N rows x 20 FLOAT columns) is written once to Parquet, read back,
repartitioned into --partitions slices, cached and materialized: each timed query scans
Spark's in-memory columnar cache, so it measures scoring (plus Spark's row -> Arrow -> Python
worker round trip), not Parquet decoding. Every onnxruntime session inside Spark's Python
workers uses one intra-op thread; Spark runs two tasks at a time.

Contenders are interleaved (the order rotates each round) and repeated; the table reports
medians and the ratio of medians. Wall-clock rows/s is the headline; rows per CPU-second of the
whole process tree (this driver, Spark's JVM and its Python workers) is printed too. On a shared
machine, --wait-quiet waits for other processes to go quiet before each round and redoes rounds
they disturbed (the baseline's spinning threads suffer most from them). Results go
to bench/results/spark_throughput.{json,png}; --profile adds a cost ladder (Spark scan, no-op
Arrow UDF, ...) and a cProfile of byom's UDF inside the Spark workers (printed, and kept in
the JSON).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa  # module level: pyspark resolves the arrow_udf type hints against it

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
for _p in (str(ROOT), str(BENCH)):
    if _p not in sys.path:  # run from a checkout without installing byom
        sys.path.insert(0, _p)

from bench_duckdb import COLS, N_FEATURES, Series, build_models, ort_session  # noqa: E402

RESULTS = BENCH / "results"
MASTER = "local[2]"

ORT = "onnxruntime direct (2 thr)"
ORT1 = "onnxruntime direct (1 thr)"
BYOM_ROW = "byom score(m, struct(*))"
BYOM_POS = "byom score(m, f0..f19)"
MLFLOW = "MLflow pyfunc.spark_udf"
LEAN = "lean arrow_udf (iterator)"
# --profile ladder only
SCAN = "Spark scan: sum(f0+...+f19)"
NOOP = "no-op arrow_udf (20 args)"


# ------------------------------------------------------------------------------- process tree
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
        # fields[1]: ppid; [11..14]: utime stime cutime cstime
        out[int(entry.name)] = (int(fields[1]), sum(int(v) for v in fields[11:15]))
    return out


def tree_cpu_ticks(table: dict[int, tuple[int, int]] | None = None) -> int:
    """CPU ticks of this process and all its descendants (Spark's JVM, its Python daemon and
    workers). Children that exited and were reaped are counted in their parent's cutime, so
    nothing is counted twice."""
    table = table if table is not None else _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack = 0, [os.getpid()]
    while stack:
        pid = stack.pop()
        if pid in table:
            total += table[pid][1]
        stack.extend(children.get(pid, []))
    return total


TICK = 1.0 / os.sysconf("SC_CLK_TCK")


def timed(fn: Callable[[], float]) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds of the whole process tree, and fn's value."""
    c0, t0 = tree_cpu_ticks(), time.perf_counter()
    value = fn()
    t1, c1 = time.perf_counter(), tree_cpu_ticks()
    return t1 - t0, (c1 - c0) * TICK, value


class OtherLoad:
    """CPU used by processes outside this process tree, in cores, since construction."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, int, int] | None:
        try:
            with open("/proc/stat") as f:
                cpu = [int(v) for v in f.readline().split()[1:]]
            busy = sum(cpu[i] for i in (0, 1, 2, 5, 6))  # user nice system irq softirq
            return time.perf_counter(), busy, tree_cpu_ticks()
        except (OSError, ValueError, IndexError):
            return None

    def cores(self) -> float | None:
        end = self._sample()
        if self.start is None or end is None:
            return None
        wall = end[0] - self.start[0]
        other = (end[1] - self.start[1]) - (end[2] - self.start[2])
        if wall <= 0:
            return None
        # A process of this tree that exits unreaped by it (an orphan) takes its CPU time out
        # of the tree's total: clamp what that can make of the estimate.
        return min(max(0.0, other * TICK / wall), float(os.cpu_count() or 1))


def wait_quiet(limit: float, window: float = 10.0, threshold: float = 0.2) -> None:
    """Sleep until other processes used < threshold cores over a window (at most limit s)."""
    start = time.perf_counter()
    said = start - 60.0
    while True:
        probe = OtherLoad()
        time.sleep(window)
        load = probe.cores()
        now = time.perf_counter()
        if load is None or load < threshold:
            if now - start > window * 1.5:  # only when it had to wait
                print(f"  machine quiet after {now - start:.0f} s of waiting", flush=True)
            return
        if now - start >= limit:
            print(f"  still busy after {limit:.0f} s ({load:.2f} cores): timing anyway", flush=True)
            return
        if now - said >= 60.0:
            print(f"  waiting: other processes use {load:.2f} cores", flush=True)
            said = now


# ------------------------------------------------------------------------------- MLflow model
def onnx_proba_model() -> Any:
    """A PythonModel class wrapping onnxruntime: P(class 1) of a binary classifier.

    MLflow's ONNX flavor cannot serve onnxmltools LightGBM classifiers (its output frame mixes
    the (n,) label with the (n, 2) probabilities: "All arrays must be of the same length"), so
    this is what a user would log instead. Defined on demand: mlflow is imported only when used,
    and the class is pickled by value into the saved model."""
    import mlflow.pyfunc

    base: Any = mlflow.pyfunc.PythonModel
    with warnings.catch_warnings():  # MLflow warns at class creation about predict's hints
        warnings.simplefilter("ignore")

        class OnnxProbaModel(base):
            def load_context(self, context: Any) -> None:
                import onnxruntime as ort

                opts = ort.SessionOptions()
                opts.intra_op_num_threads = 1  # like byom's sessions: Spark runs 2 tasks at once
                opts.inter_op_num_threads = 1
                self.sess = ort.InferenceSession(
                    context.artifacts["onnx"], opts, providers=["CPUExecutionProvider"]
                )
                self.input = self.sess.get_inputs()[0].name

            def predict(self, context, model_input, params=None):
                # No type hints: MLflow would read them as an input schema to enforce.
                import numpy

                x = numpy.ascontiguousarray(model_input.to_numpy(dtype=numpy.float32))
                p = self.sess.run(["probabilities"], {self.input: x})[0]
                return p[:, 1].astype(numpy.float64)

    return OnnxProbaModel


def mlflow_udf(spark: Any, onnx_path: Path, tmp: Path) -> tuple[Any, str]:
    try:
        import mlflow
        import mlflow.pyfunc
    except ImportError:
        raise RuntimeError(
            "mlflow is not installed: pip install mlflow-skinny, or --skip mlflow"
        ) from None

    path = tmp / "mlflow_model"
    with contextlib.redirect_stderr(io.StringIO()):  # warnings about the missing signature
        mlflow.pyfunc.save_model(
            str(path),
            python_model=onnx_proba_model()(),
            artifacts={"onnx": str(onnx_path)},
            pip_requirements=["onnxruntime", "numpy", "pandas"],  # skip requirement inference
        )
    udf = mlflow.pyfunc.spark_udf(spark, str(path), result_type="double", env_manager="local")
    return udf, mlflow.__version__


# ------------------------------------------------------------------------------- lean UDFs
def lean_udf(onnx: bytes) -> Any:
    """The least a Python UDF must do: stack the 20 columns, run onnxruntime, return column 1.
    One session per worker process (kept on the onnxruntime module across tasks)."""
    from pyspark.sql import functions as F

    arrow_udf: Any = F.arrow_udf  # its overloads do not cover the iterator form with hints

    @arrow_udf("double")
    def lean(batches: Iterator[tuple[pa.Array, ...]]) -> Iterator[pa.Array]:
        import onnxruntime as ort

        sess = getattr(ort, "_bench_spark_session", None)
        if sess is None:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            sess = ort.InferenceSession(onnx, opts, providers=["CPUExecutionProvider"])
            setattr(ort, "_bench_spark_session", sess)  # noqa: B010
        for cols in batches:
            x = np.empty((len(cols[0]), len(cols)), dtype=np.float32)
            for j, c in enumerate(cols):
                x[:, j] = c.to_numpy(zero_copy_only=False)
            p = sess.run(["probabilities"], {"input": x})[0]
            yield pa.array(p[:, 1].astype(np.float64))

    return lean


def noop_udf() -> Any:
    from pyspark.sql import functions as F

    arrow_udf: Any = F.arrow_udf  # its overloads do not cover the iterator form with hints

    @arrow_udf("double")
    def noop(batches: Iterator[tuple[pa.Array, ...]]) -> Iterator[pa.Array]:
        for cols in batches:
            yield pa.array(np.zeros(len(cols[0])))

    return noop


# ------------------------------------------------------------------------------- Spark
def spark_session(arrow_batch: int | None) -> Any:
    from pyspark.sql import SparkSession

    # Spark's Python workers must run this interpreter and import byom / udfs from the checkout.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    paths = [str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    builder = (
        SparkSession.builder.master(MASTER)
        .appName("byom-bench-spark")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")  # no progress bars between the lines
    )
    if arrow_batch is not None:
        builder = builder.config("spark.sql.execution.arrow.maxRecordsPerBatch", str(arrow_batch))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


@dataclass
class Setup:
    spark: Any
    df: Any  # the cached table t
    partitions: int
    partition_rows: list[int]
    arrow_batch: str
    tmp: Path
    onnx_path: Path
    models_path: Path
    spark_conf: dict[str, str] = field(default_factory=dict)


def setup_spark(
    onnx: bytes, X: np.ndarray, partitions: int, tmp: Path, arrow_batch: int | None
) -> Setup:
    import pyarrow.parquet as pq
    from pyspark.sql import functions as F

    spark = spark_session(arrow_batch)
    data = tmp / "t.parquet"
    pq.write_table(pa.table({c: X[:, i] for i, c in enumerate(COLS)}), data)  # 20 FLOAT cols
    df = spark.read.parquet(str(data)).repartition(partitions).cache()
    n = df.count()
    assert n == len(X), (n, len(X))
    df.createOrReplaceTempView("t")
    sizes = [r[1] for r in sorted(df.groupBy(F.spark_partition_id()).count().collect())]

    onnx_path = tmp / "model.onnx"
    onnx_path.write_bytes(onnx)
    models_path = tmp / "models.parquet"
    # model_id, model: the minimal model table. `inputs` is the input map ("f0,...,f19": the
    # columns that feed the model's one [N, 20] tensor), needed to pass the row by name.
    pq.write_table(
        pa.table(
            {
                "model_id": pa.array(["m"], pa.string()),
                "model": pa.array([onnx], pa.binary()),
                "inputs": pa.array([",".join(COLS)], pa.string()),
            }
        ),
        models_path,
    )
    key = "spark.sql.execution.arrow.maxRecordsPerBatch"
    conf = {
        k: spark.conf.get(k)
        for k in (
            key,
            "spark.sql.execution.pythonUDF.arrow.enabled",
            "spark.python.worker.reuse",
            "spark.sql.inMemoryColumnarStorage.batchSize",
            "spark.default.parallelism",
        )
        if _has_conf(spark, k)
    }
    return Setup(
        spark, df, partitions, sizes, spark.conf.get(key), tmp, onnx_path, models_path, conf
    )


def _has_conf(spark: Any, key: str) -> bool:
    try:
        spark.conf.get(key)
    except Exception:
        return False
    return True


def register_byom(st: Setup) -> str:
    from udfs.spark import register

    register(st.spark, models_table=str(st.models_path))
    import hashlib

    import udfs.spark as mod

    # Which adapter was measured: a hash over its sources (it is developed alongside).
    folder = Path(str(mod.__file__)).parent
    digest = hashlib.sha256()
    for f in sorted(folder.glob("*.py")):
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    return f"{folder} sha256:{digest.hexdigest()[:16]}"


def query_positional(model: str, table: str) -> str:
    return f"SELECT sum(score('{model}', {', '.join(COLS)})) FROM {table}"


def query_row(model: str, table: str) -> str:
    return f"SELECT sum(score('{model}', struct(*))) FROM {table}"


# ------------------------------------------------------------------------------- contenders
def make_contenders(
    st: Setup, onnx: bytes, X: np.ndarray, skip: set[str], ort_threads: int
) -> tuple[dict[str, Callable[[], float]], dict[str, Any]]:
    from pyspark.sql import functions as F

    info: dict[str, Any] = {}
    sess = ort_session(onnx, ort_threads)
    feed = {"input": X}

    def ort_proba() -> float:
        return float(sess.run(["probabilities"], feed)[0][:, 1].sum(dtype=np.float64))

    def sql(q: str) -> Callable[[], float]:
        return lambda: float(st.spark.sql(q).collect()[0][0])

    def agg(udf: Any) -> Callable[[], float]:
        return lambda: float(st.df.select(F.sum(udf(*COLS))).collect()[0][0])

    one = ort_session(onnx, 1)

    def ort_one() -> float:  # the pure compute cost: rows/cpu-s without spinning threads
        return float(one.run(["probabilities"], feed)[0][:, 1].sum(dtype=np.float64))

    out: dict[str, Callable[[], float]] = {ORT: ort_proba, ORT1: ort_one}
    if "byom" not in skip:
        info["byom_adapter"] = register_byom(st)
        out[BYOM_ROW] = sql(query_row("m", "t"))
        out[BYOM_POS] = sql(query_positional("m", "t"))
    if "mlflow" not in skip:
        udf, info["mlflow"] = mlflow_udf(st.spark, st.onnx_path, st.tmp)
        out[MLFLOW] = agg(udf)
    if "lean" not in skip:
        out[LEAN] = agg(lean_udf(onnx))
    return out, info


#: Other processes' load (cores) above which a round is redone when waiting for quiet.
BUSY = 0.2


def run_rounds(
    contenders: dict[str, Callable[[], float]],
    series: dict[str, Series],
    rounds: int,
    quiet: float = 0.0,
) -> tuple[list[float | None], list[float | None]]:
    """Warm up, then time the rounds. Returns the other processes' load during each kept round
    and during each discarded one.

    With quiet > 0, each round first waits (up to that many seconds) for a quiet machine, and a
    round during which other processes used more than BUSY cores is discarded and run again
    (at most `rounds` times in all), so that the medians come from quiet rounds."""
    for name, fn in contenders.items():  # warm-up: Python workers start, models load and cache
        wall, _, series[name].value = timed(fn)
        print(f"  warm-up         {name:<28} {wall:7.3f} s", flush=True)
    names = list(contenders)
    loads: list[float | None] = []
    discarded: list[float | None] = []
    r = 0
    while r < rounds:
        k = r % len(names)
        if quiet > 0:
            wait_quiet(quiet, window=5.0)
        others = OtherLoad()
        timings: dict[str, tuple[float, float]] = {}
        for name in names[k:] + names[:k]:
            wall, cpu, _ = timed(contenders[name])
            timings[name] = (wall, cpu)
            print(
                f"  round {r + 1}/{rounds}  {name:<28} {wall:7.3f} s (cpu {cpu:6.3f} s)  "
                f"{series[name].rows / wall:>12,.0f} rows/s",
                flush=True,
            )
        load = others.cores()
        if quiet > 0 and load is not None and load > BUSY and len(discarded) < rounds:
            discarded.append(load)
            print(
                f"  round {r + 1}/{rounds}  other processes: {load:.2f} cores: discarded, redone",
                flush=True,
            )
            continue
        for name, (wall, cpu) in timings.items():
            series[name].wall.append(wall)
            series[name].cpu.append(cpu)
        loads.append(load)
        print(f"  round {r + 1}/{rounds}  other processes: {load or 0:.2f} cores", flush=True)
        r += 1
    return loads, discarded


# ------------------------------------------------------------------------------- report
def ratio(series: dict[str, Series], name: str, base: str = ORT, cpu: bool = False) -> float:
    s, b = series[name], series[base]
    return s.cpu_rps() / b.cpu_rps() if cpu else s.rps() / b.rps()


def print_table(series: dict[str, Series], rounds: int, label: str) -> str:
    lines = [
        f"Median of {rounds} interleaved rounds; ratio = contender / {ORT} (ratio of medians).",
        f"{'configuration':<22} {'contender':<28} {'rows':>9} {'rows/s':>12} {'ratio':>7}"
        f" {'rows/cpu-s':>12} {'cpu ratio':>9}",
    ]
    lines.append("-" * len(lines[-1]))
    for name, s in series.items():
        lines.append(
            f"{label:<22} {name:<28} {s.rows:>9,} {s.rps():>12,.0f} {ratio(series, name):>7.3f}"
            f" {s.cpu_rps():>12,.0f} {ratio(series, name, cpu=True):>9.3f}"
        )
    lines += [
        "",
        "rows/cpu-s: rows per CPU-second of the whole process tree (driver, Spark JVM, Python "
        "workers); steadier than wall time on a shared machine.",
    ]
    if BYOM_ROW in series:
        lines += ["", "Targets:"]
        r = ratio(series, BYOM_ROW)
        r_cpu = ratio(series, BYOM_ROW, cpu=True)
        lines.append(
            f"  byom / onnxruntime (target >= 0.65)   {r:.3f}  "
            f"({'meets' if r >= 0.65 else 'BELOW'} target; positional form "
            f"{ratio(series, BYOM_POS):.3f}; per CPU-second {r_cpu:.3f})"
        )
        if MLFLOW in series:
            m = series[BYOM_ROW].rps() / series[MLFLOW].rps()
            lines.append(
                f"  byom / MLflow      (target >= 1.0)    {m:.3f}  "
                f"({'meets' if m >= 1.0 else 'BELOW'} target; positional form "
                f"{series[BYOM_POS].rps() / series[MLFLOW].rps():.3f}; per CPU-second "
                f"{series[BYOM_ROW].cpu_rps() / series[MLFLOW].cpu_rps():.3f})"
            )
        if LEAN in series:
            lines.append(
                f"  byom / lean arrow_udf                 {ratio(series, BYOM_ROW, LEAN):.3f}"
            )
    text = "\n".join(lines)
    print(text)
    return text


def sanity(series: dict[str, Series]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    ref = series[ORT].value
    assert ref is not None
    for name, s in series.items():
        if name == ORT:
            continue
        assert s.value is not None
        out[name] = {"sum": s.value, "onnxruntime_sum": ref, "rel_diff": abs(s.value - ref) / ref}
    print("\nSanity: sum of P(class 1), each contender vs onnxruntime on the same rows")
    for name, v in out.items():
        ok = "ok" if v["rel_diff"] < 1e-6 else "MISMATCH"
        print(
            f"  {name:<28} {v['sum']:>20.6f} vs {v['onnxruntime_sum']:>20.6f}  "
            f"rel diff {v['rel_diff']:.2e}  {ok}"
        )
    return out


def plot(series: dict[str, Series], path: Path, rows: int, partitions: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(series)
    colors = {
        ORT: "#d62728",
        ORT1: "#f0a0a0",
        BYOM_ROW: "#1f77b4",
        BYOM_POS: "#7fb2dc",
        MLFLOW: "#ff7f0e",
    }
    fig, ax = plt.subplots(figsize=(8, 0.55 * len(names) + 1.6), dpi=100)
    ys = list(range(len(names)))[::-1]
    for y, name in zip(ys, names, strict=True):
        s = series[name]
        v = s.rps()
        a, b = s.spread()
        ax.barh(
            y,
            v,
            0.7,
            color=colors.get(name, "#2ca02c"),
            xerr=[[v - a], [b - v]],
            capsize=2,
            error_kw={"elinewidth": 0.8, "ecolor": "#444"},
        )
        label = f"{v / 1e3:,.0f}k" + ("" if name == ORT else f"  ({ratio(series, name):.2f}x)")
        ax.annotate(label, (b, y), xytext=(4, 0), textcoords="offset points", va="center")
    ax.set_yticks(ys)
    ax.set_yticklabels(names)
    ax.set_xlim(0, max(s.spread()[1] for s in series.values()) * 1.3)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v / 1e3:,.0f}k")
    ax.set_xlabel("rows / s (median; whiskers = min..max)")
    ax.set_title(
        f"Spark {MASTER}: 100-tree LightGBM, {rows:,} rows x {N_FEATURES} floats, "
        f"{partitions} partitions\n(ratio = contender / {ORT})",
        fontsize=10,
    )
    ax.grid(axis="x", alpha=0.25)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def versions(info: dict[str, Any]) -> dict[str, str]:
    import lightgbm
    import onnxmltools
    import onnxruntime
    import pandas
    import pyspark

    out = {
        "python": platform.python_version(),
        "pyspark": pyspark.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnxmltools": onnxmltools.__version__,
        "lightgbm": lightgbm.__version__,
        "pyarrow": pa.__version__,
        "pandas": pandas.__version__,
        "numpy": np.__version__,
    }
    if "mlflow" in info:
        out["mlflow"] = info["mlflow"]
    return out


# ------------------------------------------------------------------------------- profile
def profile(st: Setup, onnx: bytes, X: np.ndarray, reps: int, quiet: float = 0.0) -> dict[str, Any]:
    """Where the time of a byom query goes, by a ladder of queries over the same cached table:
    Spark's scan; a no-op arrow_udf (JVM -> Arrow -> Python worker and back); the lean ONNX
    arrow_udf; byom. Plus onnxruntime at one thread on Arrow-batch-sized slices, and a cProfile
    of byom's UDF inside the workers (Spark's UDF profiler; its times are wall time inside the
    workers, which share the 2 cores with Spark's JVM). Printed, and returned for the JSON."""
    from pyspark.sql import functions as F

    n = len(X)
    batch = int(st.arrow_batch)
    one = ort_session(onnx, 1)
    if quiet > 0:
        wait_quiet(quiet, window=5.0)

    def ort_slices() -> float:
        total = 0.0
        for i in range(0, n, batch):
            total += float(one.run(["probabilities"], {"input": X[i : i + batch]})[0][:, 1].sum())
        return total

    def agg(udf: Any) -> Callable[[], float]:
        return lambda: float(st.df.select(F.sum(udf(*COLS))).collect()[0][0])

    ladder: dict[str, Callable[[], float]] = {
        SCAN: lambda: float(st.spark.sql(f"SELECT sum({' + '.join(COLS)}) FROM t").collect()[0][0]),
        NOOP: agg(noop_udf()),
        LEAN: agg(lean_udf(onnx)),
        BYOM_ROW: lambda: float(st.spark.sql(query_row("m", "t")).collect()[0][0]),
        f"onnxruntime 1 thr, {batch}-row slices": ort_slices,
    }
    walls: dict[str, list[float]] = {k: [] for k in ladder}
    cpus: dict[str, list[float]] = {k: [] for k in ladder}
    for fn in ladder.values():
        fn()
    for r in range(reps):
        names = list(ladder)
        k = r % len(names)
        for name in names[k:] + names[:k]:
            wall, cpu, _ = timed(ladder[name])
            walls[name].append(wall)
            cpus[name].append(cpu)
    med = {k: (statistics.median(walls[k]), statistics.median(cpus[k])) for k in ladder}
    lines = [
        f"Cost ladder, {n:,} rows, {st.partitions} partitions, Arrow batches of {batch} rows, "
        f"median of {reps} interleaved reps (cpu = whole process tree)",
        f"{'step':<40} {'wall s':>8} {'cpu s':>8} {'rows/cpu-s':>12}",
    ]
    for name, (w, c) in med.items():
        lines.append(f"{name:<40} {w:>8.3f} {c:>8.3f} {n / c:>12,.0f}")
    cpu_med = {name: v[1] for name, v in med.items()}
    ort_c = cpu_med[f"onnxruntime 1 thr, {batch}-row slices"]
    split = {
        "spark_scan_of_the_cache": cpu_med[SCAN],
        "spark_jvm_to_python_arrow_round_trip": cpu_med[NOOP] - cpu_med[SCAN],
        "onnxruntime_1_thread": ort_c,
        "lean_udf_glue_stack_and_call": cpu_med[LEAN] - cpu_med[NOOP] - ort_c,
        "byom_beyond_lean_udf": cpu_med[BYOM_ROW] - cpu_med[LEAN],
    }
    byom_c = cpu_med[BYOM_ROW]
    lines += ["", "CPU seconds of the byom query, split by differences of the ladder:"]
    for part, v in split.items():
        lines.append(
            f"  {part:<38} {v:>7.3f} s  ({100 * v / byom_c:5.1f} % of byom's {byom_c:.3f} s)"
        )

    prof_text = ""
    try:  # Spark 4's UDF profiler: cProfile inside the Python workers, per UDF
        st.spark.conf.set("spark.sql.pyspark.udf.profiler", "perf")
        st.spark.sql(query_row("m", "t")).collect()
        st.spark.conf.unset("spark.sql.pyspark.udf.profiler")
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            st.spark.profile.show(type="perf")
        # The header and the 25 costliest functions (sorted by internal time).
        prof_text = "\n".join(buf.getvalue().splitlines()[:35])
        with contextlib.suppress(Exception):
            st.spark.profile.clear()
    except Exception as exc:  # the profiler is best effort
        prof_text = f"(UDF profiler unavailable: {exc})"
    print("\n" + "\n".join(lines))
    print("\ncProfile of byom's UDF in the Spark workers (all tasks, wall time in the workers):")
    print(prof_text)
    return {
        "arrow_batch_rows": batch,
        "median_wall_s": {k: v[0] for k, v in med.items()},
        "median_cpu_s": cpu_med,
        "cpu_split_s": split,
        "cprofile_byom_udf": prof_text,
    }


# ------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="rows scored (default 1M)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds (default 5)")
    p.add_argument("--train-rows", type=int, default=20_000, help="LightGBM training rows")
    p.add_argument(
        "--partitions", type=int, default=4, help="partitions of the cached table (default 4)"
    )
    p.add_argument(
        "--arrow-batch",
        type=int,
        default=None,
        help="spark.sql.execution.arrow.maxRecordsPerBatch (default: Spark's, 10000)",
    )
    p.add_argument(
        "--wait-quiet",
        type=float,
        default=0.0,
        metavar="S",
        help="before each round (and the profile), wait up to S seconds for other processes to "
        f"use < {BUSY} cores, and redo a round during which they used more",
    )
    p.add_argument(
        "--ort-threads", type=int, default=2, help="intra-op threads of the baseline (default 2)"
    )
    p.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=["byom", "mlflow", "lean"],
        help="leave a contender out (repeatable)",
    )
    p.add_argument(
        "--profile", action="store_true", help="also break down where a byom query spends time"
    )
    p.add_argument("--profile-reps", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = p.parse_args(argv)
    skip = set(args.skip)

    t0 = time.perf_counter()
    print(f"Training 100-tree LightGBM on {args.train_rows:,} rows; exporting ONNX ...", flush=True)
    models = build_models(args.rows, args.train_rows, with_pmml=False)
    X = models.X
    tmp = Path(tempfile.mkdtemp(prefix="byom_bench_spark_"))
    try:
        print(
            f"Starting Spark {MASTER}; caching {args.rows:,} rows in {args.partitions} partitions "
            f"... ({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
        st = setup_spark(models.onnx, X, args.partitions, tmp, args.arrow_batch)
        print(
            f"  rows per partition {st.partition_rows}; "
            f"spark.sql.execution.arrow.maxRecordsPerBatch = {st.arrow_batch}",
            flush=True,
        )
        contenders, info = make_contenders(st, models.onnx, X, skip, args.ort_threads)
        series = {name: Series(len(X)) for name in contenders}
        print(
            f"Timing {args.rounds} rounds (byom ONNX threads per session: "
            f"{os.environ.get('BYOM_ONNX_THREADS', '1 (default)')}) ...",
            flush=True,
        )
        round_loads, discarded = run_rounds(contenders, series, args.rounds, args.wait_quiet)
        measured = [v for v in round_loads if v is not None]
        other_cores = statistics.mean(measured) if measured else None
        print()
        label = f"Spark {MASTER}"
        table = print_table(series, args.rounds, label)
        cpus = os.cpu_count() or 1
        if other_cores is not None:
            print(
                f"\nOther processes used {other_cores:.2f} of {cpus} cores on average while "
                f"the rounds ran (per round: {', '.join(f'{v:.2f}' for v in measured)})."
                + (
                    f" {len(discarded)} busier round(s) were discarded and redone."
                    if discarded
                    else ""
                )
            )
            if other_cores > 0.2:
                print(
                    "WARNING: the machine was not quiet; onnxruntime's 2 spinning threads suffer "
                    "most. Re-run when it is quiet, or read the rows/cpu-s column."
                )
        checks = sanity(series)
        result: dict[str, Any] = {
            "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "rows": args.rows,
            "rounds": args.rounds,
            "features": N_FEATURES,
            "model": "LGBMClassifier(n_estimators=100), binary, onnxmltools zipmap=False",
            "spark_master": MASTER,
            "partitions": args.partitions,
            "rows_per_partition": st.partition_rows,
            "table": "Parquet -> repartition -> cache() -> count(): timed queries scan the cache",
            "spark_conf": st.spark_conf,
            "onnxruntime_intra_op_threads": args.ort_threads,
            "byom_onnx_threads": int(os.environ.get("BYOM_ONNX_THREADS") or 1),
            "udf_onnx_threads": 1,
            "cpu_count": cpus,
            "other_processes_cores": other_cores,
            "other_processes_cores_per_round": round_loads,
            "discarded_rounds_other_processes_cores": discarded,
            "versions": versions(info),
            "info": info,
            "contenders": {
                name: {
                    "rows": s.rows,
                    "wall_s": s.wall,
                    "cpu_s": s.cpu,
                    "median_rows_per_s": s.rps(),
                    "median_rows_per_cpu_s": s.cpu_rps(),
                    "ratio_to_onnxruntime": ratio(series, name),
                    "cpu_ratio_to_onnxruntime": ratio(series, name, cpu=True),
                }
                for name, s in series.items()
            },
            "sanity": checks,
            "table_text": table,
        }
        png = args.out / "spark_throughput.png"
        plot(series, png, args.rows, args.partitions)
        print(f"\nChart: {png}")
        if args.profile:
            result["profile"] = profile(st, models.onnx, X, args.profile_reps, args.wait_quiet)
        js = args.out / "spark_throughput.json"
        js.parent.mkdir(parents=True, exist_ok=True)
        js.write_text(json.dumps(result, indent=2) + "\n")
        print(f"Results: {js}  (total {time.perf_counter() - t0:.0f} s)")
        st.spark.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
