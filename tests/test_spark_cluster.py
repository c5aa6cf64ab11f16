"""spark_jobs/score_table.py on a real standalone cluster: a master and two 1-core workers
started with spark-class (tests/spark_cluster.py), the job run with spark-submit.

A million rows are scored by executors on both workers, and every row's score is checked against
onnxruntime called directly on the same float32 features.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import FLOAT32, assert_close

pytest.importorskip("pyspark")

from spark_cluster import spark_submit, standalone_cluster

pytestmark = pytest.mark.slow

N_ROWS = 1_000_000
N_FILES = 4
ROW_GROUP = 50_000
FEATURES = [f"f{i}" for i in range(8)]
REGIONS = np.array(["north", "south", "east", "west", "centre"])
MODEL_ID = "churn_v3"
SUBMIT_TIMEOUT = 300


@pytest.fixture(scope="module")
def classifier():
    """A binary logistic regression on 8 float features, and its ONNX export (no ZipMap)."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    X = rng.normal(size=(4000, len(FEATURES))).astype(np.float32)
    weights = np.array([1.5, -2.0, 0.7, 0.0, 0.3, -0.9, 2.2, -0.4])
    y = (X @ weights + rng.normal(scale=1.0, size=len(X)) > 0.2).astype(int)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    onx = to_onnx(model, X[:1], options={"zipmap": False}).SerializeToString()
    return model, onx


@pytest.fixture(scope="module")
def model_table(spark, classifier, tmp_path_factory) -> str:
    """A Parquet model table written by SparkModelStore (the session's local Spark)."""
    from udfs.spark import SparkModelStore

    path = str(tmp_path_factory.mktemp("spark-models") / "byom_models")
    SparkModelStore(spark, path).add(MODEL_ID, classifier[1], inputs=",".join(FEATURES))
    return path


@pytest.fixture(scope="module")
def input_table(tmp_path_factory) -> tuple[Path, pa.Table]:
    """N_ROWS rows (unique shuffled int64 ids, float32 features, a region) in N_FILES files of
    several row groups each; also returned in memory."""
    rng = np.random.default_rng(2024)
    ids = rng.permutation(N_ROWS).astype(np.int64) * 3 + 10_000_000_000
    columns = {"id": pa.array(ids)}
    for i, name in enumerate(FEATURES):
        values = rng.normal(loc=0.1 * i, scale=1.0 + 0.25 * i, size=N_ROWS).astype(np.float32)
        columns[name] = pa.array(values)
    columns["region"] = pa.array(REGIONS[rng.integers(0, len(REGIONS), N_ROWS)])
    table = pa.table(columns)
    folder = tmp_path_factory.mktemp("spark-input") / "customers"
    folder.mkdir()
    per_file = N_ROWS // N_FILES
    for i in range(N_FILES):
        part = table.slice(i * per_file, per_file if i < N_FILES - 1 else None)
        pq.write_table(part, folder / f"part-{i:03d}.parquet", row_group_size=ROW_GROUP)
    return folder, table


@pytest.fixture(scope="module")
def cluster(model_table, input_table, tmp_path_factory):
    """The standalone cluster, started once for the module (after the data is written, so the
    local Spark session is idle by then) and always stopped."""
    cluster_dir = tmp_path_factory.mktemp("spark-cluster")
    with standalone_cluster(cluster_dir, workers=2, cores_per_worker=1, memory="1g") as url:
        yield url, cluster_dir


def _report(result) -> str:
    stderr = "\n".join(result.stderr.splitlines()[-60:])
    return (
        f"spark-submit exited {result.returncode}\n--- stdout ---\n{result.stdout}"
        f"\n--- stderr (last 60 lines) ---\n{stderr}"
    )


