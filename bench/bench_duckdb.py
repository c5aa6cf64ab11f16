"""Throughput of byom's DuckDB `score(...)` against onnxruntime called directly.

    python bench/bench_duckdb.py [--rows N] [--rounds K] [--profile]

The shared 100-tree LightGBM classifier (workload.py), and then

* byom:  ``SELECT sum(score('m', f0, ..., f19)) FROM t`` (and the by-name ``score('m', t)``)
  over a DuckDB table of N rows x 20 FLOAT columns;
* onnxruntime: ``sess.run(["probabilities"], {"input": X})`` on the same float32 numpy array
  (and ``sess.run(None, ...)``, every output), P(class 1) summed like the SQL does;
* PMML through byom (its native evaluator) on the first --pmml-rows rows.

Two configurations: one thread each (DuckDB ``SET threads=1``, onnxruntime
intra_op_num_threads=1) and the whole machine each (DuckDB's default threads, onnxruntime
intra_op_num_threads=os.cpu_count()). byom's own ONNX sessions keep their default of one
intra-op thread (BYOM_ONNX_THREADS): DuckDB runs chunks on several threads itself. CPU time is
this process's (all threads). Results go to bench/results/duckdb_throughput.{json,png};
--profile adds a cost ladder and a cProfile of the byom query (bench/results/duckdb_profile.txt).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness as h
import numpy as np
import pyarrow as pa  # module level: DuckDB evaluates the UDFs' annotations here
from workload import (
    COLS,
    MODEL,
    N_FEATURES,
    Models,
    arrow_table,
    build_models,
    ort_session,
    ort_sum,
)

BYOM_POS, BYOM_ROW = "byom score(m, f0..f19)", "byom score(m, t)"
ORT_PROBA, ORT_ALL = "onnxruntime probabilities", "onnxruntime all outputs"
PMML = "byom PMML (native)"
#: The contenders' colours in the chart.
COLORS = {BYOM_POS: "#1f77b4", BYOM_ROW: "#7fb2dc", ORT_PROBA: "#d62728", ORT_ALL: "#f0a0a0"}
COLORS[PMML] = "#2ca02c"
CPU = "process"


def setup_duckdb(models: Models, pmml_rows: int) -> Any:
    import duckdb

    from udfs.duckdb import register

    con = duckdb.connect()
    tables = {"t": models.X} | ({"t_small": models.X[:pmml_rows]} if models.pmml else {})
    for name, X in tables.items():
        con.register("bench_src", arrow_table(X))
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM bench_src")  # 20 FLOAT columns
        con.unregister("bench_src")
    store = register(con)
    store.add("m", models.onnx, inputs=",".join(COLS))
    if models.pmml is not None:
        store.add("p", models.pmml)  # PMML inputs are named f0..f19: matched by name
    return con


def query_positional(model: str, table: str) -> str:
    return f"SELECT sum(score('{model}', {', '.join(COLS)})) FROM {table}"


def query_row(model: str, table: str) -> str:
    return f"SELECT sum(score('{model}', {table})) FROM {table}"


def set_threads(con: Any, threads: int | None) -> int:
    con.execute("RESET threads" if threads is None else f"SET threads={threads}")
    return int(con.execute("SELECT current_setting('threads')").fetchall()[0][0])


def sql(con: Any, q: str) -> Callable[[], float]:
    return lambda: float(con.execute(q).fetchall()[0][0])


def make_groups(con: Any, models: Models, pmml_rows: int) -> list[h.Group]:
    X, n = models.X, len(models.X)
    groups = []
    for key, label, threads, ort_threads in (
        ("single", "1 thread each", 1, 1),
        ("machine", f"whole machine ({h.CPUS} cores)", None, h.CPUS),
    ):
        sess = ort_session(models.onnx, ort_threads)
        contenders: dict[str, tuple[int, Callable[[], Any]]] = {
            BYOM_POS: (n, sql(con, query_positional("m", "t"))),
            BYOM_ROW: (n, sql(con, query_row("m", "t"))),
            ORT_PROBA: (n, lambda s=sess: ort_sum(s, X)),
            ORT_ALL: (n, lambda s=sess: ort_sum(s, X, all_outputs=True)),
        }
        if models.pmml is not None:
            contenders[PMML] = (pmml_rows, sql(con, query_row("p", "t_small")))
        enter = lambda t=threads: set_threads(con, t)  # noqa: E731
        groups.append(h.Group(key, label, contenders, enter))
    return groups


def checks(groups: list[h.Group], models: Models, pmml_rows: int) -> dict[str, Any]:
    """Sums from DuckDB must equal onnxruntime's; PMML is compared on its own subset."""
    out = {
        f"{g.key}/{name}": h.sum_check(g.series[name].value, g.series[ORT_PROBA].value)
        for g in groups
        for name in (BYOM_POS, BYOM_ROW, ORT_ALL)
    }
    if models.pmml is not None:
        ref = ort_sum(ort_session(models.onnx, 1), models.X[:pmml_rows])
        note = "PMML evaluates in double, ONNX in float32: expect ~1e-6, not 1e-12"
        got = groups[0].series[PMML].value
        out[f"{groups[0].key}/{PMML}"] = h.sum_check(got, ref, 1e-5, note=note)
    return out


def targets(groups: list[h.Group]) -> list[str]:
    return [
        h.target(g.series, BYOM_POS, ORT_PROBA, f"byom / onnxruntime, {g.label}", 0.9, BYOM_ROW)
        for g in groups
    ]


