"""Thousands of models in one statement (issue 18): rows that name 1 to 10,000 logistic
regressions, or 100 20-tree models, scored by byom in DuckDB and Spark against one model.

    python bench/bench_many_models.py [--rows N] [--rounds K] [--counts 1,10,100,1000,10000]
                                      [--spark-counts 1,100,1000,10000] [--skip PART]

Data: --rows rows (default 1,000,000) of 20 float64 features f0..f19 (standard normal, seed 0)
and an `id`, a random permutation of 0..rows-1; for N models each row names the model
`mid = 'm' || (id % N)`. Every configuration scores the same rows with the same feature values:

* random order: the rows as drawn, so the model ids are spread at random (a 2,048-row DuckDB
  chunk names all 100 of 100 models, ~870 of 1,000, ~1,850 of 10,000);
* model order: `CREATE TABLE ... AS SELECT * FROM <random> ORDER BY mid, id`, each model's rows
  adjacent.

Models (all in one model table, `byom_models`):

* logistic regressions m0..m9999: ONNX graphs built with onnx.helper (input "input" float32
  [None, 20], MatMul W[20, 1], Add B[1], Sigmoid, output "probability" [None, 1]; opset 15, IR 8),
  the weights from an RNG seeded per model, fed from f0..f19 by the input map
  `input=f0,...,f19`. The first 20 are saved with `store.add` (which validates each: its time
  per model is printed; at 8 to 28 ms here, 10,000 would take minutes), the others by one
  INSERT of the same column values (the same format, input map and schemas; their own bytes,
  sha256 and size);
* 100 LightGBM binary models g0..g99 of 20 trees x 15 leaves, each trained on 500 rows of its own
  random draw, saved as LightGBM text with `store.add` (inputs by name).

Contenders: `SELECT sum(score(mid, t)) FROM <table> AS t` through `udfs.duckdb.sql`, at
`SET threads=1` and at one thread per core ("whole machine"), in one group per thread setting
and model family. Each group's reference, "1 model", is the same statement over rows that all
name m0 (g0 for the trees); ratio = rows/s of N models / rows/s of one model. Spark `local[2]`
(started after the DuckDB rounds, its own rounds): `spark.sql("SELECT sum(score(mid,
struct(*))) FROM v")` after `udfs.spark.register` over a Parquet model table of the logistic
regressions (not `udfs.spark.sql`, which re-reads the model table before every statement: that
refresh is timed once and printed), v a cached DataFrame of 4 partitions:
"random" (`repartition(4)`: every partition holds every model's rows, mixed), "co-located"
(`repartition(4, "mid")`, i.e. DISTRIBUTE BY mid: each model's rows in one partition, mixed
there) and "model order" (DISTRIBUTE BY mid SORT BY mid: each model's rows adjacent in one
partition); the shuffles are done when the views are cached, not timed.

Memory: a fresh subprocess builds the largest count's two tables, saves its models, then runs
its random-order and model-order statements at the whole machine; its peak RSS while scoring
(VmHWM, reset before the first statement) is compared with its RSS before scoring
(interpreter, libraries, its two tables and the model table: "the data") plus
BYOM_CACHE_BYTES (byom.config.CACHE_BYTES, as that process reads it); ru_maxrss is reported too.

Method (harness): every contender runs once to warm up (loading its models), then --rounds
interleaved rounds, rotating order, medians; CPU time of the process tree (Spark's JVM and
workers included). Checks: each count's sum in model order equals its sum in random order (the
same rows and models), each sum equals numpy's (logistic regressions, float32 like ONNX) or
LightGBM's predict (trees), Spark's sums equal DuckDB's. Outputs:
bench/results/many_models.{json,png}.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import harness as h
import numpy as np
import pyarrow as pa  # module level: DuckDB and pyspark resolve the UDFs' annotations here
import pyarrow.parquet as pq

N_FEATURES = 20
COLS = [f"f{i}" for i in range(N_FEATURES)]
SEED = 0
INPUT_MAP = "input=" + ",".join(COLS)
COUNTS = (1, 10, 100, 1_000, 10_000)
SPARK_COUNTS = (1, 100, 1_000, 10_000)
#: The tree models: how many, trees each, leaves per tree, training rows each.
TREE_MODELS, TREES, LEAVES, TREE_TRAIN_ROWS = 100, 20, 15, 500
#: Logistic regressions saved through store.add (timed); the rest by one INSERT.
ADD_SAMPLE = 20
PARTITIONS = 4
SPARK_MASTER = "local[2]"
REF = "1 model"
RANDOM, ORDERED, COLOCATED = "random", "model order", "co-located"
#: Issue 18's targets, rows/s against one model in the same run and group.
RANDOM_TARGETS = {100: 0.4, 1_000: 0.1}
ORDER_TARGET = 0.9
CPU = "tree"
MIB = 1024**2
COLORS = {RANDOM: "#d62728", COLOCATED: "#ff7f0e", ORDERED: "#1f77b4"}


def model_name(n: int, order: str) -> str:
    """A contender's name: N models and the order of the rows."""
    return REF if n == 1 else f"{n:,} models, {order}"


