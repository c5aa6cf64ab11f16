"""The benchmarks' shared model and data: a 100-tree LightGBM binary classifier on 20 float
features, exported to ONNX (onnxmltools, ``zipmap=False``) and optionally to PMML
(sklearn2pmml), and the rows to score, drawn with the training rows but never trained on."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

N_FEATURES = 20
COLS = [f"f{i}" for i in range(N_FEATURES)]
SEED = 0
MODEL = "LGBMClassifier(n_estimators=100), binary, onnxmltools zipmap=False"
#: C1-only JIT and serial GC make the one-shot sklearn2pmml converter JVM about twice as fast.
JAVA_OPTS = ["-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]


@dataclass
class Models:
    onnx: bytes
    pmml: bytes | None
    X: np.ndarray  # (rows, 20) float32, C-contiguous: the benchmark data, never trained on
    booster: Any = None  # the trained lightgbm.Booster (feature names f0..f19)

    @property
    def lgb_text(self) -> bytes:
        """The model as LightGBM text (``booster.model_to_string()``), as byom reads it."""
        return self.booster.model_to_string().encode()


def build_models(rows: int, train_rows: int, with_pmml: bool) -> Models:
    """Train on ``train_rows`` rows of one ``make_classification`` draw; score the next rows."""
    import pandas as pd
    from lightgbm import LGBMClassifier
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType
    from sklearn.datasets import make_classification

    print(
        f"Training 100-tree LightGBM on {train_rows:,} rows; exporting ONNX"
        + (" and PMML" if with_pmml else "")
        + " ...",
        flush=True,
    )
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
    pmml = _fit_with_pmml(clf, X_train, y_train) if with_pmml else None
    if pmml is None:
        clf.fit(X_train, y_train)
    onx = convert_lightgbm(
        clf, initial_types=[("input", FloatTensorType([None, N_FEATURES]))], zipmap=False
    )
    return Models(onx.SerializeToString(), pmml, X, clf.booster_)


def _fit_with_pmml(clf: Any, X_train: Any, y_train: Any) -> bytes:
    """Fit clf inside a PMMLPipeline (inputs named f0..f19) and export it with sklearn2pmml."""
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
        return Path(path).read_bytes()


def ort_session(onnx: bytes, threads: int) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # the all-outputs call warns about the label's declared shape
    return ort.InferenceSession(onnx, opts, providers=["CPUExecutionProvider"])


def ort_proba(sess: Any, X: np.ndarray, all_outputs: bool = False) -> np.ndarray:
    """P(class 1) per row: ``sess.run(["probabilities"], ...)``, or ``sess.run(None, ...)``
    (the label and the probabilities) with all_outputs."""
    out = sess.run(None if all_outputs else ["probabilities"], {"input": X})
    return out[-1][:, 1]


def ort_sum(sess: Any, X: np.ndarray, all_outputs: bool = False) -> float:
    """Sum of P(class 1), as the SQL contenders compute it."""
    return float(ort_proba(sess, X, all_outputs).sum(dtype=np.float64))


def arrow_table(X: np.ndarray) -> pa.Table:
    """The rows as an Arrow table of 20 float32 columns f0..f19."""
    return pa.table({c: X[:, i] for i, c in enumerate(COLS)})
