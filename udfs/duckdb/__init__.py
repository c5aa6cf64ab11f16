"""DuckDB: vectorized Arrow UDFs `score`, `predict` and `predict_json` on any connection."""

from udfs.duckdb.functions import register, sql
from udfs.duckdb.store import DuckDBModelStore

__all__ = ["DuckDBModelStore", "register", "sql"]
