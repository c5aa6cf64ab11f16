"""Throughput of byom's DuckDB `score(...)` against onnxruntime called directly.

    python bench/bench_duckdb.py [--rows N] [--rounds K] [--profile]

One process, one run: a 100-tree LightGBM binary classifier (20 float features) is trained on a
small synthetic set, exported to ONNX (onnxmltools) and PMML (sklearn2pmml), and then

* byom:  ``SELECT sum(score('m', f0, ..., f19)) FROM t`` (and the by-name ``score('m', t)``)
  over a DuckDB table of N rows x 20 FLOAT columns;
* onnxruntime: ``sess.run(["probabilities"], {"input": X})`` on the same float32 numpy array
  (and ``sess.run(None, ...)``, every output), P(class 1) summed like the SQL does;
* PMML through byom (its native evaluator) on the first --pmml-rows rows.

Two configurations: one thread each (DuckDB ``SET threads=1``, onnxruntime
intra_op_num_threads=1) and the whole machine each (DuckDB's default threads, onnxruntime
intra_op_num_threads=os.cpu_count()). byom's own ONNX sessions keep their default of one
intra-op thread (BYOM_ONNX_THREADS): DuckDB runs chunks on several threads itself.

Contenders are interleaved (the order rotates each round) and repeated; the table reports
medians and the ratio of medians. Wall-clock rows/s is the headline; rows per CPU-second
(process CPU time, all threads) is printed too because it is far less sensitive to other
processes on a shared machine. Results go to bench/results/duckdb_throughput.{json,png};
--profile adds a cost breakdown and a cProfile of the byom query (bench/results/duckdb_profile.txt).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa  # module level: DuckDB evaluates the UDFs' annotations here

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing byom
    sys.path.insert(0, str(ROOT))

RESULTS = Path(__file__).resolve().parent / "results"
N_FEATURES = 20
COLS = [f"f{i}" for i in range(N_FEATURES)]
SEED = 0
#: C1-only JIT and serial GC make the one-shot sklearn2pmml converter JVM about twice as fast.
JAVA_OPTS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]

BYOM_POS = "byom score(m, f0..f19)"
BYOM_ROW = "byom score(m, t)"
ORT_PROBA = "onnxruntime probabilities"
ORT_ALL = "onnxruntime all outputs"
PMML = "byom PMML (native)"


# ------------------------------------------------------------------------------------ models
@dataclass
class Models:
    onnx: bytes
    pmml: bytes | None
    X: np.ndarray  # (rows, 20) float32, C-contiguous: the benchmark data, never trained on


def build_models(rows: int, train_rows: int, with_pmml: bool) -> Models:
    import pandas as pd
    from lightgbm import LGBMClassifier
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType
    from sklearn.datasets import make_classification

    # One draw so the scored rows come from the training distribution.
    Xa, ya = make_classification(
        n_samples=train_rows + rows,
        n_features=N_FEATURES,
        n_informative=10,
        n_redundant=4,
        random_state=SEED,
    )
    X_train = pd.DataFrame(Xa[:train_rows], columns=COLS)
    y_train = pd.Series(ya[:train_rows], name="y")
    X = np.ascontiguousarray(Xa[train_rows:], dtype=np.float32)
    del Xa

    clf = LGBMClassifier(
        n_estimators=100,
        random_state=SEED,
        deterministic=True,
        force_row_wise=True,
        n_jobs=1,
        verbose=-1,
    )
    pmml: bytes | None = None
    if with_pmml:
        from sklearn2pmml import sklearn2pmml
        from sklearn2pmml.pipeline import PMMLPipeline

        from byom.java import ensure_java

        ensure_java()
        pipeline = PMMLPipeline([("classifier", clf)]).fit(X_train, y_train)
        with tempfile.TemporaryDirectory(prefix="byom_bench_") as tmp:
            path = os.path.join(tmp, "model.pmml")
            log = io.StringIO()
            try:
                with contextlib.redirect_stdout(log):
                    sklearn2pmml(pipeline, path, java_opts=JAVA_OPTS)
            except RuntimeError as exc:
                raise RuntimeError(f"sklearn2pmml failed:\n{log.getvalue()}") from exc
            pmml = Path(path).read_bytes()
    else:
        clf.fit(X_train, y_train)
    onx = convert_lightgbm(
        clf, initial_types=[("input", FloatTensorType([None, N_FEATURES]))], zipmap=False
    )
    return Models(onx.SerializeToString(), pmml, X)


def ort_session(onnx: bytes, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # the all-outputs call warns about the label's declared shape
    return ort.InferenceSession(onnx, opts, providers=["CPUExecutionProvider"])


# ------------------------------------------------------------------------------------ DuckDB
def setup_duckdb(models: Models, pmml_rows: int) -> tuple[Any, Any]:
    import duckdb

    from udfs.duckdb import register

    con = duckdb.connect()
    X = models.X
    con.register("bench_src", pa.table({c: X[:, i] for i, c in enumerate(COLS)}))
    con.execute("CREATE TABLE t AS SELECT * FROM bench_src")  # 20 FLOAT columns
    con.unregister("bench_src")
    if models.pmml is not None:
        small = X[:pmml_rows]
        con.register("bench_small", pa.table({c: small[:, i] for i, c in enumerate(COLS)}))
        con.execute("CREATE TABLE t_small AS SELECT * FROM bench_small")
        con.unregister("bench_small")
    store = register(con)
    store.add("m", models.onnx, inputs=",".join(COLS))
    if models.pmml is not None:
        store.add("p", models.pmml)  # PMML inputs are named f0..f19: matched by name
    return con, store


def query_positional(model: str, table: str) -> str:
    return f"SELECT sum(score('{model}', {', '.join(COLS)})) FROM {table}"


def query_row(model: str, table: str) -> str:
    return f"SELECT sum(score('{model}', {table})) FROM {table}"


def set_threads(con: Any, threads: int | None) -> int:
    if threads is None:
        con.execute("RESET threads")
    else:
        con.execute(f"SET threads={threads}")
    return int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])


# ------------------------------------------------------------------------------------ timing
@dataclass
class Series:
    rows: int
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    value: float | None = None

    def rps(self) -> float:
        return self.rows / statistics.median(self.wall)

    def cpu_rps(self) -> float:
        return self.rows / statistics.median(self.cpu)

    def spread(self) -> tuple[float, float]:
        return self.rows / max(self.wall), self.rows / min(self.wall)


def timed(fn: Callable[[], float]) -> tuple[float, float, float]:
    c0, t0 = time.process_time(), time.perf_counter()
    value = fn()
    t1, c1 = time.perf_counter(), time.process_time()
    return t1 - t0, c1 - c0, value


@dataclass
class Config:
    key: str
    label: str
    duckdb_threads: int | None  # None: DuckDB's default
    ort_threads: int
    contenders: dict[str, tuple[int, Callable[[], float]]] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    duckdb_threads_actual: int = 0


def make_configs(con: Any, models: Models, pmml_rows: int, all_threads: int) -> list[Config]:
    X = models.X
    n = len(X)
    configs = [
        Config("single", "1 thread each", 1, 1),
        Config("machine", f"whole machine ({all_threads} cores)", None, all_threads),
    ]
    for cfg in configs:
        sess = ort_session(models.onnx, cfg.ort_threads)
        feed = {"input": X}

        def ort_proba(sess: Any = sess, feed: dict[str, Any] = feed) -> float:
            return float(sess.run(["probabilities"], feed)[0][:, 1].sum(dtype=np.float64))

        def ort_all(sess: Any = sess, feed: dict[str, Any] = feed) -> float:
            return float(sess.run(None, feed)[1][:, 1].sum(dtype=np.float64))

        def sql(q: str) -> Callable[[], float]:
            return lambda: float(con.execute(q).fetchall()[0][0])

        cfg.contenders = {
            BYOM_POS: (n, sql(query_positional("m", "t"))),
            BYOM_ROW: (n, sql(query_row("m", "t"))),
            ORT_PROBA: (n, ort_proba),
            ORT_ALL: (n, ort_all),
        }
        if models.pmml is not None:
            cfg.contenders[PMML] = (min(pmml_rows, n), sql(query_row("p", "t_small")))
        cfg.series = {name: Series(rows) for name, (rows, _) in cfg.contenders.items()}
    return configs


def run_rounds(con: Any, configs: list[Config], rounds: int) -> None:
    for cfg in configs:  # warm-up: loads byom's scorers, touches every page once
        cfg.duckdb_threads_actual = set_threads(con, cfg.duckdb_threads)
        for name, (_, fn) in cfg.contenders.items():
            cfg.series[name].value = fn()
    for r in range(rounds):
        for cfg in configs if r % 2 == 0 else configs[::-1]:
            set_threads(con, cfg.duckdb_threads)
            names = list(cfg.contenders)
            k = r % len(names)
            for name in names[k:] + names[:k]:
                wall, cpu, _ = timed(cfg.contenders[name][1])
                cfg.series[name].wall.append(wall)
                cfg.series[name].cpu.append(cpu)
                print(
                    f"  round {r + 1}/{rounds}  {cfg.key:<7}  {name:<28} {wall:7.3f} s "
                    f"(cpu {cpu:6.3f} s)  {cfg.series[name].rows / wall:>12,.0f} rows/s",
                    flush=True,
                )
    set_threads(con, None)


class OtherLoad:
    """CPU used by other processes (Linux /proc): busy machine time minus this process and its
    children (pypmml's JVM), averaged over the wall time since construction, in cores."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, int, int] | None:
        try:
            with open("/proc/stat") as f:
                cpu = [int(v) for v in f.readline().split()[1:]]
            busy = sum(cpu[i] for i in (0, 1, 2, 5, 6))  # user nice system irq softirq
            me = os.getpid()
            own = 0
            for entry in os.scandir("/proc"):
                if not entry.name.isdigit():
                    continue
                try:
                    with open(f"/proc/{entry.name}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(entry.name) == me or int(fields[1]) == me:  # fields[1]: parent pid
                    own += int(fields[11]) + int(fields[12])  # utime + stime
            return time.perf_counter(), busy, own
        except (OSError, ValueError, IndexError):
            return None

    def cores(self) -> float | None:
        end = self._sample()
        if self.start is None or end is None:
            return None
        ticks = os.sysconf("SC_CLK_TCK")
        wall = end[0] - self.start[0]
        other = (end[1] - self.start[1]) - (end[2] - self.start[2])
        return max(0.0, other / ticks / wall) if wall > 0 else None


# ------------------------------------------------------------------------------------ report
def ratio(cfg: Config, name: str, base: str = ORT_PROBA, cpu: bool = False) -> float:
    s, b = cfg.series[name], cfg.series[base]
    return s.cpu_rps() / b.cpu_rps() if cpu else s.rps() / b.rps()


def print_table(configs: list[Config], rounds: int) -> str:
    lines = [
        f"Median of {rounds} interleaved rounds; ratio = contender / {ORT_PROBA} (ratio of "
        "medians).",
        f"{'configuration':<28} {'contender':<28} {'rows':>9} {'rows/s':>12} {'ratio':>7}"
        f" {'rows/cpu-s':>12} {'cpu ratio':>9}",
    ]
    lines.append("-" * len(lines[-1]))
    for cfg in configs:
        for name, s in cfg.series.items():
            cpu = f"{s.cpu_rps():>12,.0f} {ratio(cfg, name, cpu=True):>9.3f}"
            lines.append(
                f"{cfg.label:<28} {name:<28} {s.rows:>9,} {s.rps():>12,.0f} "
                f"{ratio(cfg, name):>7.3f} {cpu}"
            )
        lines.append("")
    lines.append(
        "rows/cpu-s: rows per second of this process's CPU time (all its threads); steadier than "
        "wall time on a shared machine."
    )
    lines.append("")
    lines.append("byom / onnxruntime (target >= 0.9):")
    for cfg in configs:
        r = ratio(cfg, BYOM_POS)
        verdict = "meets" if r >= 0.9 else "BELOW"
        lines.append(
            f"  {cfg.label:<28} {r:.3f}  ({verdict} target; by-name form "
            f"{ratio(cfg, BYOM_ROW):.3f}; per CPU-second {ratio(cfg, BYOM_POS, cpu=True):.3f})"
        )
    text = "\n".join(lines)
    print(text)
    return text


def sanity(configs: list[Config], models: Models, pmml_rows: int) -> dict[str, Any]:
    """Sums from DuckDB must equal onnxruntime's; PMML is compared on its own subset."""
    out: dict[str, Any] = {}
    for cfg in configs:
        ref = cfg.series[ORT_PROBA].value
        assert ref is not None
        for name in (BYOM_POS, BYOM_ROW, ORT_ALL):
            got = cfg.series[name].value
            assert got is not None
            rel = abs(got - ref) / abs(ref)
            out[f"{cfg.key}/{name}"] = {"sum": got, "onnxruntime_sum": ref, "rel_diff": rel}
    if models.pmml is not None:
        sess = ort_session(models.onnx, 1)
        sub = models.X[:pmml_rows]
        ref = float(sess.run(["probabilities"], {"input": sub})[0][:, 1].sum(dtype=np.float64))
        got = configs[0].series[PMML].value
        assert got is not None
        out[f"{configs[0].key}/{PMML}"] = {
            "sum": got,
            "onnxruntime_sum": ref,
            "rel_diff": abs(got - ref) / abs(ref),
            "note": "PMML evaluates in double, ONNX in float32: expect ~1e-6, not 1e-12",
        }
    print("\nSanity: sum of P(class 1), byom vs onnxruntime on the same rows")
    for key, v in out.items():
        ok = "ok" if v["rel_diff"] < (1e-5 if PMML in key else 1e-6) else "MISMATCH"
        print(
            f"  {key:<40} {v['sum']:>20.6f} vs {v['onnxruntime_sum']:>20.6f}  "
            f"rel diff {v['rel_diff']:.2e}  {ok}"
        )
    return out


def plot(configs: list[Config], path: Path, rows: int, pmml_rows: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(configs[0].series)
    colors = {
        BYOM_POS: "#1f77b4",
        BYOM_ROW: "#7fb2dc",
        ORT_PROBA: "#d62728",
        ORT_ALL: "#f0a0a0",
        PMML: "#2ca02c",
    }
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=100)
    top, bottom = 0.0, float("inf")
    for j, name in enumerate(names):
        xs, ys, lo, hi = [], [], [], []
        for i, cfg in enumerate(configs):
            s = cfg.series[name]
            y = s.rps()
            a, b = s.spread()
            xs.append(i + (j - (len(names) - 1) / 2) * width)
            ys.append(y)
            lo.append(y - a)
            hi.append(b - y)
            top, bottom = max(top, b), min(bottom, a)
        label = name if name != PMML else f"{name}, {pmml_rows:,} rows"
        ax.bar(
            xs,
            ys,
            width * 0.92,
            label=label,
            color=colors.get(name, "grey"),
            yerr=[lo, hi],
            capsize=2,
            error_kw={"elinewidth": 0.8, "ecolor": "#444"},
        )
        for x, y, up, cfg in zip(xs, ys, hi, configs, strict=True):
            r = ratio(cfg, name)
            text = f"{y / 1e3:,.0f}k" + ("" if name == ORT_PROBA else f"\n{r:.2f}x")
            ax.annotate(  # above the whisker, so the bar's range never crosses the text
                text,
                (x, y + up),
                xytext=(0, 3),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7.5,
            )
    ax.set_yscale("log")
    ax.set_ylim(bottom / 2, top * 4)
    ax.set_xticks(range(len(configs)))
    ax.set_xticklabels([c.label for c in configs])
    ax.set_ylabel("rows / s (log scale; median, whiskers = min..max)")
    ax.set_title(
        f"byom in DuckDB vs onnxruntime: 100-tree LightGBM, {rows:,} rows x {N_FEATURES} floats\n"
        f"(ratio under each value = contender / {ORT_PROBA})",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="upper right", ncols=2)
    ax.grid(axis="y", which="both", alpha=0.25)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def versions() -> dict[str, str]:
    import duckdb
    import lightgbm
    import onnxmltools
    import onnxruntime
    import pyarrow

    out = {
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnxmltools": onnxmltools.__version__,
        "lightgbm": lightgbm.__version__,
        "pyarrow": pyarrow.__version__,
        "numpy": np.__version__,
    }
    with contextlib.suppress(Exception):
        import sklearn2pmml

        out["sklearn2pmml"] = sklearn2pmml.__version__
    return out


# ------------------------------------------------------------------------------------ profile
def profile(con: Any, models: Models, reps: int, out_path: Path) -> dict[str, Any]:
    """Where a single-threaded byom query spends its time.

    A ladder of queries over the same table, each adding one layer: DuckDB's scan; a no-op Arrow
    UDF (DuckDB -> Arrow -> Python call per chunk); a minimal ONNX UDF (stack the 20 columns,
    run onnxruntime); byom. Plus onnxruntime alone on the same chunk size and on the whole array.
    Then a cProfile of the byom query.
    """
    set_threads(con, 1)
    sess = ort_session(models.onnx, 1)
    chunk_sizes: list[int] = []

    def noop(*cols: pa.Array) -> pa.Array:
        chunk_sizes.append(len(cols[0]))
        return pa.array(np.zeros(len(cols[0])))

    def minimal(*cols: pa.Array) -> pa.Array:
        x = np.column_stack([c.to_numpy(zero_copy_only=False) for c in cols])
        p = sess.run(["probabilities"], {"input": x})[0]
        return pa.array(p[:, 1].astype(np.float64))

    for name, fn in (("bench_noop", noop), ("bench_minimal", minimal)):
        with contextlib.suppress(Exception):
            con.remove_function(name)
        con.create_function(
            name, fn, None, "DOUBLE", type="arrow", null_handling="special", side_effects=False
        )
    args = ", ".join(COLS)
    X = models.X
    n = len(X)
    con.execute(f"SELECT sum(bench_noop({args})) FROM t").fetchall()
    chunk = max(chunk_sizes) if chunk_sizes else 2048

    def ort_chunks() -> float:
        total = 0.0
        for i in range(0, n, chunk):
            total += float(sess.run(["probabilities"], {"input": X[i : i + chunk]})[0][:, 1].sum())
        return total

    def sql(q: str) -> Callable[[], float]:
        return lambda: float(con.execute(q).fetchall()[0][0])

    ladder: dict[str, Callable[[], float]] = {
        "DuckDB scan: sum(f0+...+f19)": sql(f"SELECT sum({' + '.join(COLS)}) FROM t"),
        "no-op Arrow UDF (20 args)": sql(f"SELECT sum(bench_noop({args})) FROM t"),
        "minimal ONNX UDF (stack + ort)": sql(f"SELECT sum(bench_minimal({args})) FROM t"),
        "byom score(m, f0..f19)": sql(query_positional("m", "t")),
        f"onnxruntime, {chunk}-row slices": ort_chunks,
        "onnxruntime, whole array": lambda: float(
            sess.run(["probabilities"], {"input": X})[0][:, 1].sum()
        ),
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

    pr = cProfile.Profile()
    q = query_positional("m", "t")
    pr.enable()
    con.execute(q).fetchall()
    pr.disable()
    buf = io.StringIO()
    stats = pstats.Stats(pr, stream=buf)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(25)
    total_prof = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    ort_prof = sum(
        v[2]
        for k, v in stats.stats.items()  # type: ignore[attr-defined]
        if "onnxruntime_pybind11_state" in str(k[2])
    )

    lines = [
        f"Single-thread cost ladder, {n:,} rows, DuckDB chunk = {chunk} rows "
        f"({len(set(chunk_sizes))} distinct sizes), median of {reps} interleaved reps",
        f"{'step':<36} {'wall s':>8} {'cpu s':>8} {'rows/cpu-s':>12}",
    ]
    for name, (w, c) in med.items():
        lines.append(f"{name:<36} {w:>8.3f} {c:>8.3f} {n / c:>12,.0f}")
    scan = med["DuckDB scan: sum(f0+...+f19)"][1]
    noop_c = med["no-op Arrow UDF (20 args)"][1]
    minimal_c = med["minimal ONNX UDF (stack + ort)"][1]
    byom_c = med["byom score(m, f0..f19)"][1]
    ort_chunk_c = med[f"onnxruntime, {chunk}-row slices"][1]
    ort_whole_c = med["onnxruntime, whole array"][1]
    split = {
        "duckdb_scan": scan,
        "duckdb_arrow_udf_call": noop_c - scan,
        "minimal_adapter_stack_and_glue": minimal_c - noop_c - ort_chunk_c,
        "byom_python_beyond_minimal": byom_c - minimal_c,
        "onnxruntime_chunked": ort_chunk_c,
        "onnxruntime_chunking_penalty": ort_chunk_c - ort_whole_c,
    }
    lines += ["", "CPU seconds of the byom query, split by differences of the ladder:"]
    for k, v in split.items():
        lines.append(f"  {k:<36} {v:>7.3f} s  ({100 * v / byom_c:5.1f} % of byom's {byom_c:.3f} s)")
    lines += [
        "",
        f"cProfile of the byom query (1 thread; profiler overhead inflates Python-side calls): "
        f"{total_prof:.3f} s profiled, of which onnxruntime run {ort_prof:.3f} s",
        buf.getvalue(),
    ]
    text = "\n".join(lines)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(text)
    print("\n" + "\n".join(lines[: len(med) + 4 + len(split)]))
    print(f"(full cProfile in {out_path})")
    set_threads(con, None)
    return {
        "chunk_rows": chunk,
        "median_wall_s": {k: v[0] for k, v in med.items()},
        "median_cpu_s": {k: v[1] for k, v in med.items()},
        "cpu_split_s": split,
        "cprofile_total_s": total_prof,
        "cprofile_onnxruntime_s": ort_prof,
    }


# ------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000, help="rows scored (default 1M)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved timed rounds (default 5)")
    p.add_argument("--train-rows", type=int, default=20_000, help="LightGBM training rows")
    p.add_argument("--pmml-rows", type=int, default=20_000, help="rows scored through PMML")
    p.add_argument("--no-pmml", action="store_true", help="skip the PMML export and contender")
    p.add_argument(
        "--profile",
        action="store_true",
        help="also break down where a 1-thread byom query spends its time",
    )
    p.add_argument("--profile-reps", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = p.parse_args(argv)
    all_threads = os.cpu_count() or 1

    t0 = time.perf_counter()
    print(
        f"Training 100-tree LightGBM on {args.train_rows:,} rows; exporting ONNX"
        + ("" if args.no_pmml else " and PMML")
        + " ...",
        flush=True,
    )
    models = build_models(args.rows, args.train_rows, not args.no_pmml)
    pmml_rows = min(args.pmml_rows, args.rows)
    print(
        f"Loading {args.rows:,} rows into DuckDB ... ({time.perf_counter() - t0:.1f} s)", flush=True
    )
    con, _ = setup_duckdb(models, pmml_rows)
    configs = make_configs(con, models, pmml_rows, all_threads)
    print(
        f"Timing {args.rounds} rounds (byom ONNX threads per session: "
        f"{os.environ.get('BYOM_ONNX_THREADS', '1 (default)')}) ...",
        flush=True,
    )
    others = OtherLoad()
    run_rounds(con, configs, args.rounds)
    other_cores = others.cores()
    print()
    table = print_table(configs, args.rounds)
    if other_cores is not None:
        print(
            f"\nOther processes used {other_cores:.2f} of {all_threads} cores on average while "
            "the rounds ran."
        )
        if other_cores > 0.2:
            print(
                "WARNING: the machine was not quiet; the whole-machine numbers are not meaningful "
                "(onnxruntime's spinning intra-op threads suffer most). Re-run when it is quiet."
            )
    checks = sanity(configs, models, pmml_rows)

    result: dict[str, Any] = {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "rows": args.rows,
        "pmml_rows": pmml_rows if models.pmml is not None else 0,
        "rounds": args.rounds,
        "features": N_FEATURES,
        "model": "LGBMClassifier(n_estimators=100), binary, onnxmltools zipmap=False",
        "cpu_count": all_threads,
        "other_processes_cores": other_cores,
        "versions": versions(),
        "configs": {
            cfg.key: {
                "label": cfg.label,
                "duckdb_threads": cfg.duckdb_threads_actual,
                "onnxruntime_intra_op_threads": cfg.ort_threads,
                "byom_onnx_threads": int(os.environ.get("BYOM_ONNX_THREADS") or 1),
                "contenders": {
                    name: {
                        "rows": s.rows,
                        "wall_s": s.wall,
                        "cpu_s": s.cpu,
                        "median_rows_per_s": s.rps(),
                        "median_rows_per_cpu_s": s.cpu_rps(),
                        "ratio_to_onnxruntime": ratio(cfg, name),
                        "cpu_ratio_to_onnxruntime": ratio(cfg, name, cpu=True),
                    }
                    for name, s in cfg.series.items()
                },
            }
            for cfg in configs
        },
        "sanity": checks,
        "table": table,
    }
    png = args.out / "duckdb_throughput.png"
    plot(configs, png, args.rows, pmml_rows)
    print(f"\nChart: {png}")
    if args.profile:
        result["profile"] = profile(con, models, args.profile_reps, args.out / "duckdb_profile.txt")
    js = args.out / "duckdb_throughput.json"
    js.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Results: {js}  (total {time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