# ------------------------------------------------------------------------------------ profile
def _udfs(con: Any, sess: Any) -> list[int]:
    """Register a no-op Arrow UDF and a minimal ONNX one; return the chunk sizes seen."""
    chunk_sizes: list[int] = []

    def noop(*cols: pa.Array) -> pa.Array:
        chunk_sizes.append(len(cols[0]))
        return pa.array(np.zeros(len(cols[0])))

    def minimal(*cols: pa.Array) -> pa.Array:
        x = np.column_stack([c.to_numpy(zero_copy_only=False) for c in cols])
        return pa.array(sess.run(["probabilities"], {"input": x})[0][:, 1].astype(np.float64))

    for name, fn in (("bench_noop", noop), ("bench_minimal", minimal)):
        with contextlib.suppress(Exception):
            con.remove_function(name)
        con.create_function(
            name, fn, None, "DOUBLE", type="arrow", null_handling="special", side_effects=False
        )
    con.execute(f"SELECT sum(bench_noop({', '.join(COLS)})) FROM t").fetchall()
    return chunk_sizes


def profile(con: Any, models: Models, reps: int, out_path: Path) -> dict[str, Any]:
    """Where a single-threaded byom query spends its time: a ladder of queries, each adding one
    layer (scan; no-op Arrow UDF; minimal ONNX UDF; byom), onnxruntime alone on DuckDB's chunk
    size and on the whole array; then a cProfile of the byom query."""
    set_threads(con, 1)
    sess = ort_session(models.onnx, 1)
    sizes = _udfs(con, sess)
    chunk, args, X = max(sizes, default=2048), ", ".join(COLS), models.X
    slices = f"onnxruntime, {chunk}-row slices"
    steps = {
        "DuckDB scan: sum(f0+...+f19)": sql(con, f"SELECT sum({' + '.join(COLS)}) FROM t"),
        "no-op Arrow UDF (20 args)": sql(con, f"SELECT sum(bench_noop({args})) FROM t"),
        "minimal ONNX UDF (stack + ort)": sql(con, f"SELECT sum(bench_minimal({args})) FROM t"),
        BYOM_POS: sql(con, query_positional("m", "t")),
        slices: lambda: sum(ort_sum(sess, X[i : i + chunk]) for i in range(0, len(X), chunk)),
        "onnxruntime, whole array": lambda: ort_sum(sess, X),
    }
    title = (
        f"Single-thread cost ladder, {len(X):,} rows, DuckDB chunk = {chunk} rows "
        f"({len(set(sizes))} distinct sizes), median of {reps} interleaved reps"
    )
    med, lines = h.ladder(steps, reps, CPU, len(X), title, 36)
    c = [v[1] for v in med.values()]  # scan, noop, minimal, byom, slices, whole
    split = {
        "duckdb_scan": c[0],
        "duckdb_arrow_udf_call": c[1] - c[0],
        "minimal_adapter_stack_and_glue": c[2] - c[1] - c[4],
        "byom_python_beyond_minimal": c[3] - c[2],
        "onnxruntime_chunked": c[4],
        "onnxruntime_chunking_penalty": c[4] - c[5],
    }
    lines += h.split_lines(split, c[3])
    prof, total, ort = h.cprofile(sql(con, query_positional("m", "t")))
    print("\n" + "\n".join(lines) + f"\n(full cProfile in {out_path})")
    lines += [
        "",
        f"cProfile of the byom query (1 thread; profiler overhead inflates Python-side "
        f"calls): {total:.3f} s profiled, of which onnxruntime run {ort:.3f} s",
        prof,
    ]
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(lines))
    set_threads(con, None)
    return {
        "chunk_rows": chunk,
        "median_wall_cpu_s": med,
        "cpu_split_s": split,
        "cprofile_total_s": total,
        "cprofile_onnxruntime_s": ort,
    }


# ------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    p = h.parser(__doc__)
    p.add_argument("--pmml-rows", type=int, default=20_000, help="rows scored through PMML")
    p.add_argument("--no-pmml", action="store_true", help="skip the PMML export and contender")
    p.add_argument("--profile", action="store_true", help="break down a 1-thread byom query")
    p.add_argument("--profile-reps", type=int, default=3)
    args = p.parse_args(argv)
    models = build_models(args.rows, args.train_rows, not args.no_pmml)
    pmml_rows = min(args.pmml_rows, args.rows)
    print(f"Loading {args.rows:,} rows into DuckDB ...", flush=True)
    con = setup_duckdb(models, pmml_rows)
    groups = make_groups(con, models, pmml_rows)
    byom_threads = os.environ.get("BYOM_ONNX_THREADS", "1 (default)")
    print(f"Timing {args.rounds} rounds (byom ONNX threads per session: {byom_threads}) ...")
    log = h.run_rounds(groups, args.rounds, CPU, args.wait_quiet)
    set_threads(con, None)
    checked = checks(groups, models, pmml_rows)
    out = h.Outcome("duckdb", groups, log, ORT_PROBA, CPU, targets(groups), checked)
    title = f"byom in DuckDB vs onnxruntime: 100-tree LightGBM, {args.rows:,} rows x 20 floats"
    result = h.finish(args, out, title, COLORS, log_scale=True, model=MODEL, features=N_FEATURES)
    result |= {
        "pmml_rows": pmml_rows if models.pmml is not None else 0,
        "onnxruntime_intra_op_threads": {"single": 1, "machine": h.CPUS},
        "versions": h.versions("duckdb", "sklearn2pmml"),
    }
    if args.profile:
        result["profile"] = profile(con, models, args.profile_reps, args.out / "duckdb_profile.txt")
    h.write_json(args.out / "duckdb_throughput.json", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
