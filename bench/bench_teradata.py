"""Throughput of byom's Teradata SCRIPT entry point over a pipe, against onnxruntime.

    python bench/bench_teradata.py [--rows N] [--rounds K]

The shared 100-tree LightGBM classifier (workload.py, ONNX). The rows are written once as the
tab-separated text Teradata sends a SCRIPT instance (an id and 20 FLOAT columns, NULL as an
empty field); then, interleaved and repeated:

* byom: one `byom_score.py` process, stdin from that text, stdout read back through a pipe
  (the id and the score per row), wall-clock from process start to exit: what one AMP's script
  instance costs, start-up and model load included;
* onnxruntime: `sess.run` on the same float32 array in this process, one intra-op thread
  (a script instance runs one thread; Teradata runs one instance per AMP).

CPU time is the process tree's (the script runs as a child). Medians and the ratio of medians
go to stdout and bench/results/teradata_throughput.{json,png}. Target: byom at least 0.5 of
onnxruntime. Every output row is checked: ids in order, scores equal to onnxruntime's.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import harness as h
import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
from workload import COLS, MODEL, arrow_table, build_models, ort_proba, ort_session

SCRIPT = h.ROOT / "udfs" / "teradata" / "byom_score.py"
BYOM = "byom_score.py (start-up included)"
ORT = "onnxruntime, 1 thread, in process"
COLORS = {BYOM: "#1f77b4", ORT: "#d62728"}
CPU = "tree"
TARGET = 0.5


def write_input(X: np.ndarray, path: Path) -> None:
    table = arrow_table(X).add_column(0, "id", pa.array(np.arange(len(X))))
    options = pacsv.WriteOptions(include_header=False, delimiter="\t", quoting_style="none")
    pacsv.write_csv(table, path, write_options=options)


def run_script(data: Path, model: Path, inputs: str = ",".join(COLS)) -> bytes:
    """One script instance over a pipe; its stdout (id and score per row). inputs: the input
    map (the default feeds the ONNX model's one tensor; a model of named inputs takes
    ``f0=f0;f1=f1;...``)."""
    columns = ",".join(["id:BIGINT"] + [f"{c}:FLOAT" for c in COLS])
    cmd = [sys.executable, str(SCRIPT), "--columns", columns, "--model-id", "m"]
    cmd += ["--model-file", f"m={model}", "--accumulate", "id", "--outputs", "score"]
    cmd += ["--inputs", inputs]
    with data.open("rb") as stdin:
        done = subprocess.run(cmd, stdin=stdin, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.decode())
    return done.stdout


def check(out: bytes, ref: np.ndarray) -> dict[str, dict[str, float]]:
    """Every output row: ids in order, the scores equal to onnxruntime's."""
    got = pacsv.read_csv(
        pa.py_buffer(out),
        read_options=pacsv.ReadOptions(column_names=["id", "score"]),
        parse_options=pacsv.ParseOptions(delimiter="\t"),
    )
    ids_ok = got["id"].to_pylist() == list(range(len(ref)))
    worst = float(np.max(np.abs(got["score"].to_numpy() - ref))) if ids_ok else float("inf")
    return {"byom_score.py rows, ids and scores": {"max_abs_diff": worst, "tol": 1e-6}}


def main(argv: list[str] | None = None) -> int:
    args = h.parser(__doc__).parse_args(argv)
    models = build_models(args.rows, args.train_rows, with_pmml=False)
    sess = ort_session(models.onnx, threads=1)
    n = len(models.X)
    with tempfile.TemporaryDirectory(prefix="byom_td_bench_") as tmp:
        data, model = Path(tmp) / "amp0.tsv", Path(tmp) / "model.onnx"
        model.write_bytes(models.onnx)
        write_input(models.X, data)
        size = data.stat().st_size
        print(f"{n:,} rows x 20 FLOAT: {size / 1e6:.0f} MB of text", flush=True)
        contenders = {
            BYOM: (n, lambda: run_script(data, model)),
            ORT: (n, lambda: ort_proba(sess, models.X)),
        }
        group = h.Group("amp", "one SCRIPT instance", contenders)
        log = h.run_rounds([group], args.rounds, CPU, args.wait_quiet)
    s = group.series
    targets = [h.target(s, BYOM, ORT, "byom / onnxruntime", TARGET)]
    checks = check(s[BYOM].value, s[ORT].value)
    out = h.Outcome("teradata", [group], log, ORT, CPU, targets, checks)
    title = f"Teradata SCRIPT, one instance over a pipe: {n:,} rows ({size / 1e6:.0f} MB of text)"
    result = h.finish(args, out, title, COLORS, model=MODEL, input_bytes=size, target=TARGET)
    h.write_json(args.out / "teradata_throughput.json", result | {"versions": h.versions()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
