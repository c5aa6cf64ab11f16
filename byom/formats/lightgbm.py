"""LightGBM text models (`booster.save_model('model.txt')`), read by byom itself
(`byom.trees.lightgbm`) and scored by the tree kernel, equal to `Booster.predict`."""

from byom.formats import register_reader

LIGHTGBM = register_reader("lightgbm", "byom.trees.lightgbm", "booster.save_model('model.txt')")
