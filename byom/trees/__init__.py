"""Tree ensembles: one representation (`TreeEnsemble`) that LightGBM, XGBoost, ONNX tree
ensembles and PMML forests lower to, and the evaluators that score it on whole columns.

`ensemble.py` defines the representation and checks it (hostile files are refused by name in
bounded time); `evaluate.py` is the vectorized numpy path, the reference every faster kernel
must equal bit for bit.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import numpy as np

from byom.trees.ensemble import Node, TreeEnsemble, TreeEnsembleError


def kernel_margins(ensemble: TreeEnsemble, columns: Sequence[np.ndarray]) -> np.ndarray:
    """The margins from the compiled kernel when llvmlite is there, else from numpy (the same
    numbers either way)."""
    try:  # the kernel needs llvmlite, which a database's locked-down Python may lack
        kernel = importlib.import_module("byom.trees.kernel")
    except ImportError:
        kernel = None
    if kernel is not None and kernel.available():
        result: np.ndarray = kernel.margins(ensemble, columns)
        return result
    from byom.trees.evaluate import margins

    return margins(ensemble, columns)


def kernel_compiles(ensemble: TreeEnsemble) -> bool:
    """Whether the compiled kernel scores this ensemble here (llvmlite importable, the ensemble
    within the kernel's bound); formats whose own path beats numpy keep it otherwise."""
    from byom.trees.kernel import why_not

    return why_not(ensemble) is None


__all__ = ["Node", "TreeEnsemble", "TreeEnsembleError", "kernel_compiles", "kernel_margins"]
