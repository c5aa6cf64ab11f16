"""Import duckdb, or say which extra installs it."""

from __future__ import annotations

from types import ModuleType

from byom.errors import EngineNotInstalledError


def import_duckdb() -> ModuleType:
    try:
        import duckdb
    except ImportError:
        raise EngineNotInstalledError("DuckDB", "duckdb") from None
    return duckdb
