"""XGBoost models saved as JSON or UBJSON (`booster.save_model('model.json' / 'model.ubj')`),
read by byom itself (`byom.trees.xgboost`) and scored by the tree kernel, bit for bit
xgboost's float32 predictions."""

from byom.formats import register_reader

XGBOOST = register_reader(
    "xgboost",
    "byom.trees.xgboost",
    "booster.save_model('model.json') or ('model.ubj'), gbtree or dart",
)
