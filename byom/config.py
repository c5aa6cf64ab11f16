"""Limits and defaults, overridable by environment variables so a DBA can tune them per engine."""

from __future__ import annotations

import os


def int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from None


#: Largest model blob byom will store or load. Model files are untrusted input.
MAX_MODEL_BYTES = int_env("BYOM_MAX_MODEL_BYTES", 512 * 1024**2)

#: Memory the loaded models cached in one process may take (each model's estimate: its bytes
#: plus what its runtime holds, `Scorer.memory_bytes`). Also the most one statement's models
#: may need together: a statement over more fails, naming what it needs (`StatementModels`).
CACHE_BYTES = int_env("BYOM_CACHE_BYTES", 2 * 1024**3)

#: Most models cached in one process, whatever their size; 0 (the default): no count bound,
#: only CACHE_BYTES, so many small models fit as well as a few large ones.
CACHE_ENTRIES = int_env("BYOM_CACHE_ENTRIES", 0)

#: onnxruntime intra-op threads per session. Engines run batches on several threads already,
#: so one thread per session avoids oversubscribing the machine.
ONNX_THREADS = int_env("BYOM_ONNX_THREADS", 1)

#: What scores a PMML document that uses an element byom's native evaluator does not support:
#: "none" (refuse the model, naming the element and its line) or "pypmml" (the JVM evaluator,
#: which needs Java and evaluates row by row).
PMML_FALLBACK = os.environ.get("BYOM_PMML_FALLBACK", "none").strip().lower() or "none"
