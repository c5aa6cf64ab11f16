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
    """The margins from the compiled kernel, or from numpy (the same numbers) with a one-line
    notice saying why where it cannot be compiled (no llvmlite in a database's locked-down
    Python, an ensemble over the kernel's bound)."""
    try:
        kernel = importlib.import_module("byom.trees.kernel")
    except ImportError:  # pragma: no cover - the module itself imports without llvmlite
        from byom.trees.evaluate import margins

        return margins(ensemble, columns)
    result: np.ndarray = kernel.margins(ensemble, columns)
    return result


def kernel_compiles(ensemble: TreeEnsemble) -> bool:
    """Whether the compiled kernel scores this ensemble here (llvmlite importable, the ensemble
    within the kernel's bound); formats whose own path beats numpy keep it otherwise."""
    from byom.trees.kernel import why_not

    return why_not(ensemble) is None


__all__ = ["Node", "TreeEnsemble", "TreeEnsembleError", "kernel_compiles", "kernel_margins"]
