"""Recognise a model blob's format from its bytes, and refuse unsafe or oversized ones early."""

from __future__ import annotations

import hashlib
import re
from enum import Enum

from byom import config
from byom.errors import ModelTooLargeError, UnsafeModelError, UnsupportedFormatError


class ModelFormat(str, Enum):
    ONNX = "onnx"
    PMML = "pmml"


# Protobuf tags of the ModelProto fields a serializer writes first (field number << 3 | wire type).
_ONNX_FIRST_TAGS = {0x08, 0x12, 0x1A, 0x22, 0x2A, 0x32, 0x3A, 0x42, 0x4A, 0x52, 0x72, 0x7A}
_XML_DECL = re.compile(rb"^\s*(<\?xml[^>]*\?>)?\s*(<!--.*?-->\s*)*<", re.S)
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.I)


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
    """Tell ONNX from PMML by content, never by file name, because blobs arrive without names."""
    who = f"model {model_id!r}" if model_id else "the model"
    if not blob:
        raise UnsupportedFormatError(f"{who} is empty (0 bytes)")
    check_size(blob, model_id)
    head = blob[:4096].lstrip(b"\xef\xbb\xbf")
    if _XML_DECL.match(head):
        if _DTD.search(blob):
            raise UnsafeModelError(
                f"{who} is XML with a DOCTYPE or ENTITY declaration, which byom refuses "
                "(entity expansion and external entities can attack the parser); remove the "
                "declaration from the PMML file"
            )
        if b"<PMML" not in head and not re.search(rb"<\w+:PMML", head):
            raise UnsupportedFormatError(f"{who} is XML but its root element is not PMML")
        return ModelFormat.PMML
    if head[0] in _ONNX_FIRST_TAGS:
        return ModelFormat.ONNX
    raise UnsupportedFormatError(
        f"{who} is neither ONNX nor PMML (starts with {blob[:16]!r}); export the model to "
        "ONNX (skl2onnx, onnxmltools, torch.onnx) or PMML (sklearn2pmml, r2pmml)"
    )
