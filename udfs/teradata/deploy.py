"""Ship byom to Teradata: the SCRIPT entry point, the core as one zip, and model files.

The database's Python (`tdpython3`) imports the core from `byom_core.zip`, installed beside
`byom_score.py`, so the numbers are the core's and nothing is copied by hand. byom_check.py
says which of the packages that Python needs are missing (`byom teradata check`). Models go
into the model table with parameterized INSERTs (`--upload-to`) or in as files.
"""

from __future__ import annotations

import base64
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import byom
from byom.errors import ByomError, ModelExistsError
from byom.formats import detect_format, sha256_hex
from udfs.teradata.check import CHECK_FILE
from udfs.teradata.sql import CORE_FILE, SCRIPT_FILE, install_statements, model_file_name

_ROOT = Path(byom.__file__).resolve().parent.parent
#: What the database needs of this repository: the core and the script's own module.
_BUNDLED = ("byom", "udfs/__init__.py", "udfs/teradata/__init__.py", "udfs/teradata/script.py")


def build_bundle(out_dir: Path) -> list[Path]:
    """Write byom_score.py, byom_check.py (`byom teradata check`) and byom_core.zip (sources
    only, so any Python 3.10+ imports it)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    zip_path = out_dir / CORE_FILE
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for entry in _BUNDLED:
            path = _ROOT / entry
            files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
            for file in files:
                zf.write(file, file.relative_to(_ROOT).as_posix())
    script, check = out_dir / SCRIPT_FILE, out_dir / CHECK_FILE
    for path in (script, check):
        path.write_bytes((_ROOT / "udfs" / "teradata" / path.name).read_bytes())
    return [script, zip_path, check]


@dataclass(frozen=True)
class Deployment:
    files: list[tuple[str, str, bool]]  # (file id, local path, binary)
    statements: list[str]


def plan(
    database: str, out_dir: Path, models: Mapping[str, bytes], replace: bool = False
) -> Deployment:
    """Write every file to install into `out_dir` and the SQL that installs them."""
    script, core, check = build_bundle(out_dir)
    files = [("byom_score", str(script), False), ("byom_core", str(core), True)]
    files.append(("byom_check", str(check), False))
    files += [(path.name, str(path), True) for path in write_models(out_dir, models)]
    return Deployment(files, install_statements(database, files, replace))


def write_models(out_dir: Path, models: Mapping[str, bytes]) -> list[Path]:
    """Each model as a file named by its content (a replaced model gets a new name)."""
    paths = []
    for blob in models.values():
        path = out_dir / model_file_name(sha256_hex(blob))
        path.write_bytes(blob)
        paths.append(path)
    return paths


def run(deployment: Deployment) -> None:
    """Execute the statements on the connection teradataml's create_context opened."""
    from teradataml import execute_sql

    for statement in deployment.statements:
        execute_sql(statement)


#: byom's Teradata model table, as sql/teradata/create_models_table.sql creates it (a test
#: parses both). model_id and model are the columns Teradata BYOM's PMMLPredict / ONNXPredict
#: read; model_b64 is what inline delivery puts on each partition's first row.
MODEL_TABLE_COLUMNS = (
    ("model_id", "VARCHAR(128) CHARACTER SET LATIN NOT NULL"),
    ("model", "BLOB(2097088000)"),
    ("model_b64", "CLOB(2097088000) CHARACTER SET LATIN"),
    ("sha256", "CHAR(64) CHARACTER SET LATIN"),
    ("format", "VARCHAR(16) CHARACTER SET LATIN"),
    ("created_at", "TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6)"),
)
#: The columns an upload writes: every one without a DEFAULT.
UPLOADED = tuple(name for name, type_ in MODEL_TABLE_COLUMNS if "DEFAULT" not in type_)
MODEL_ID_MAX = 128
#: teradatasqlalchemy's has_table query (teradataml's table check), with `?` markers.
TABLE_EXISTS = (
    'SELECT dbc."tablesV"."TableName" FROM dbc."tablesV" WHERE DatabaseName (NOT CASESPECIFIC) '
    "= ? (NOT CASESPECIFIC) AND TableName=? AND TableKind IN ('O', 'Q', 'T')"
)
_NAME = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$#]*)'


