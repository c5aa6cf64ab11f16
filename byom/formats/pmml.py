"""PMML: an XML document, scored by byom's native evaluator (`byom.pmml`), or by pypmml for
documents the native one refuses when BYOM_PMML_FALLBACK=pypmml."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from byom import config
from byom.errors import UnsafeModelError, UnsupportedFormatError, UnsupportedPmmlError
from byom.formats import ModelFormat, register_format

if TYPE_CHECKING:
    from byom.scorers.base import Scorer

_XML_DECL = re.compile(rb"^\s*(<\?xml[^>]*\?>)?\s*(<!--.*?-->\s*)*<", re.S)
_DTD = re.compile(rb"<!(DOCTYPE|ENTITY)", re.I)
_ROOT = re.compile(rb"<(\w+:)?PMML\b")


def _sniff(head: bytes) -> bool:
    return _XML_DECL.match(head) is not None


def _load(blob: bytes, model_id: str) -> Scorer:
    who = f"model {model_id!r}" if model_id else "the model"
    if _DTD.search(blob):
        raise UnsafeModelError(
            f"{who} is XML with a DOCTYPE or ENTITY declaration, which byom refuses (entity "
            "expansion and external entities can attack the parser); remove the declaration "
            "from the PMML file"
        )
    if not _ROOT.search(blob[:4096]):
        raise UnsupportedFormatError(f"{who} is XML but its root element is not PMML")
    from byom.pmml.scorer import NativePmmlScorer

    try:
        return NativePmmlScorer(blob, model_id)
    except UnsupportedPmmlError:
        if config.PMML_FALLBACK != "pypmml":
            raise
    from byom.scorers.pypmml import PypmmlScorer

    return PypmmlScorer(blob, model_id)


PMML = register_format(ModelFormat("pmml", _sniff, _load, "sklearn2pmml, r2pmml, jpmml-*"))
