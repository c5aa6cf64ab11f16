"""A model format byom does not ship, registered from the test suite alone: proof that a new
format needs its own module and nothing else to be scored by every engine.

`byom-linear` is a text file: a header line, then `name=coefficient` lines and an `intercept`;
it predicts intercept + sum(coefficient * value), a NULL input counting as 0.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from byom.errors import InvalidModelError
from byom.formats import ModelFormat, register_format
from byom.scorers.base import ModelInput, Prediction, Scorer

HEADER = b"byom-linear v1\n"


class LinearScorer(Scorer):
    format = "byom-linear"
    task = "regression"
    classes = ()
    target = "y"

    def __init__(self, blob: bytes, model_id: str = "") -> None:
        terms: dict[str, float] = {}
        for line in blob[len(HEADER) :].decode().splitlines():
            name, sep, value = line.partition("=")
            if not sep:
                raise InvalidModelError(f"model {model_id!r}: {line!r} is not name=coefficient")
            terms[name.strip()] = float(value)
        self.intercept = terms.pop("intercept", 0.0)
        self.coefficients = terms
        self.inputs = tuple(ModelInput(name, "float64") for name in terms)

    def predict(self, features: dict[str, np.ndarray], n: int, full: bool = True) -> Prediction:
        value = np.full(n, self.intercept)
        for name, coefficient in self.coefficients.items():
            value += coefficient * np.nan_to_num(features[name].astype(np.float64))
        return Prediction(task="regression", n=n, value=value, outputs={"y": pa.array(value)})


def document(intercept: float, **coefficients: float) -> bytes:
    lines = [f"{k}={v!r}" for k, v in coefficients.items()] + [f"intercept={intercept!r}"]
    return HEADER + "\n".join(lines).encode()


FORMAT = register_format(
    ModelFormat(
        "byom-linear",
        lambda head: head.startswith(HEADER),
        LinearScorer,
        "write the header line, then one name=coefficient line per input",
    )
)
