"""bench_trees.py's models: the shared 100-tree x 31-leaf LightGBM classifier (workload.py), a
500-tree x 255-leaf LightGBM classifier on the same rows, and a 100-feature depth-8 XGBoost
classifier, each with its native text (what byom reads), its ONNX export (onnxmltools) and the
library's own one-thread predict."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from workload import N_FEATURES, SEED, Models

XGB_FEATURES = 100


@dataclass
class TreeModel:
    key: str  # short name: group keys and file names
    title: str
    native: bytes  # what byom reads: LightGBM text or XGBoost JSON
    onnx: bytes
    X: np.ndarray  # (rows, features) float32, C-contiguous, never trained on
    predict: Callable[[np.ndarray, int], np.ndarray]  # (float64 X, threads) -> raw margins
    native_name: str  # "LightGBM predict" / "XGBoost predict"
    lightgbm_text: bytes | None = None  # for lleaves (LightGBM models only)
    booster: Any = None

    @property
    def columns(self) -> list[np.ndarray]:
        """The float64 feature columns, as byom's core hands them to the kernel."""
        X = self.X.astype(np.float64)
        return [np.ascontiguousarray(X[:, j]) for j in range(X.shape[1])]


def _lgb_predict(booster: Any) -> Callable[[np.ndarray, int], np.ndarray]:
    return lambda X, t: booster.predict(X, raw_score=True, num_threads=t)


def lgb_small(models: Models) -> TreeModel:
    """The workload's 100-tree x 31-leaf model."""
    text = models.lgb_text
    return TreeModel(
        "lgb100",
        "LightGBM 100 trees x 31 leaves, 20 features",
        text,
        models.onnx,
        models.X,
        _lgb_predict(models.booster),
        "LightGBM predict",
        text,
        models.booster,
    )


def lgb_big(models: Models, train_rows: int) -> TreeModel:
    """500 trees of up to 255 leaves on the workload's features, scored on the workload's rows.
    Trained on train_rows rows of a second draw of the same size (min_child_samples=5 and a
    small learning rate, so that late trees still split down to 255 leaves)."""
    import lightgbm as lgb
    from sklearn.datasets import make_classification

    Xt, yt = make_classification(
        n_samples=train_rows,
        n_features=N_FEATURES,
        n_informative=10,
        n_redundant=4,
        random_state=SEED + 1,
    )
    params = {
        "objective": "binary",
        "num_leaves": 255,
        "min_child_samples": 5,
        "min_sum_hessian_in_leaf": 1e-9,
        "learning_rate": 0.05,
        "seed": SEED,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 2,
        "verbose": -1,
    }
    names = [f"f{i}" for i in range(N_FEATURES)]
    data = lgb.Dataset(Xt, yt, feature_name=names)
    booster = lgb.train(params, data, num_boost_round=500)
    text = booster.model_to_string().encode()
    return TreeModel(
        "lgb500",
        "LightGBM 500 trees x 255 leaves, 20 features",
        text,
        _onnx(booster, N_FEATURES, "lightgbm"),
        models.X,
        _lgb_predict(booster),
        "LightGBM predict",
        text,
        booster,
    )


def leaf_counts(booster: Any) -> tuple[int, float, int]:
    """Trees, mean leaves per tree, and the most leaves in one tree (LightGBM)."""
    trees = booster.dump_model()["tree_info"]
    leaves = [t["num_leaves"] for t in trees]
    return len(leaves), float(np.mean(leaves)), max(leaves)


