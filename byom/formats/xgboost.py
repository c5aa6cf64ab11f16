"""XGBoost models saved as JSON or UBJSON (`booster.save_model('model.json' / 'model.ubj')`),
read by byom itself (`byom.trees.xgboost`) and scored by the tree kernel, bit for bit
xgboost's float32 predictions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from byom.formats import ModelFormat, register_format

if TYPE_CHECKING:
    from byom.scorers.base import Scorer


def _sniff(head: bytes) -> bool:
    from byom.trees.xgboost import sniff

    return sniff(head)


def _load(blob: bytes, model_id: str) -> Scorer:
    from byom.trees.xgboost import load_scorer

    return load_scorer(blob, model_id)


XGBOOST = register_format(
    ModelFormat(
        "xgboost",
        _sniff,
        _load,
        "booster.save_model('model.json') or ('model.ubj'), gbtree or dart",
    )
)
