"""The committed MOJO fixtures cannot drift from H2O (issue 19): three models are trained again
with a live H2O 3.46.0.7, exported and scored by h2o-genmodel's PredictCsv; PredictCsv's
numbers equal the committed ones, and byom's scores of the fresh MOJOs equal PredictCsv."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from byom.errors import ByomError
from byom.inputs import convert_column
from byom.scorers import load_scorer

FIXTURES = Path(__file__).parent / "fixtures"
LIVE = ("gbm_bernoulli", "drf_regression", "xgb_binomial")


def _rows(path: Path) -> list[list[str]]:
    return list(csv.reader(path.open()))


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    pytest.importorskip("h2o", reason="H2O (h2o==3.46.0.7, the test extra) is not installed")
    from byom.java import ensure_java

    try:
        ensure_java()
    except ByomError as exc:  # no JVM: nothing to compare with
        pytest.skip(f"no Java for H2O: {exc}")
    out = tmp_path_factory.mktemp("mojo")
    script = FIXTURES / "make_mojo_fixtures.py"
    done = subprocess.run(
        [sys.executable, str(script), "--out", str(out), "--only", ",".join(LIVE)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.mark.parametrize("name", LIVE)
def test_predict_csv_equals_the_committed_fixture(fresh, name):
    got, want = _rows(fresh / f"{name}.csv"), _rows(FIXTURES / "mojo" / f"{name}.csv")
    assert got[0] == want[0] and len(got) == len(want)
    for a, b in zip(got[1:], want[1:], strict=True):
        assert a[0] == b[0] or abs(float(a[0]) - float(b[0])) <= 1e-12
        assert np.allclose([float(x) for x in a[1:]], [float(x) for x in b[1:]], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", LIVE)
def test_byom_scores_the_fresh_mojo_as_predict_csv(fresh, name):
    types = {"c1": pa.string(), "c2": pa.string()}
    data = pcsv.read_csv(
        fresh / "data.csv", convert_options=pcsv.ConvertOptions(column_types=types)
    )
    scorer = load_scorer((fresh / f"{name}.zip").read_bytes(), name)
    features = {i.name: convert_column(data[i.name], i.type, name, i.name) for i in scorer.inputs}
    pred = scorer.predict(features, data.num_rows)
    rows = _rows(fresh / f"{name}.csv")[1:]
    if pred.value is not None:
        want = np.array([float(r[0]) for r in rows])
        assert np.max(np.abs(pred.value - want)) <= 1e-12 * max(1.0, np.max(np.abs(want)))
    else:
        assert pred.labels is not None and pred.labels.to_pylist() == [r[0] for r in rows]
        want = np.array([[float(x) for x in r[1:]] for r in rows])
        assert np.max(np.abs(pred.probabilities - want)) <= 1e-12