def count_list(text: str) -> list[int]:
    return [int(v.replace("_", "")) for v in text.split(",") if v.strip()]


# ---------------------------------------------------------------------------------- data
@dataclass
class Data:
    """The rows, in the random tables' order: features and ids (row i names model ids[i] % N)."""

    X: np.ndarray  # (rows, 20) float64
    ids: np.ndarray  # (rows,) int64, a permutation of 0..rows-1

    def arrow(self) -> pa.Table:
        return pa.table({"id": self.ids, **{c: self.X[:, i] for i, c in enumerate(COLS)}})


def make_data(rows: int) -> Data:
    rng = np.random.default_rng(SEED)
    return Data(rng.normal(size=(rows, N_FEATURES)), rng.permutation(rows).astype(np.int64))


# ---------------------------------------------------------------------------------- models
def lr_weights(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Model k's W [20, 1] and B [1], float32, from an RNG seeded for it."""
    rng = np.random.default_rng([SEED, k])
    w = 0.3 * rng.normal(size=(N_FEATURES, 1))
    return w.astype(np.float32), rng.normal(size=1).astype(np.float32)


def lr_onnx(k: int) -> bytes:
    """sigmoid(input @ W + B) as an ONNX graph."""
    from onnx import TensorProto, helper, numpy_helper

    w, b = lr_weights(k)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "W"], ["z"]),
            helper.make_node("Add", ["z", "B"], ["y"]),
            helper.make_node("Sigmoid", ["y"], ["probability"]),
        ],
        f"logistic_{k}",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, N_FEATURES])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None, 1])],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(b, "B")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def lr_expected(data: Data, counts: Sequence[int]) -> dict[int, float]:
    """Per count N: the sum over rows of their model's probability, computed by numpy in
    float32 as onnxruntime does (the sigmoid in float64)."""
    weights = [lr_weights(k) for k in range(max(counts))]
    W = np.stack([w[:, 0] for w, _ in weights])
    B = np.array([b[0] for _, b in weights], dtype=np.float32)
    X32 = data.X.astype(np.float32)
    out = {}
    for n in counts:
        total, k = 0.0, data.ids % n
        for s in range(0, len(k), 100_000):
            rows = slice(s, s + 100_000)
            z = np.einsum("ij,ij->i", X32[rows], W[k[rows]]) + B[k[rows]]
            total += float((1.0 / (1.0 + np.exp(-z.astype(np.float64)))).sum())
        out[n] = total
    return out


@dataclass
class TreeModels:
    texts: list[bytes]  # LightGBM text, as byom reads it
    boosters: list[Any]


def tree_models(count: int) -> TreeModels:
    """count LightGBM binary models of TREES trees x LEAVES leaves, each trained on its own
    random draw (a noisy linear boundary over f0..f19)."""
    import lightgbm as lgb

    params = {
        "objective": "binary",
        "num_leaves": LEAVES,
        "min_data_in_leaf": 5,
        "num_threads": 1,
        "deterministic": True,
        "force_row_wise": True,
        "verbose": -1,
    }
    texts, boosters = [], []
    for k in range(count):
        rng = np.random.default_rng([SEED, 1, k])
        X = rng.normal(size=(TREE_TRAIN_ROWS, N_FEATURES))
        y = (X @ rng.normal(size=N_FEATURES) + rng.normal(size=TREE_TRAIN_ROWS) > 0).astype(int)
        train = lgb.Dataset(X, y, feature_name=COLS)
        booster = lgb.train(params | {"seed": k}, train, num_boost_round=TREES)
        boosters.append(booster)
        texts.append(booster.model_to_string().encode())
    return TreeModels(texts, boosters)


