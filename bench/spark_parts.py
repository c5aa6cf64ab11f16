"""bench_spark.py's Spark parts: the session and the cached table, byom's registration, and the
other contenders: MLflow's spark_udf over an onnxruntime PythonModel, and the lean (and no-op)
iterator ``arrow_udf``s that bound any Python UDF on Spark's path."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa  # module level: pyspark resolves the arrow_udf type hints against it
import pyarrow.parquet as pq
from harness import ROOT
from workload import COLS, Models, arrow_table

MASTER = "local[2]"
BATCH = "spark.sql.execution.arrow.maxRecordsPerBatch"
CONF = (BATCH, "spark.sql.execution.pythonUDF.arrow.enabled", "spark.python.worker.reuse")
CONF += ("spark.sql.inMemoryColumnarStorage.batchSize", "spark.default.parallelism")


@dataclass
class Setup:
    spark: Any
    df: Any  # the cached table t
    tmp: Path
    partition_rows: list[int]
    conf: dict[str, str]


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
        builder = builder.config(BATCH, str(arrow_batch))
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def setup_spark(models: Models, partitions: int, tmp: Path, arrow_batch: int | None) -> Setup:
    from pyspark.sql import functions as F

    spark = spark_session(arrow_batch)
    pq.write_table(arrow_table(models.X), tmp / "t.parquet")  # 20 FLOAT columns
    df = spark.read.parquet(str(tmp / "t.parquet")).repartition(partitions).cache()
    assert df.count() == len(models.X)
    df.createOrReplaceTempView("t")
    sizes = [r[1] for r in sorted(df.groupBy(F.spark_partition_id()).count().collect())]
    (tmp / "model.onnx").write_bytes(models.onnx)
    # The minimal model table, plus `inputs` (the columns that feed the model's one [N, 20]
    # tensor), which passing the row by name needs.
    model_table = {"model_id": ["m"], "model": [models.onnx], "inputs": [",".join(COLS)]}
    pq.write_table(pa.table(model_table), tmp / "models.parquet")
    conf = {}
    for key in CONF:
        with contextlib.suppress(Exception):
            conf[key] = spark.conf.get(key)
    return Setup(spark, df, tmp, sizes, conf)


def register_byom(st: Setup) -> str:
    """Register byom's functions; name the adapter measured by a hash over its sources."""
    import udfs.spark as mod
    from udfs.spark import register

    register(st.spark, models_table=str(st.tmp / "models.parquet"))
    folder = Path(str(mod.__file__)).parent
    digest = hashlib.sha256()
    for f in sorted(folder.glob("*.py")):
        digest.update(f.name.encode() + b"\0" + f.read_bytes())
    return f"{folder} sha256:{digest.hexdigest()[:16]}"


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
    """``mlflow.pyfunc.spark_udf`` over the wrapper saved without a signature (no schema to
    enforce: MLflow's fastest setup), and mlflow's version."""
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


def lean_udf(onnx: bytes | None) -> Any:
    """The least a Python UDF must do: stack the 20 columns, run onnxruntime, return column 1.
    One session per worker process (kept on the onnxruntime module across tasks). With onnx
    None, a no-op UDF that returns zeros: the JVM -> Arrow -> Python round trip alone."""
    from pyspark.sql import functions as F

    arrow_udf: Any = F.arrow_udf  # its overloads do not cover the iterator form with hints

    @arrow_udf("double")
    def lean(batches: Iterator[tuple[pa.Array, ...]]) -> Iterator[pa.Array]:
        if onnx is None:
            for cols in batches:
                yield pa.array(np.zeros(len(cols[0])))
            return
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