def create_table_sql(table: str) -> str:
    """The model table's DDL, for a table of any name."""
    cols = ",\n".join(f"    {name:<11} {type_}" for name, type_ in MODEL_TABLE_COLUMNS)
    return f"CREATE TABLE {table} (\n{cols}\n) UNIQUE PRIMARY INDEX (model_id)"


def split_table(table: str) -> tuple[str | None, str]:
    """(database or None, table) of `table` or `db.table`, quotes removed (the dictionary holds
    names unquoted)."""
    match = re.fullmatch(rf"(?:({_NAME})\.)?({_NAME})", table.strip())
    if match is None:
        raise ByomError(
            f"--upload-to {table!r} is not a table name: give `table` or `database.table`"
        )

    def bare(name: str) -> str:
        return name[1:-1].replace('""', '"') if name.startswith('"') else name

    return (bare(match.group(1)) if match.group(1) else None), bare(match.group(2))


def upload_rows(models: Mapping[str, bytes]) -> list[list[object]]:
    """One row per model in UPLOADED's order: bytes bind as BLOB, base64 text as CLOB."""
    rows: list[list[object]] = []
    for model_id, blob in models.items():
        if len(model_id) > MODEL_ID_MAX or not model_id.isascii():
            raise ByomError(
                f"model id {model_id!r} does not fit the Teradata model table's model_id: "
                f"save the model under an ASCII id of at most {MODEL_ID_MAX} characters"
            )
        b64 = base64.b64encode(blob).decode("ascii")
        rows.append([model_id, blob, b64, sha256_hex(blob), detect_format(blob, model_id).name])
    return rows


def insert_sql(table: str) -> str:
    """One model's row, spelled as teradataml's save_byom spells its INSERT."""
    marks = ", ".join("?" * len(UPLOADED))
    return f"insert into {table} ({', '.join(UPLOADED)}) values ({marks})"


def delete_sql(table: str) -> str:
    """One model's row, spelled as teradataml's delete_byom spells its DELETE."""
    return f"delete from {table} where model_id = (?)"


def describe_upload(models: Mapping[str, bytes], table: str, replace: bool) -> list[str]:
    """What upload_models does, as SQL comments: its statements bind values, so they are not
    a script to paste."""
    steps = [delete_sql(table), insert_sql(table)] if replace else [insert_sql(table)]
    lines = [
        f"-- upload to {table} (created as sql/teradata/create_models_table.sql when missing), "
        "in one transaction, per model:",
        *(f"--   {step}" for step in steps),
    ]
    for model_id, blob in models.items():
        lines.append(f"--   {model_id}: {len(blob)} bytes, sha256 {sha256_hex(blob)}")
    return lines


def _driver_connection() -> Any:
    """The teradatasql connection under teradataml's context: the one its execute_sql uses."""
    from teradataml import get_connection

    return get_connection().connection.driver_connection


def upload_models(
    models: Mapping[str, bytes],
    models_table: str,
    replace: bool = False,
    connection: Any = None,
) -> None:
    """Write models into byom's Teradata model table (created when missing) in one
    transaction, with parameterized INSERTs; `replace` deletes each id's row first, since the
    table's UNIQUE PRIMARY INDEX refuses a second row for an id. `connection` is a DB-API
    connection (default: teradataml's)."""
    rows = upload_rows(models)
    con = connection if connection is not None else _driver_connection()
    cur = con.cursor()
    database, name = split_table(models_table)
    if database is None:
        cur.execute("select database")
        database = str(cur.fetchone()[0]).strip()
    cur.execute(TABLE_EXISTS, [database, name])
    if cur.fetchone() is None:
        cur.execute(create_table_sql(models_table))  # DDL: a transaction of its own
    elif not replace:
        _refuse_taken_ids(cur, models_table, list(models))
    was_auto = con.autocommit
    con.autocommit = False
    try:
        for row in rows:
            if replace:
                cur.execute(delete_sql(models_table), [row[0]])
            cur.execute(insert_sql(models_table), row)
        con.commit()
    except BaseException:
        con.rollback()
        raise
    finally:
        con.autocommit = was_auto


def _refuse_taken_ids(cur: Any, table: str, ids: list[str]) -> None:
    marks = ", ".join("?" * len(ids))
    cur.execute(f"select model_id from {table} where model_id in ({marks})", ids)
    taken = sorted(str(r[0]).strip() for r in cur.fetchall())
    if taken:
        raise ModelExistsError(
            f"model id(s) {', '.join(taken)} are already in {table}: pass --replace to replace them"
        )
