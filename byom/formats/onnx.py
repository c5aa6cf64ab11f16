"""ONNX: a protobuf ModelProto, scored with onnxruntime (`byom.scorers.onnx`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from byom.formats import ModelFormat, register_format

if TYPE_CHECKING:
    from byom.scorers.base import Scorer

# Protobuf tags of the ModelProto fields a serializer writes first (field number << 3 | wire type).
_FIRST_TAGS = {0x08, 0x12, 0x1A, 0x22, 0x2A, 0x32, 0x3A, 0x42, 0x4A, 0x52, 0x72, 0x7A}


def _sniff(head: bytes) -> bool:
    return head[0] in _FIRST_TAGS


def _load(blob: bytes, model_id: str) -> Scorer:
    from byom.scorers.onnx import OnnxScorer

    return OnnxScorer(blob, model_id)


ONNX = register_format(
    ModelFormat("onnx", _sniff, _load, "skl2onnx, onnxmltools, torch.onnx.export")
)
