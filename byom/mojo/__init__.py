"""H2O MOJO models, read without a JVM: the archive (`archive`) and the tree models, GBM and DRF
(`trees`), whose trees run on byom's compiled tree kernel."""

from __future__ import annotations

from byom.mojo.archive import read, sniff
from byom.scorers.base import Scorer


def load_scorer(blob: bytes, model_id: str = "") -> Scorer:
    """The scorer of a MOJO's bytes; anything malformed or unsupported is refused by name."""
    from byom.mojo import trees

    who = f"MOJO {model_id!r}" if model_id else "the MOJO"
    return trees.load_scorer(read(blob, who))


__all__ = ["load_scorer", "sniff"]
