"""LightGBM text models (`booster.save_model('model.txt')`), read by byom itself
(`byom.trees.lightgbm`) and scored by the tree kernel, equal to `Booster.predict`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from byom.formats import ModelFormat, register_format

if TYPE_CHECKING:
    from byom.scorers.base import Scorer


def _sniff(head: bytes) -> bool:
    from byom.trees.lightgbm import sniff

    return sniff(head)


def _load(blob: bytes, model_id: str) -> Scorer:
    from byom.trees.lightgbm import load_scorer

    return load_scorer(blob, model_id)


LIGHTGBM = register_format(
    ModelFormat("lightgbm", _sniff, _load, "booster.save_model('model.txt')")
)
