"""The model table in DuckDB: create, add, list, show, remove, and fetch on a cache miss."""

from __future__ import annotations

import contextlib
import difflib
import threading
from collections.abc import Iterator
from typing import Any

from byom.errors import ModelTableError, UnknownModelError
from byom.formats import check_size, sha256_hex
from byom.scoring import StoredModel, version_key
from byom.store import MODEL_TABLE_COLUMNS, ModelRecord, ModelStore
from udfs.duckdb._engine import import_duckdb

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS {table} (
    model_id      VARCHAR PRIMARY KEY,
    model         BLOB NOT NULL,
    format        VARCHAR NOT NULL,
    sha256        VARCHAR NOT NULL,
    size_bytes    BIGINT NOT NULL,
    created_at    TIMESTAMP NOT NULL,
    description   VARCHAR,
    inputs        VARCHAR,
    input_schema  VARCHAR,
    output_schema VARCHAR
)
"""


def quote_ident(name: str) -> str:
    """Quote a possibly schema-qualified table name for SQL."""
    parts = name.split(".")
    return ".".join('"' + p.strip('"').replace('"', '""') + '"' for p in parts)


class DuckDBModelStore(ModelStore):
    """A model table on one DuckDB connection (the full layout, or just model_id and model)."""

    def __init__(self, con: Any, table: str = "byom_models") -> None:
        import_duckdb()
        self.con = con
        self.table = table
        self.sql_table = quote_ident(table)
        self._lock = threading.Lock()

    # -- schema -----------------------------------------------------------------------------
    def create(self) -> None:
        self.con.execute(CREATE_TABLE.format(table=self.sql_table))

    def columns(self) -> set[str]:
        try:
            rows = self._read(f"DESCRIBE {self.sql_table}")
        except Exception:
            return set()
        return {str(r[0]).lower() for r in rows}

    def _read(self, query: str, params: list[object] | None = None) -> list[Any]:
        """Run a read on its own cursor: safe from inside a running query and from any thread."""
        with self._lock:
            cur = self.con.cursor()
            try:
                return cur.execute(query, params or []).fetchall()
            finally:
                cur.close()

    def is_full_layout(self) -> bool:
        return set(MODEL_TABLE_COLUMNS) <= self.columns()

    def missing_table_message(self) -> str:
        """What to say when the model table does not exist, with a "did you mean"."""
        tables = [str(r[0]) for r in self._read("SELECT table_name FROM duckdb_tables()")]
        close = difflib.get_close_matches(self.table, tables, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return (
            f"model table {self.table} does not exist{hint} (create it by adding a model: "
            f"`byom models add MODEL_FILE --id ID --table {self.table}`)"
        )

    def check_layout(self) -> None:
        cols = self.columns()
        if not {"model_id", "model"} <= cols:
            raise ModelTableError(
                f"table {self.table} is not a model table: it needs columns model_id and model "
                f"(it has {', '.join(sorted(cols)) or 'no columns, or does not exist'}); create "
                "it with `byom models add`"
            )

    # -- writes -----------------------------------------------------------------------------
    def _count(self, model_id: str) -> int:
        if not self.columns():
            return 0
        q = f"SELECT count(*) FROM {self.sql_table} WHERE model_id = ?"
        # fetchall, not fetchone: DuckDB 2.0 keeps a half-read result open on the connection.
        return int(self.con.execute(q, [model_id]).fetchall()[0][0])

    def _write(self, record: ModelRecord, replacing: bool) -> None:
        if not self.columns():
            self.create()
        full = self.is_full_layout()
        cols = MODEL_TABLE_COLUMNS if full else ("model_id", "model")
        values = record.row() if full else (record.model_id, record.blob)
        marks = ", ".join("?" for _ in cols)
        insert = f"INSERT INTO {self.sql_table} ({', '.join(cols)}) VALUES ({marks})"
        # Delete then insert, in one transaction: INSERT OR REPLACE needs a key, which a table
        # with just model_id and model (Teradata BYOM's layout) may not have.
        with self._transaction():
            if replacing:
                self._delete(record.model_id)
            self.con.execute(insert, list(values))

    def _delete(self, model_id: str) -> None:
        self.con.execute(f"DELETE FROM {self.sql_table} WHERE model_id = ?", [model_id])

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """A transaction of its own, or the caller's if one is open already."""
        duckdb = import_duckdb()
        try:
            self.con.execute("BEGIN TRANSACTION")
        except duckdb.TransactionException:  # the caller's transaction: it decides to commit
            yield
            return
        try:
            yield
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    # -- reads ------------------------------------------------------------------------------
    def model_ids(self) -> list[str]:
        return [r[0] for r in self._read(f"SELECT model_id FROM {self.sql_table}")]

    def list(self) -> list[dict[str, Any]]:
        cols = self.columns()
        wanted = [c for c in MODEL_TABLE_COLUMNS if c != "model" and c in cols]
        extra = [] if "size_bytes" in cols else ["octet_length(model) AS size_bytes"]
        sel = ", ".join(wanted + extra)
        rel = self.con.execute(f"SELECT {sel} FROM {self.sql_table} ORDER BY model_id")
        names = [d[0] for d in rel.description]
        return [dict(zip(names, row, strict=True)) for row in rel.fetchall()]

    def blob(self, model_id: str) -> bytes:
        q = f"SELECT model FROM {self.sql_table} WHERE model_id = ?"
        rows = self.con.execute(q, [model_id]).fetchall()
        if not rows:
            raise UnknownModelError(model_id, self.model_ids(), self.table)
        return bytes(rows[0][0])

    def fetch(self, model_id: str) -> StoredModel | None:
        """Read a model on a separate cursor (called from inside a running query): the size
        first, the bytes only if they are within the bound; the version key is hashed from the
        bytes read, whatever a sha256 column says."""
        inputs = "inputs" if "inputs" in self.columns() else "NULL"
        q = f"SELECT octet_length(model), {inputs} FROM {self.sql_table} WHERE model_id = ?"
        rows = self._read(q, [model_id])
        if len(rows) != 1 or rows[0][0] is None:
            return None
        size, input_map = rows[0]
        check_size(size, model_id)
        blob_rows = self._read(f"SELECT model FROM {self.sql_table} WHERE model_id = ?", [model_id])
        if len(blob_rows) != 1 or blob_rows[0][0] is None:
            return None
        blob = bytes(blob_rows[0][0])
        check_size(blob, model_id)
        sha = sha256_hex(blob)
        return StoredModel(model_id, blob, version_key(sha, input_map), sha, input_map)