def xgb_model(rows: int, train_rows: int) -> TreeModel:
    """100 trees of depth 8 on 100 features: a fresh make_classification draw of
    train_rows + rows rows, the first trained on, the rest scored."""
    import xgboost as xgb
    from sklearn.datasets import make_classification

    Xa, ya = make_classification(
        n_samples=train_rows + rows,
        n_features=XGB_FEATURES,
        n_informative=30,
        n_redundant=10,
        random_state=SEED,
    )
    X = np.ascontiguousarray(Xa[train_rows:], dtype=np.float32)
    names = [f"f{i}" for i in range(XGB_FEATURES)]
    dtrain = xgb.DMatrix(Xa[:train_rows], ya[:train_rows], feature_names=names)
    del Xa
    params = {
        "objective": "binary:logistic",
        "max_depth": 8,
        "eta": 0.1,
        "tree_method": "hist",
        "nthread": 2,
        "seed": SEED,
    }
    booster = xgb.train(params, dtrain, num_boost_round=100)
    booster.set_param({"nthread": 1})
    blob = bytes(booster.save_raw("json"))

    def predict(X64: np.ndarray, threads: int) -> np.ndarray:
        booster.set_param({"nthread": threads})
        return booster.inplace_predict(X64, predict_type="margin")

    return TreeModel(
        "xgb100",
        "XGBoost 100 trees x depth 8, 100 features",
        blob,
        _onnx(booster, XGB_FEATURES, "xgboost"),
        X,
        predict,
        "XGBoost predict",
        None,
        booster,
    )


def _onnx(booster: Any, n_features: int, kind: str) -> bytes:
    """The booster through onnxmltools, input "input" [N, n_features] float32, outputs label
    and probabilities (no ZipMap)."""
    from onnxmltools import convert_lightgbm, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    types = [("input", FloatTensorType([None, n_features]))]
    if kind == "lightgbm":
        onx = convert_lightgbm(booster, initial_types=types, zipmap=False)
    else:
        onx = convert_xgboost(booster, initial_types=types)
    return onx.SerializeToString()


def ensemble_of(blob: bytes, model_id: str) -> Any:
    """The tree ensemble byom builds from the blob, through its format registry."""
    from byom.formats import detect_format

    return detect_format(blob, model_id).load(blob, model_id).ensemble


#: lleaves' own virtualenv (git-ignored): lleaves 1.3 needs llvmlite's PassManagerBuilder,
#: gone after llvmlite 0.44, while byom's kernel runs on a current llvmlite.
LLEAVES_VENV = Path(__file__).resolve().parent / ".lleaves-venv"
LLEAVES_PINS = ["lleaves", "llvmlite<0.45", "numpy"]
WORKER = Path(__file__).resolve().parent / "lleaves_worker.py"


def lleaves_python() -> tuple[Path | None, str]:
    """The venv's python (created and filled on first use) and lleaves' version, or None and
    why it could not be made."""
    python = LLEAVES_VENV / "bin" / "python"
    probe = [str(python), "-c", "import importlib.metadata as m; print(m.version('lleaves'))"]
    try:
        if not python.exists():
            print(f"Creating {LLEAVES_VENV} (pip install {' '.join(LLEAVES_PINS)}) ...")
            subprocess.run([sys.executable, "-m", "venv", str(LLEAVES_VENV)], check=True)
        done = subprocess.run(probe, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pip = [str(python), "-m", "pip", "install", "-q", *LLEAVES_PINS]
            subprocess.run(pip, check=True, capture_output=True, text=True)
            done = subprocess.run(probe, capture_output=True, text=True, check=True)
        return python, done.stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or ""
        return None, f"{exc} {detail.strip()[-500:]}"


class Lleaves:
    """One lleaves worker process: the model text and the float64 rows saved to tmp, the model
    compiled (or loaded from its cache file), then one timed pass per ``run`` call."""

    def __init__(self, python: Path, text: bytes, X: np.ndarray, tmp: Path) -> None:
        digest = hashlib.sha256(text).hexdigest()[:16]
        model, data = tmp / f"lleaves_{digest}.txt", tmp / f"lleaves_{digest}.npy"
        model.write_bytes(text)
        np.save(data, np.ascontiguousarray(X, dtype=np.float64))
        cache = LLEAVES_VENV / "cache" / f"{digest}.o"
        cache.parent.mkdir(exist_ok=True)
        cmd = [str(python), str(WORKER), str(model), str(data), str(cache)]
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.compiled = self._reply()
        self.seconds: list[float] = []  # the worker's own time per pass

    def _reply(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the lleaves worker exited ({self.proc.wait()})")
        return dict(json.loads(line))

    def run(self) -> float:
        """One pass; the sum of lleaves' probabilities."""
        assert self.proc.stdin is not None
        self.proc.stdin.write("run\n")
        reply = self._reply()
        self.seconds.append(reply["s"])
        return float(reply["sum"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)