def tree_expected(data: Data, trees: TreeModels, counts: Sequence[int]) -> dict[int, float]:
    """Per count N: the sum of P(class 1) by LightGBM's own predict, each row by its model."""
    out = {}
    for n in counts:
        k = data.ids % n
        out[n] = sum(
            float(trees.boosters[j].predict(data.X[k == j], num_threads=1).sum()) for j in range(n)
        )
    return out


# ---------------------------------------------------------------------------------- DuckDB
def duckdb_connection(data: Data, lr_counts: Sequence[int], tree_counts: Sequence[int]) -> Any:
    """A connection with, per count N, the random-order table m<N> (g<N> for the trees) and,
    for N > 1, the model-order table m<N>_o: columns id, mid, f0..f19 (DOUBLE)."""
    import duckdb

    con = duckdb.connect()
    con.register("bench_src", data.arrow())
    con.execute("CREATE TABLE base AS SELECT * FROM bench_src")
    con.unregister("bench_src")
    cols = ", ".join(COLS)
    for prefix, counts in (("m", lr_counts), ("g", tree_counts)):
        for n in counts:
            table = f"{prefix}{n}"
            con.execute(
                f"CREATE TABLE {table} AS SELECT id, '{prefix}' || (id % {n}) AS mid, {cols} "
                "FROM base"
            )
            if n > 1:
                con.execute(f"CREATE TABLE {table}_o AS SELECT * FROM {table} ORDER BY mid, id")
    con.execute("DROP TABLE base")
    return con


def save_models(con: Any, lr_count: int, trees: TreeModels | None) -> dict[str, float]:
    """Register byom and save m0..m<lr_count-1> (ADD_SAMPLE through store.add, timed, the rest
    by one INSERT of the same column values) and the tree models (store.add)."""
    from udfs.duckdb import register

    store = register(con)
    started = time.perf_counter()
    blobs = [lr_onnx(k) for k in range(lr_count)]
    built = time.perf_counter() - started
    sample = min(ADD_SAMPLE, lr_count)
    started = time.perf_counter()
    for k in range(sample):
        record = store.add(f"m{k}", blobs[k], inputs=INPUT_MAP)
    add_s = (time.perf_counter() - started) / sample
    started = time.perf_counter()
    if lr_count > sample:
        rest = blobs[sample:]
        rows = pa.table(
            {
                "model_id": [f"m{k}" for k in range(sample, lr_count)],
                "model": pa.array(rest, pa.binary()),
                "sha256": [hashlib.sha256(b).hexdigest() for b in rest],
            }
        )
        con.register("bench_models", rows)
        con.execute(
            "INSERT INTO byom_models (model_id, model, format, sha256, size_bytes, created_at, "
            "inputs, input_schema, output_schema) SELECT model_id, model, ?, sha256, "
            "octet_length(model), ?, ?, ?, ? FROM bench_models",
            [
                record.format,
                record.created_at,
                record.inputs,
                record.input_schema,
                record.output_schema,
            ],
        )
        con.unregister("bench_models")
    inserted = time.perf_counter() - started
    info = {"lr_build_s": built, "lr_store_add_s_per_model": add_s, "lr_insert_s": inserted}
    print(
        f"  {lr_count:,} logistic regressions ({len(blobs[0])} bytes each): built in "
        f"{built:.1f} s; store.add {1000 * add_s:.1f} ms per model ({sample} models: 10,000 "
        f"would take {10_000 * add_s:.0f} s); the other {lr_count - sample:,} inserted in "
        f"{inserted:.2f} s",
        flush=True,
    )
    if trees is not None:
        started = time.perf_counter()
        for k, text in enumerate(trees.texts):
            store.add(f"g{k}", text)
        info["trees_store_add_s"] = time.perf_counter() - started
        print(f"  {len(trees.texts)} tree models saved in {info['trees_store_add_s']:.1f} s")
    return info


def duck_sum(con: Any, table: str) -> Callable[[], float]:
    """`SELECT sum(score(mid, t)) FROM <table> AS t` through udfs.duckdb.sql."""
    from udfs.duckdb import sql

    q = f"SELECT sum(score(mid, t)) FROM {table} AS t"
    return lambda: float(sql(con, q).fetchall()[0][0])


