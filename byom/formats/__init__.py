"""Model formats, found through one registry: each format is one module that says how to
recognise its bytes, how to load (and so validate) them, and how to name itself in errors.

byom's own formats are the modules of this package (onnx, pmml, lightgbm, xgboost), each found
and imported by the registry, so a new one needs its module and nothing else. Another plugs in by
calling `register_format` at import, in a module that is either imported by the caller or named
in the environment variable `BYOM_FORMATS` (comma-separated module names): the variable reaches
processes byom does not start itself, such as Spark's Python workers (the Spark adapter
forwards it) and the Teradata SCRIPT instances.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import pkgutil
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from byom import config
from byom.errors import ModelTooLargeError, UnsupportedFormatError

if TYPE_CHECKING:
    from byom.scorers.base import Scorer

#: Bytes of a blob's start that `sniff` sees (a UTF-8 byte order mark removed).
HEAD_BYTES = 4096


@dataclass(frozen=True)
class ModelFormat:
    """One model format, as the registry knows it."""

    #: Short lower-case name, stored in the model table's `format` column.
    name: str
    #: Whether a blob is in this format, from its first HEAD_BYTES bytes. Cheap, no parsing.
    sniff: Callable[[bytes], bool]
    #: Load the whole blob into a scorer (`model_id` names it in errors). Every check the
    #: format needs (safety, validity) happens here, on every load, not only at save.
    load: Callable[[bytes, str], Scorer]
    #: How to export a model to this format, for "not a model I know" errors.
    how_to_export: str

    def __str__(self) -> str:
        return self.name


_registry: dict[str, ModelFormat] = {}
_plugins_loaded: set[str] = set()
_builtins_loaded = False
_lock = threading.Lock()


def register_format(fmt: ModelFormat) -> ModelFormat:
    """Add a format (or replace one of the same name); returns it, for use as a module constant."""
    with _lock:
        _registry[fmt.name] = fmt
    return fmt


def register_reader(name: str, module: str, how_to_export: str) -> ModelFormat:
    """Register a format whose reader module (imported on first use, so sniffing other
    formats never imports it) has `sniff(head)` and `load_scorer(blob, model_id)`."""

    def sniff(head: bytes) -> bool:
        result: bool = importlib.import_module(module).sniff(head)
        return result

    def load(blob: bytes, model_id: str) -> Scorer:
        scorer: Scorer = importlib.import_module(module).load_scorer(blob, model_id)
        return scorer

    return register_format(ModelFormat(name, sniff, load, how_to_export))


def registered_formats() -> list[ModelFormat]:
    """Every known format, byom's own first, then plugins in `BYOM_FORMATS` order."""
    global _builtins_loaded
    if not _builtins_loaded:  # every module of this package is a format: adding one is enough
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            importlib.import_module(f"{__name__}.{info.name}")
        _builtins_loaded = True

    for module in filter(None, (m.strip() for m in os.environ.get("BYOM_FORMATS", "").split(","))):
        if module not in _plugins_loaded:
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise UnsupportedFormatError(
                    f"BYOM_FORMATS names {module!r}, which cannot be imported ({exc}); install it "
                    "or remove it from BYOM_FORMATS"
                ) from None
            _plugins_loaded.add(module)
    with _lock:
        return list(_registry.values())


def sha256_hex(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def check_size(blob: bytes | int, model_id: str = "", table: str = "") -> None:
    """Refuse a model over the size bound; pass the size alone to check before reading."""
    limit = config.MAX_MODEL_BYTES
    size = blob if isinstance(blob, int) else len(blob)
    if size > limit:
        who = f"model {model_id!r}" if model_id else "the model"
        who += f" in {table}" if table else ""
        raise ModelTooLargeError(
            f"{who} is {size:,} bytes, over the limit of {limit:,}; raise "
            "BYOM_MAX_MODEL_BYTES if this model is trusted and really that large"
        )


def detect_format(blob: bytes, model_id: str = "") -> ModelFormat:
    """Tell formats apart by content, never by file name, because blobs arrive without names."""
    who = f"model {model_id!r}" if model_id else "the model"
    if not blob:
        raise UnsupportedFormatError(f"{who} is empty (0 bytes)")
    check_size(blob, model_id)
    head = blob[:HEAD_BYTES].removeprefix(b"\xef\xbb\xbf")
    known = registered_formats()
    for fmt in known:
        if fmt.sniff(head):
            return fmt
    names = ", ".join(f.name.upper() for f in known)
    exports = "; ".join(f"{f.name.upper()}: {f.how_to_export}" for f in known)
    raise UnsupportedFormatError(
        f"{who} is in none of the formats byom knows ({names}); it starts with {blob[:16]!r}: "
        f"export the model to one of them ({exports})"
    )


__all__ = [
    "ModelFormat",
    "check_size",
    "detect_format",
    "register_format",
    "register_reader",
    "registered_formats",
    "sha256_hex",
]
