"""An H2O MOJO scored by byom in DuckDB against H2O's own scorers (issue 19): a 100-tree GBM
(bernoulli, depth 5) over 1M rows of three numeric and two categorical columns with NAs, or
with `--algorithm xgboost` H2O's XGBoost of the same shape (its MOJO holds an XGBoost booster).

    python bench/bench_mojo.py [--rows N] [--rounds K] [--trees T] [--algorithm gbm|xgboost]

Contenders, each scoring the same rows:

* byom, `SELECT sum(score('gbm', t)) FROM rows t` through `udfs.duckdb.sql`, at one DuckDB
  thread and at one per core (the model compiled and loaded before the rounds);
* h2o-genmodel's `PredictCsv` (`java -cp h2o-genmodel.jar hex.genmodel.tools.PredictCsv --mojo
  ... --input rows.csv --output out.csv --decimal`): its time minus the median time of the same
  command on a 1-row file (JVM start-up and MOJO load), so only the scoring counts;
* H2O's in-cluster predict, `model.predict(frame)` on a frame already in the cluster (started
  with one thread per core), the prediction frame removed after each round.

Every contender warms up once, then --rounds rounds, medians (wall clock). Checks: byom's sum
equals the sum of PredictCsv's P(class 1) and of H2O's predict (relative 1e-12; for XGBoost,
H2O's in-cluster predict runs native XGBoost, whose float32 `expf` differs from the Java
predictor's in the last bit, so 1e-6 there). Writes bench/results/mojo.json (mojo_xgboost.json).
Needs h2o==3.46.0.7 and Java.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import harness as h
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))
sys.path.insert(0, str(ROOT))

from make_mojo_fixtures import data, predict_csv, write_csv  # noqa: E402

FEATURES = ["x1", "x2", "x3", "c1", "c2"]


def timed(run, rounds: int) -> list[float]:
    run()  # warm-up
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        out.append(time.perf_counter() - started)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--trees", type=int, default=100)
    p.add_argument("--algorithm", choices=("gbm", "xgboost"), default="gbm")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    import duckdb
    import h2o
    import pyarrow as pa
    import pyarrow.csv as pcsv
    from h2o.estimators import H2OGradientBoostingEstimator, H2OXGBoostEstimator

    from byom.java import ensure_java
    from udfs.duckdb import register, sql

    java = ensure_java()
    cores = h.CPUS
    tmp = Path(tempfile.mkdtemp(prefix="byom_bench_mojo_"))
    h2o.init(nthreads=cores, max_mem_size="4G", verbose=False)
    try:
        train_cols = data(20_000)
        write_csv(train_cols, tmp / "train.csv")
        frame = h2o.import_file(str(tmp / "train.csv"))
        for c in ("c1", "c2", "y_binary"):
            frame[c] = frame[c].asfactor()
        estimator = {"gbm": H2OGradientBoostingEstimator, "xgboost": H2OXGBoostEstimator}
        model = estimator[args.algorithm](
            ntrees=args.trees, max_depth=5, learn_rate=0.1, seed=7, distribution="bernoulli"
        )
        model.train(x=FEATURES, y="y_binary", training_frame=frame)
        mojo = Path(model.download_mojo(str(tmp), get_genmodel_jar=True))
        jar = tmp / "h2o-genmodel.jar"
        rows = data(args.rows)
        write_csv({k: rows[k] for k in FEATURES}, tmp / "rows.csv")
        write_csv({k: rows[k][:1] for k in FEATURES}, tmp / "one.csv")
        kind = "GBM" if args.algorithm == "gbm" else "H2O XGBoost"
        print(
            f"{args.rows:,} rows, a {args.trees}-tree {kind} MOJO ({mojo.stat().st_size:,} bytes)"
        )

        con = duckdb.connect()
        register(con).add("gbm", mojo.read_bytes())
        types = {"c1": pa.string(), "c2": pa.string()}
        table = pcsv.read_csv(
            tmp / "rows.csv", convert_options=pcsv.ConvertOptions(column_types=types)
        )
        con.register("rows_arrow", table)
        con.execute("CREATE TABLE rows AS SELECT * FROM rows_arrow")
        results: dict[str, list[float]] = {}
        sums: dict[str, float] = {}
        for threads in sorted({1, cores}):
            con.execute(f"SET threads={threads}")
            query = "SELECT sum(score('gbm', t)) FROM rows t"

            def byom_run(q: str = query, key: str = f"byom DuckDB {threads} thr") -> None:
                sums[key] = float(sql(con, q).fetchall()[0][0])

            results[f"byom DuckDB {threads} thr"] = timed(byom_run, args.rounds)

        def scored_by_genmodel(source: Path) -> None:
            predict_csv(java, jar, mojo, source, tmp / "out.csv")

        startup = statistics.median(timed(lambda: scored_by_genmodel(tmp / "one.csv"), args.rounds))
        full = timed(lambda: scored_by_genmodel(tmp / "rows.csv"), args.rounds)
        results["PredictCsv (start-up subtracted)"] = [t - startup for t in full]
        out = pcsv.read_csv(tmp / "out.csv")
        sums["PredictCsv"] = float(np.sum(out.column(2).to_numpy()))

        scored = h2o.import_file(str(tmp / "rows.csv"), col_types={"c1": "enum", "c2": "enum"})

        def in_cluster() -> None:
            predicted = model.predict(scored)
            sums["H2O predict"] = float(predicted["yes"].sum())
            h2o.remove(predicted)

        results[f"H2O in-cluster predict ({cores} thr)"] = timed(in_cluster, args.rounds)
    finally:
        h2o.cluster().shutdown()

    medians = {k: statistics.median(v) for k, v in results.items()}
    print(
        f"\nMedian of {args.rounds} rounds (warm-up excluded); PredictCsv start-up "
        f"{startup:.2f} s subtracted"
    )
    for name, seconds in medians.items():
        print(f"  {name:<40} {seconds:8.3f} s  {args.rows / seconds:>12,.0f} rows/s")
    h2o_best = min(v for k, v in medians.items() if not k.startswith("byom"))
    lines = []
    for name, seconds in medians.items():
        if name.startswith("byom"):
            ratio = h2o_best / seconds
            verdict = "meets" if ratio >= 3 else "BELOW"
            lines.append(f"  {name}: {ratio:.2f}x the faster of H2O's two ({verdict} target 3)")
    print("\nTargets:\n" + "\n".join(lines))
    ref = sums["PredictCsv"]
    print("\nSanity (sums of P(yes)):")
    for name, value in sums.items():
        rel = abs(value - ref) / abs(ref)
        native = args.algorithm == "xgboost" and name == "H2O predict"
        print(
            f"  {name:<40} {value:.9f}  rel diff to PredictCsv {rel:.1e}  "
            f"{'ok' if rel <= (1e-6 if native else 1e-12) else 'MISMATCH'}"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    record = {
        "rows": args.rows,
        "trees": args.trees,
        "algorithm": args.algorithm,
        "rounds": args.rounds,
        "cores": cores,
        "seconds": results,
        "medians": medians,
        "predictcsv_startup_s": startup,
        "sums": sums,
        "targets": lines,
    }
    name = "mojo.json" if args.algorithm == "gbm" else f"mojo_{args.algorithm}.json"
    (args.out / name).write_text(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
