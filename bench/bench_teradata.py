"""Throughput of byom's Teradata SCRIPT entry point over a pipe, against onnxruntime.

    python bench/bench_teradata.py [--rows N] [--rounds K]

The same 100-tree LightGBM classifier (20 float features, ONNX) as bench_duckdb.py. The rows
are written once as the tab-separated text Teradata sends a SCRIPT instance (an id and 20
FLOAT columns, NULL as an empty field); then, interleaved and repeated:

* byom: one `byom_score.py` process, stdin from that text, stdout read back through a pipe
  (the id and the score per row), wall-clock from process start to exit: what one AMP's script
  instance costs, start-up and model load included;
* onnxruntime: `sess.run` on the same float32 array in this process, one intra-op thread
  (a script instance runs one thread; Teradata runs one instance per AMP).

Medians and the ratio of medians go to stdout and bench/results/teradata_throughput.json.
Target: byom at least 0.5 of onnxruntime.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_duckdb import COLS, build_models, ort_session  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SCRIPT = ROOT / "udfs" / "teradata" / "byom_score.py"
TARGET = 0.5


def write_input(X: np.ndarray, path: Path) -> None:
    table = pa.table({"id": pa.array(np.arange(len(X)))} | {c: X[:, i] for i, c in enumerate(COLS)})
    pacsv.write_csv(
        table,
        path,
        write_options=pacsv.WriteOptions(
            include_header=False, delimiter="\t", quoting_style="none"
        ),
    )


def run_script(data: Path, model: Path) -> tuple[float, bytes]:
    columns = ",".join(["id:BIGINT"] + [f"{c}:FLOAT" for c in COLS])
    cmd = [sys.executable, str(SCRIPT), "--columns", columns, "--model-id", "m"]
    cmd += ["--model-file", f"m={model}", "--accumulate", "id", "--outputs", "score"]
    cmd += ["--inputs", ",".join(COLS)]
    start = time.perf_counter()
    with data.open("rb") as stdin:
        done = subprocess.run(cmd, stdin=stdin, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode())
    return elapsed, done.stdout


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)

    models = build_models(args.rows, 20_000, with_pmml=False)
    sess = ort_session(models.onnx, threads=1)
    times: dict[str, list[float]] = {"byom": [], "onnxruntime": []}
    with tempfile.TemporaryDirectory(prefix="byom_td_bench_") as tmp:
        data, model = Path(tmp) / "amp0.tsv", Path(tmp) / "model.onnx"
        model.write_bytes(models.onnx)
        write_input(models.X, data)
        size = data.stat().st_size
        out = b""
        for r in range(args.rounds):
            order = ["byom", "onnxruntime"] if r % 2 == 0 else ["onnxruntime", "byom"]
            for name in order:
                if name == "byom":
                    elapsed, out = run_script(data, model)
                else:
                    start = time.perf_counter()
                    ref = sess.run(["probabilities"], {"input": models.X})[0][:, 1]
                    elapsed = time.perf_counter() - start
                times[name].append(elapsed)
    got = pacsv.read_csv(
        pa.py_buffer(out),
        read_options=pacsv.ReadOptions(column_names=["id", "score"]),
        parse_options=pacsv.ParseOptions(delimiter="\t"),
    )
    assert got.num_rows == args.rows and got["id"].to_pylist() == list(range(args.rows))
    worst = float(np.max(np.abs(got["score"].to_numpy() - ref)))
    med = {k: statistics.median(v) for k, v in times.items()}
    rps = {k: args.rows / v for k, v in med.items()}
    ratio = rps["byom"] / rps["onnxruntime"]
    print(
        f"Teradata SCRIPT, one instance over a pipe: {args.rows:,} rows x 20 FLOAT "
        f"({size / 1e6:.0f} MB of text), medians of {args.rounds} interleaved rounds"
    )
    print(f"  {'byom_score.py (start-up included)':<40} {rps['byom']:>12,.0f} rows/s")
    print(f"  {'onnxruntime, 1 thread, in process':<40} {rps['onnxruntime']:>12,.0f} rows/s")
    verdict = "meets" if ratio >= TARGET else "misses"
    print(f"  ratio byom / onnxruntime: {ratio:.3f} ({verdict} the {TARGET} target)")
    print(f"  largest |score - onnxruntime|: {worst:.2e}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "teradata_throughput.json").write_text(
        json.dumps(
            {
                "rows": args.rows,
                "rounds": args.rounds,
                "input_bytes": size,
                "seconds": times,
                "rows_per_second": rps,
                "ratio": ratio,
                "target": TARGET,
                "max_abs_diff": worst,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
