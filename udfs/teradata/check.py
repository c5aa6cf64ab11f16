"""The queries `byom teradata check` prints: run byom_check.py where byom_score.py will run.

A database Python without pyarrow or onnxruntime fails every AMP of a scoring query; this
query names each missing package and its fix before that. The layout is teradataml's Script /
Apply query generators' (a test compares them).
"""

from __future__ import annotations

from udfs.teradata.byom_check import COLUMNS
from udfs.teradata.sql import apply_call, script_call, script_command, search_path

CHECK_FILE = "byom_check.py"
RETURNS = ", ".join(f"{name} {type_}" for name, type_ in COLUMNS)


def script_check_query(database: str) -> str:
    """SET SESSION SEARCHUIFDBPATH and a SCRIPT call with no ON clause, so the script runs on
    every AMP (each node's tdpython3 is its own install): one row per package per AMP."""
    command = script_command(f"./{database}/{CHECK_FILE}", [])
    return search_path(database) + "\n" + script_call(["\t"], command, RETURNS)


def apply_check_query(environment: str) -> str:
    """An APPLY call in the user environment, on one constant row (APPLY needs an input)."""
    command = script_command(CHECK_FILE, ["--operator", "apply"], "python3", prefix="")
    on = ['\tON (SELECT 1 AS x) AS "input"', "\tPARTITION BY ANY", "\t"]
    return apply_call(on, command, RETURNS, environment)
