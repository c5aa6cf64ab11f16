"""The `byom` command line and the demo: the application layer, above the engine adapters.

byom's layers, checked by import-linter in the test command (see pyproject.toml):
the application (`byom_cli`, `spark_jobs`) may import the engine adapters (`udfs.*`), which may
import the core (`byom`); never the other way, and no adapter imports another.
"""

from byom_cli import teradata  # noqa: F401  (registers `byom teradata`)
from byom_cli.commands import app, main

__all__ = ["app", "main"]