def duckdb_groups(con: Any, rows: int, counts: Sequence[int], trees: bool) -> list[h.Group]:
    """Per thread setting (1, whole machine): the logistic regressions' group (every count,
    random and model order) and the trees' (1 and 100 models)."""
    groups = []
    for threads in sorted({1, h.CPUS}):  # one thread; the whole machine (if more than one core)
        where = "1 thread" if threads == 1 else f"{threads} threads"
        enter = lambda t=threads: con.execute(f"SET threads={t}")  # noqa: E731
        families = [("m", "duck", "LR", counts)]
        if trees:
            families.append(("g", "trees", "20-tree", [1, TREE_MODELS]))
        for prefix, key, what, ns in families:
            contenders = {REF: (rows, duck_sum(con, f"{prefix}1"))}
            for n in ns[1:]:
                contenders[model_name(n, RANDOM)] = (rows, duck_sum(con, f"{prefix}{n}"))
                contenders[model_name(n, ORDERED)] = (rows, duck_sum(con, f"{prefix}{n}_o"))
            label = f"DuckDB {where}, {what}"
            groups.append(h.Group(f"{key}{threads}", label, contenders, enter))
    return groups


# ---------------------------------------------------------------------------------- Spark
def spark_session(memory: str) -> Any:
    """Spark local[2], its Python workers running this interpreter on this checkout."""
    from pyspark.sql import SparkSession

    from byom.java import ensure_java

    ensure_java()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    paths = [str(h.ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    os.environ["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    spark = (
        SparkSession.builder.master(SPARK_MASTER)
        .appName("byom-bench-many-models")
        .config("spark.driver.memory", memory)  # the cached views: ~200 MB each per 1M rows
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def spark_sum(spark: Any, view: str) -> Callable[[], float]:
    """`SELECT sum(score(mid, struct(*))) FROM <view>` (byom registered already)."""
    q = f"SELECT sum(score(mid, struct(*))) FROM {view}"
    return lambda: float(spark.sql(q).collect()[0][0])


def spark_group(
    data: Data, counts: Sequence[int], tmp: Path, memory: str
) -> tuple[h.Group, Any, dict[str, Any]]:
    """The Spark group: per count, cached views in random order, co-located and model order;
    byom registered over a Parquet model table of the logistic regressions."""
    from pyspark.sql import functions as F

    from udfs.spark import refresh, register

    spark = spark_session(memory)
    pq.write_table(data.arrow(), tmp / "rows.parquet")
    top = max(counts)
    models = {
        "model_id": [f"m{k}" for k in range(top)],
        "model": pa.array([lr_onnx(k) for k in range(top)], pa.binary()),
        "inputs": [INPUT_MAP] * top,
    }
    pq.write_table(pa.table(models), tmp / "models.parquet")
    started = time.perf_counter()
    register(spark, models_table=str(tmp / "models.parquet"))
    info: dict[str, Any] = {"register_s": time.perf_counter() - started}
    started = time.perf_counter()
    refresh(spark)  # what udfs.spark.sql adds to every statement: the table re-read, unchanged
    info["refresh_s"] = time.perf_counter() - started
    print(
        f"  register ({top:,} models) {info['register_s']:.1f} s; refresh with nothing changed "
        f"{info['refresh_s']:.2f} s",
        flush=True,
    )
    base = spark.read.parquet(str(tmp / "rows.parquet"))
    rows = len(data.ids)
    contenders: dict[str, tuple[int, Callable[[], Any]]] = {}
    for n in counts:
        mid = F.concat(F.lit("m"), (F.col("id") % n).cast("string")).alias("mid")
        df = base.select("id", mid, *COLS)
        variants = [(RANDOM, df.repartition(PARTITIONS))]
        if n > 1:
            colocated = df.repartition(PARTITIONS, "mid")
            variants += [
                (COLOCATED, colocated),
                (ORDERED, colocated.sortWithinPartitions("mid", "id")),
            ]
        for order, frame in variants:
            view = f"m{n}_{order.split()[0].replace('-', '_')}"
            frame = frame.cache()
            assert frame.count() == rows
            frame.createOrReplaceTempView(view)
            contenders[model_name(n, order)] = (rows, spark_sum(spark, view))
    info |= {"partitions": PARTITIONS, "master": SPARK_MASTER}
    return h.Group("spark", f"Spark {SPARK_MASTER}, LR", contenders), spark, info


# ---------------------------------------------------------------------------------- memory
def proc_status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM to its current RSS (Linux: 5 > /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def memory_child(rows: int, n: int) -> int:
    """The --memory-child process: n models, their two tables, both statements at the whole
    machine; prints one `MEMORY {json}` line."""
    from byom import config

    data = make_data(rows)
    expected = lr_expected(data, [n])[n]
    con = duckdb_connection(data, [n], [])
    del data
    gc.collect()
    save_models(con, n, None)
    duck_bytes = con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchall()
    con.execute(f"SET threads={h.CPUS}")
    before_kib = proc_status_kib("VmRSS")
    reset = reset_peak_rss()
    out: dict[str, Any] = {"count": n, "rows": rows, "threads": h.CPUS, "expected_sum": expected}
    for key, table in (("random", f"m{n}"), ("model_order", f"m{n}_o")):
        started = time.perf_counter()
        out[f"{key}_sum"] = duck_sum(con, table)()
        out[f"{key}_s"] = time.perf_counter() - started
        out[f"{key}_peak_mib"] = proc_status_kib("VmHWM") / 1024
    out |= {
        "rss_before_mib": before_kib / 1024,
        "peak_mib": proc_status_kib("VmHWM") / 1024,
        "peak_reset": reset,
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "duckdb_mib": int(duck_bytes[0][0] or 0) / MIB,
        "cache_bytes": config.CACHE_BYTES,
    }
    print("MEMORY " + json.dumps(out), flush=True)
    return 0


def run_memory_child(rows: int, n: int) -> dict[str, Any]:
    """Run memory_child in a fresh interpreter; its result, or {"error": ...}."""
    cmd = [sys.executable, __file__, "--memory-child", str(n), "--rows", str(rows)]
    print(f"Memory: {n:,} models in a fresh process ({' '.join(cmd[1:])}) ...", flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    sys.stderr.write(done.stderr)
    lines = [x for x in done.stdout.splitlines() if x.startswith("MEMORY ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"count": n, "error": f"exit status {done.returncode}: {tail[0]}"}
    result: dict[str, Any] = json.loads(lines[-1][len("MEMORY ") :])
    print(
        f"  RSS before scoring {result['rss_before_mib']:,.0f} MiB (DuckDB's tables "
        f"{result['duckdb_mib']:,.0f} MiB); peak while scoring {result['peak_mib']:,.0f} MiB "
        f"(ru_maxrss {result['ru_maxrss_mib']:,.0f} MiB); "
        f"first statement (random order, loads the models) {result['random_s']:.1f} s, "
        f"then model order {result['model_order_s']:.1f} s",
        flush=True,
    )
    return result


def memory_lines(m: dict[str, Any]) -> list[str]:
    """Issue 18: the largest count completes with its memory inside BYOM_CACHE_BYTES plus the
    data (the RSS before scoring)."""
    label = f"{m['count']:,} models: peak RSS MiB (fresh process)"
    if "error" in m:
        return [f"  {label:<44} failed  (BELOW target: {m['error']})"]
    cache = m["cache_bytes"] / MIB
    bound = m["rss_before_mib"] + cache
    ok = m["peak_mib"] <= bound
    note = (
        f"{'meets' if ok else 'BELOW'} target <= {bound:,.0f} = BYOM_CACHE_BYTES {cache:,.0f} "
        f"+ {m['rss_before_mib']:,.0f} before scoring"
    )
    growth = m["peak_mib"] - m["rss_before_mib"]
    return [
        h.target_line(label, m["peak_mib"], None, note),
        h.target_line(f"{m['count']:,} models: RSS growth while scoring MiB", growth, None),
    ]


# ---------------------------------------------------------------------------------- report
def orders_of(g: h.Group) -> list[tuple[int, str]]:
    """The (count, order) of each contender of a group but the reference, in name order."""
    found = []
    for name in g.series:
        if name != REF:
            count, order = name.split(" models, ")
            found.append((int(count.replace(",", "")), order))
    return found


def target_lines(groups: Sequence[h.Group]) -> list[str]:
    lines = []
    for g in groups:
        s = g.series
        for n, order in orders_of(g):
            goal = ORDER_TARGET if order == ORDERED else None
            if order == RANDOM:
                goal = RANDOM_TARGETS.get(n)
            label = f"{g.label}: {n:,} {order}"
            lines.append(h.target(s, model_name(n, order), REF, label, goal))
        if g.key == "spark":  # what co-locating a model's rows buys, against random order
            for n, order in orders_of(g):
                if order != RANDOM:
                    label = f"Spark: {n:,} {order} / random"
                    lines.append(
                        h.target(s, model_name(n, order), model_name(n, RANDOM), label, None)
                    )
    return lines


def checks(
    groups: Sequence[h.Group], expected: dict[str, dict[int, float]], memory: dict[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """Model order vs random order (same rows, same models), each sum vs numpy / LightGBM
    (the `onnxruntime_sum` column holds the reference), Spark vs DuckDB; the memory child's
    sums likewise."""
    out = {}
    if memory is not None and "error" not in memory:
        n, got = memory["count"], memory["random_sum"]
        out[f"memory {n:,}: random vs numpy"] = h.sum_check(got, memory["expected_sum"], 1e-6)
        order = memory["model_order_sum"]
        out[f"memory {n:,}: model order vs random"] = h.sum_check(order, got, 1e-9)
    duck: dict[int, float] = {}
    for g in groups:
        family = "trees" if g.key.startswith("trees") else "lr"
        s = {name: float(v.value) for name, v in g.series.items()}
        for n in [1] + [n for n, order in orders_of(g) if order == RANDOM]:
            random_sum = s[model_name(n, RANDOM)]
            ref, tol = expected[family][n], 1e-6 if family == "lr" else 1e-9
            source = "numpy" if family == "lr" else "LightGBM"
            out[f"{g.key} {n:,}: random vs {source}"] = h.sum_check(random_sum, ref, tol)
            if g.key == f"duck{h.CPUS}":
                duck[n] = random_sum
        for n, order in orders_of(g):
            if order != RANDOM:
                got, ref = s[model_name(n, order)], s[model_name(n, RANDOM)]
                out[f"{g.key} {n:,}: {order} vs random"] = h.sum_check(got, ref, 1e-9)
    for g in groups:
        if g.key == "spark":
            for n in [1] + [n for n, order in orders_of(g) if order == RANDOM]:
                if n in duck:
                    got = float(g.series[model_name(n, RANDOM)].value)
                    out[f"spark {n:,}: random vs DuckDB"] = h.sum_check(got, duck[n], 1e-9)
    return out


def chart(groups: Sequence[h.Group], path: Path, title: str) -> None:
    """rows/s and the ratio to one model against the number of models, one line per group and
    order; the targets marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(14, 5.5), dpi=100)
    styles = {"duck1": "-", f"duck{h.CPUS}": "--", "trees1": "-.", f"trees{h.CPUS}": ":"}
    markers = {"duck": "o", "trees": "^", "spark": "s"}
    for g in groups:
        ref = g.series[REF]
        for order in (RANDOM, COLOCATED, ORDERED):
            ns = [n for n, o in orders_of(g) if o == order]
            if not ns:
                continue
            xs = [1, *ns]
            rps = [ref.rps(), *(g.series[model_name(n, order)].rps() for n in ns)]
            style = styles.get(g.key, (0, (1, 1)))
            marker = markers[g.key.rstrip("0123456789")]
            kw = {"color": COLORS[order], "linestyle": style, "marker": marker}
            left.plot(xs, rps, label=f"{g.label}, {order}", **kw)
            right.plot(xs, [r / ref.rps() for r in rps], **kw)
    xs, ys = list(RANDOM_TARGETS), list(RANDOM_TARGETS.values())
    right.plot(xs, ys, "x", color="black", markersize=10, label="target, random order")
    right.axhline(ORDER_TARGET, color="black", linewidth=0.8, label="target, model order")
    right.legend(fontsize=7, loc="lower left")
    for ax, what in ((left, "rows / s (median)"), (right, "ratio to one model (same group)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("models named by the rows")
        ax.set_ylabel(what)
        ax.grid(which="both", alpha=0.25)
    left.legend(fontsize=7, loc="lower left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    print(f"Chart: {path}")


# ---------------------------------------------------------------------------------- main
def options() -> argparse.ArgumentParser:
    p = h.parser(__doc__, rounds=3)
    p.add_argument(
        "--counts",
        type=count_list,
        default=list(COUNTS),
        help="numbers of logistic-regression models (1, the reference, is always measured)",
    )
    p.add_argument(
        "--spark-counts",
        type=count_list,
        default=list(SPARK_COUNTS),
        help="the counts (of --counts) Spark measures",
    )
    p.add_argument("--spark-memory", default="6g", help="Spark driver memory (the cached views)")
    p.add_argument("--skip", action="append", default=[], choices=["trees", "spark", "memory"])
    p.add_argument("--memory-child", type=int, default=0, help=argparse.SUPPRESS)
    return p


def run_spark(
    args: argparse.Namespace, data: Data, counts: list[int], log: h.RoundsLog
) -> tuple[list[h.Group], h.RoundsLog, dict[str, Any]]:
    """The Spark group's rounds, or nothing (and why) when pyspark or Java is missing."""
    wanted = sorted({1} | {n for n in args.spark_counts if n in counts})
    tmp = Path(tempfile.mkdtemp(prefix="byom_bench_many_"))
    spark = None
    try:
        print(f"Starting Spark {SPARK_MASTER}; caching the views ({wanted}) ...", flush=True)
        try:
            group, spark, info = spark_group(data, wanted, tmp, args.spark_memory)
        except Exception as exc:  # no pyspark, no Java: the DuckDB figures stand alone
            print(f"Spark not measured: {type(exc).__name__}: {exc}", file=sys.stderr)
            return [], log, {"skipped": f"{type(exc).__name__}: {exc}"}
        more = h.run_rounds([group], args.rounds, CPU, args.wait_quiet)
        return [group], h.RoundsLog(log.loads + more.loads, log.discarded + more.discarded), info
    finally:
        if spark is not None:
            spark.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = options().parse_args(argv)
    from byom import config

    if args.memory_child:
        return memory_child(args.rows, args.memory_child)
    counts, skip = sorted(set(args.counts) | {1}), set(args.skip)
    memory = None
    if "memory" not in skip and counts[-1] > 1:
        memory = run_memory_child(args.rows, counts[-1])
    print(f"Drawing {args.rows:,} rows; training {TREE_MODELS} tree models ...", flush=True)
    data = make_data(args.rows)
    trees = None if "trees" in skip else tree_models(TREE_MODELS)
    expected = {"lr": lr_expected(data, counts)}
    if trees is not None:
        expected["trees"] = tree_expected(data, trees, [1, TREE_MODELS])
    print("Loading DuckDB and saving the models ...", flush=True)
    con = duckdb_connection(data, counts, [1, TREE_MODELS] if trees else [])
    saved = save_models(con, counts[-1], trees)
    groups = duckdb_groups(con, args.rows, counts, trees is not None)
    print(f"Timing {args.rounds} rounds ...", flush=True)
    log = h.run_rounds(groups, args.rounds, CPU, args.wait_quiet)
    con.close()
    spark_info: dict[str, Any] = {"skipped": "--skip spark"}
    if "spark" not in skip:
        more, log, spark_info = run_spark(args, data, counts, log)
        groups += more
    lines = target_lines(groups) + (memory_lines(memory) if memory else [])
    text = h.report(groups, log, REF, CPU, lines)
    title = (
        f"Many models in one statement: {args.rows:,} rows x 20 floats, byom's score(mid, row) "
        "against one model"
    )
    checked = h.sanity(
        "model order vs random order (same rows and models); each sum vs numpy (logistic "
        "regressions, float32) or LightGBM (trees); Spark vs DuckDB",
        checks(groups, expected, memory),
    )
    chart(groups, args.out / "many_models.png", title)
    record = h.results(args, groups, log, REF) | {
        "cpu_clock": CPU,
        "counts": counts,
        "models": {
            "lr": "ONNX MatMul+Add+Sigmoid over 20 float32 inputs (input map)",
            "trees": f"LightGBM binary, {TREES} trees x {LEAVES} leaves, text",
        },
        "saving": saved,
        "spark": spark_info,
        "memory": memory,
        "ru_maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "expected_sums": expected,
        "byom_cache_bytes": config.CACHE_BYTES,
        "versions": h.versions("duckdb", "pyspark", "onnx"),
        "sanity": checked,
        "table": text,
    }
    h.write_json(args.out / "many_models.json", record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
