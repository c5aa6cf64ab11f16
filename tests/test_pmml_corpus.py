"""The third-party PMML corpus in ../shared, scored through DuckDB SQL by the native evaluator.

Each case's expected outputs come from the tool that wrote the model (R, KNIME, RapidMiner).
Values are compared as jpmml compares them: relative to the expected value, with a zero
threshold, both taken from the case's `upstream_tolerance`. The expected column named after
the target holds the predicted value; the others are the model's OutputFields, by name.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from helpers import CORPUS, corpus_dir

from udfs.duckdb import sql


def _cases() -> list[str]:
    if not CORPUS.is_dir():
        return ["corpus-absent"]
    return sorted(p.name for p in CORPUS.iterdir() if (p / "model.pmml").is_file())


def _tolerance(case: dict) -> tuple[float, float]:
    text = case["upstream_tolerance"]
    precision = float(re.search(r"precision=([0-9.eE+-]+)", text).group(1))
    zero = float(re.search(r"zeroThreshold=([0-9.eE+-]+)", text).group(1))
    return precision, zero


def _acceptable(expected: object, actual: object, precision: float, zero: float) -> bool:
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        return actual is None or (isinstance(actual, float) and math.isnan(actual))
    if actual is None:
        return False
    try:
        e, a = float(expected), float(actual)  # "1" and 1.0 name the same label
    except (TypeError, ValueError):
        return str(expected) == str(actual)
    if abs(e) <= zero and abs(a) <= zero:
        return True
    low, high = sorted((e * (1 - precision), e * (1 + precision)))
    return low <= a <= high


def _read_csv(path: Path) -> pa.Table:
    options = pacsv.ConvertOptions(null_values=["NA", "N/A", ""], strings_can_be_null=True)
    return pacsv.read_csv(path, convert_options=options)


@pytest.mark.parametrize("name", _cases())
def test_corpus_case(con, store, name):
    root = corpus_dir()
    folder = root / name
    case = json.loads((folder / "case.json").read_text())
    precision, zero = _tolerance(case)
    store.add("m", (folder / "model.pmml").read_bytes())
    inputs = _read_csv(folder / "input.csv")
    inputs = inputs.append_column("_row", pa.array(range(inputs.num_rows)))
    con.register("corpus_rows", inputs)
    rows = sql(
        con, "SELECT predict_json('m', *), predict('m', *) FROM corpus_rows ORDER BY _row"
    ).fetchall()
    got = [json.loads(r[0]) for r in rows]
    expected = _read_csv(folder / "expected.csv").to_pylist()
    assert len(got) == len(expected) == inputs.num_rows
    target = store.show("m")["output_schema"]
    target = json.loads(target)["target"] if target else None
    if target in expected[0] and case["function"] == "classification":
        labels = [r[1]["label"] for r in rows]
        assert all(
            _acceptable(want[target], label, 0.0, 0.0)
            for want, label in zip(expected, labels, strict=True)
        ), "predict(...).label differs from the predicted target"

    failures: dict[str, int] = {}
    for column in expected[0]:  # every column, even those upstream leaves out
        bad = sum(
            not _acceptable(want[column], have.get(column), precision, zero)
            for want, have in zip(expected, got, strict=True)
        )
        if bad:
            failures[column] = bad
    cells = len(expected) * len(expected[0])
    passed = cells - sum(failures.values())
    print(f"{name}: {passed}/{cells} expected cells within tolerance ({passed / cells:.1%})")
    assert not failures, f"{name}: rows out of tolerance per column: {failures}"
