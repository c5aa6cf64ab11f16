"""byom: bring your own model, score it where the data lives.

The core is engine-free: importing byom never imports DuckDB or Spark. Engine adapters live in
the `udfs` package, one sub-package per engine.
"""

from __future__ import annotations

from byom.errors import ByomError
from byom.formats import ModelFormat, detect_format
from byom.inputs import InputMap, parse_input_map
from byom.outputs import OutputKind
from byom.scorers import Prediction, Scorer, load_scorer
from byom.scoring import BoundModel, InMemoryModels, ModelSource, StoredModel, score_batch
from byom.store import ModelRecord, prepare_model

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # sqlglot is needed only to rewrite SQL, not to score: a database's own Python (Teradata's
    # tdpython3) can run the core without it.
    if name == "expand_star_arguments":
        from byom.sql_rewrite import expand_star_arguments

        return expand_star_arguments
    raise AttributeError(f"module 'byom' has no attribute {name!r}")


__all__ = [
    "BoundModel",
    "ByomError",
    "InMemoryModels",
    "InputMap",
    "ModelFormat",
    "ModelRecord",
    "ModelSource",
    "OutputKind",
    "Prediction",
    "Scorer",
    "StoredModel",
    "detect_format",
    "expand_star_arguments",
    "load_scorer",
    "parse_input_map",
    "prepare_model",
    "score_batch",
]