def _reference_scores(onx: bytes, table: pa.Table) -> np.ndarray:
    """P(class 1) from onnxruntime itself, on the very float32 features written to Parquet."""
    import onnxruntime as ort

    session = ort.InferenceSession(onx, providers=["CPUExecutionProvider"])
    X = np.column_stack([table[name].to_numpy() for name in FEATURES]).astype(np.float32)
    assert X.dtype == np.float32
    names = [o.name for o in session.get_outputs()]
    results = session.run(None, {session.get_inputs()[0].name: X})
    outputs = dict(zip(names, results, strict=True))
    return outputs["probabilities"][:, 1].astype(np.float64)


def test_score_table_scores_a_million_rows_on_the_cluster(
    cluster, model_table, input_table, classifier, tmp_path
):
    master, cluster_dir = cluster
    folder, table = input_table
    output = tmp_path / "customers_scored"
    result = spark_submit(
        master,
        [
            "--models", model_table,
            "--input", str(folder),
            "--model-id", MODEL_ID,
            "--keep", "id,region",
            "--output", str(output),
        ],
        timeout=SUBMIT_TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 0, _report(result)
    assert re.search(r"^rows in:\s+1,000,000 from ", result.stdout, re.MULTILINE), _report(result)
    assert re.search(r"^rows out:\s+1,000,000 to ", result.stdout, re.MULTILINE), _report(result)

    # The executors ran on both workers (each worker's work dir holds the application's folder).
    for worker in ("worker-0", "worker-1"):
        assert list((cluster_dir / worker).glob("app-*/*/stderr")), f"no executor on {worker}"

    scored = pq.read_table(output)
    assert scored.column_names == ["id", "region", "score"]
    assert scored.schema.field("id").type == pa.int64()
    assert scored.schema.field("score").type == pa.float64()
    assert scored.num_rows == N_ROWS

    # Every input id exactly once: none missing, none duplicated.
    out_ids = scored["id"].to_numpy()
    in_ids = table["id"].to_numpy()
    order_out, order_in = np.argsort(out_ids), np.argsort(in_ids)
    assert np.array_equal(out_ids[order_out], in_ids[order_in])
    assert np.unique(out_ids).size == N_ROWS

    # Joined on id: the region passed through, and the score is onnxruntime's own.
    assert scored["score"].null_count == 0
    got = scored["score"].to_numpy()[order_out]
    expected = _reference_scores(classifier[1], table)[order_in]
    assert_close(got, expected, FLOAT32)
    regions_out = scored["region"].to_numpy(zero_copy_only=False)[order_out]
    regions_in = table["region"].to_numpy(zero_copy_only=False)[order_in]
    assert np.array_equal(regions_out, regions_in)

    # And onnxruntime agrees with scikit-learn (so the reference is the model, not a fluke).
    sample = np.column_stack([table[name].to_numpy()[order_in][:10_000] for name in FEATURES])
    native = classifier[0].predict_proba(sample.astype(np.float32))[:, 1]
    assert_close(expected[:10_000], native, FLOAT32)
    assert 0.05 < got.mean() < 0.95  # both classes are predicted: a meaningful model


def test_unknown_model_id_exits_2_with_a_suggestion(cluster, model_table, input_table, tmp_path):
    master, _ = cluster
    folder, _ = input_table
    output = tmp_path / "never_written"
    result = spark_submit(
        master,
        [
            "--models", model_table,
            "--input", str(folder),
            "--model-id", "churn_v4",
            "--keep", "id,region",
            "--output", str(output),
        ],
        timeout=SUBMIT_TIMEOUT,
    )  # fmt: skip
    assert result.returncode == 2, _report(result)
    # spark-submit runs the Python driver with its stderr merged into its stdout (PythonRunner's
    # redirectErrorStream), so the job's own message arrives on spark-submit's stdout; Spark's
    # logs are on stderr. Look in both.
    output_text = result.stdout + result.stderr
    assert "score_table.py: error: unknown model id 'churn_v4'" in output_text, _report(result)
    assert "did you mean 'churn_v3'?" in output_text, _report(result)
    assert "rows in:" not in result.stdout
    assert not output.exists()
