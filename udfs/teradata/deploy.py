"""Ship byom to Teradata: the SCRIPT entry point, the core as one zip, and model files.

The database's Python (`tdpython3`) imports the core from `byom_core.zip`, installed beside
`byom_score.py`, so the numbers are the core's and nothing is copied by hand. That Python needs
numpy, pyarrow, onnx and onnxruntime (and pypmml with a Java runtime for PMML models).
"""

from __future__ import annotations

import base64
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import byom
from byom.formats import sha256_hex
from udfs.teradata.sql import CORE_FILE, SCRIPT_FILE, install_statements, model_file_name

_ROOT = Path(byom.__file__).resolve().parent.parent
#: What the database needs of this repository: the core and the script's own module.
_BUNDLED = ("byom", "udfs/__init__.py", "udfs/teradata/__init__.py", "udfs/teradata/script.py")


def build_bundle(out_dir: Path) -> list[Path]:
    """Write byom_score.py and byom_core.zip (sources only, so any Python 3.10+ imports it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    zip_path = out_dir / CORE_FILE
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry in _BUNDLED:
            path = _ROOT / entry
            files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
            for file in files:
                zf.write(file, file.relative_to(_ROOT).as_posix())
    script = out_dir / SCRIPT_FILE
    script.write_bytes((_ROOT / "udfs" / "teradata" / SCRIPT_FILE).read_bytes())
    return [script, zip_path]


@dataclass(frozen=True)
class Deployment:
    files: list[tuple[str, str, bool]]  # (file id, local path, binary)
    statements: list[str]


def plan(
    database: str, out_dir: Path, models: Mapping[str, bytes], replace: bool = False
) -> Deployment:
    """Write every file to install into `out_dir` and the SQL that installs them."""
    script, core = build_bundle(out_dir)
    files = [("byom_score", str(script), False), ("byom_core", str(core), True)]
    for blob in models.values():
        name = model_file_name(sha256_hex(blob))
        path = out_dir / name
        path.write_bytes(blob)
        files.append((name, str(path), True))
    return Deployment(files, install_statements(database, files, replace))


def run(deployment: Deployment) -> None:
    """Execute the statements on the connection teradataml's create_context opened."""
    from teradataml import execute_sql

    for statement in deployment.statements:
        execute_sql(statement)


def upload_models(models: Mapping[str, bytes], models_table: str) -> None:
    """Append models to a Teradata model table with their base64 text (inline delivery),
    on the connection teradataml's create_context opened."""
    import pandas as pd
    from teradataml import copy_to_sql

    rows = pd.DataFrame(
        {
            "model_id": list(models),
            "model": list(models.values()),
            "model_b64": [base64.b64encode(b).decode("ascii") for b in models.values()],
            "sha256": [sha256_hex(b) for b in models.values()],
        }
    )
    copy_to_sql(rows, table_name=models_table, if_exists="append")
