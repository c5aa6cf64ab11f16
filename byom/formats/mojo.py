"""H2O MOJO models (`model.download_mojo(path)`), read by byom itself (`byom.mojo`): GBM and
DRF trees on the tree kernel, equal to h2o-genmodel's predictions."""

from byom.formats import register_reader

MOJO = register_reader("mojo", "byom.mojo", "model.download_mojo(path) (H2O-3)")
