"""VantageCloud Lake's APPLY table operator (issue 16): byom_score.py with `--operator apply`
reads and writes APPLY's CSV contract (RFC 4180, DELIMITER ',' and QUOTECHAR '"' by default,
`""` an empty string and an empty unquoted field NULL), through tests/teradata_server.py's
APPLY mode, and scores what DuckDB scores on the same rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from helpers import LINEAR_PMML
from teradata_server import apply_command, run_script
from test_teradata_encoding import tree_pmml
from test_teradata_hardening import launch, pmml_rows
from test_teradata_script import (  # noqa: F401  (fixtures)
    OUTPUTS,
    RETURNS,
    assert_same,
    duckdb_results,
    iris_rows,
    onnx_models,
)

#: A categorical input whose values need quoting; '' and NULL score differently (NULL is
#: replaced by "plain"), so a NULL read as '' or the reverse changes the score.
QUOTED_PMML = b"""<?xml version="1.0" encoding="UTF-8"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header description="categories that need quoting"/>
  <DataDictionary numberOfFields="3">
    <DataField name="s" optype="categorical" dataType="string">
      <Value value="a,b"/><Value value='say "hi"'/><Value value=""/><Value value="plain"/>
      <Value value="x;y|z"/>
    </DataField>
    <DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="y" optype="continuous" dataType="double"/>
  </DataDictionary>
  <RegressionModel functionName="regression">
    <MiningSchema>
      <MiningField name="s" missingValueReplacement="plain"/><MiningField name="x"/>
      <MiningField name="y" usageType="target"/>
    </MiningSchema>
    <RegressionTable intercept="1">
      <NumericPredictor name="x" coefficient="2"/>
      <CategoricalPredictor name="s" value="a,b" coefficient="10"/>
      <CategoricalPredictor name="s" value='say "hi"' coefficient="20"/>
      <CategoricalPredictor name="s" value="" coefficient="30"/>
      <CategoricalPredictor name="s" value="plain" coefficient="40"/>
      <CategoricalPredictor name="s" value="x;y|z" coefficient="50"/>
    </RegressionTable>
  </RegressionModel>
</PMML>
"""
VALUES = ["a,b", 'say "hi"', "", None, "plain", "x;y|z"]
BY_HAND = {"a,b": 10.0, 'say "hi"': 20.0, "": 30.0, None: 40.0, "plain": 40.0, "x;y|z": 50.0}


def model_file(tmp_path: Path, name: str, blob: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(blob)
    return f"{name}={path}"


def quoted_rows(n: int = 90) -> pa.Table:
    rng = np.random.default_rng(4180)
    return pa.table(
        {
            "_row": pa.array(np.arange(n)),
            "model_id": pa.array(["q"] * n),
            "s": pa.array([VALUES[i % len(VALUES)] for i in range(n)], pa.string()),
            "x": pa.array(rng.normal(size=n)),
        }
    )


# -- the conformance models ------------------------------------------------------------------------
def test_apply_onnx_models_inline_match_duckdb(iris_rows, onnx_models):  # noqa: F811
    args = ["--model-column", "model_id", "--accumulate", "_row", *OUTPUTS]
    got = run_script(
        iris_rows,
        [*args, "--inputs", onnx_models["multi"][1] or ""],
        RETURNS,
        partition_by=["model_id"],
        order_by="_row",
        model_data={k: blob for k, (blob, _) in onnx_models.items()},
        operator="apply",
    )
    assert_same(got, duckdb_results(onnx_models, iris_rows), ["score", "label", "json_report"])


def test_apply_pmml_file_hash_by_matches_duckdb(tmp_path):
    rows = pmml_rows(200).append_column("model_id", pa.array(["lin"] * 200))
    args = ["--model-id", "lin", "--model-file", model_file(tmp_path, "lin", LINEAR_PMML)]
    args += ["--accumulate", "_row,color", "--outputs", "score,json_report"]
    returns = [("_row", "BIGINT"), ("color", "VARCHAR(5)"), *RETURNS[1:2], RETURNS[3]]
    got = run_script(rows, args, returns, hash_by="_row", operator="apply")
    want = duckdb_results({"lin": (LINEAR_PMML, None)}, rows)
    assert_same(got, want, ["score", "json_report"])
    assert got.sort_by("_row")["color"].to_pylist() == rows["color"].to_pylist()


# -- values that need quotes ----------------------------------------------------------------------
@pytest.mark.parametrize("delimiter", [",", ";", "|"])
def test_quoted_values_and_empty_strings_vs_null_match_duckdb(tmp_path, delimiter):
    rows = quoted_rows()
    args = ["--model-column", "model_id", "--model-file", model_file(tmp_path, "q", QUOTED_PMML)]
    args += ["--accumulate", "_row,s", "--outputs", "score"]
    if delimiter != ",":
        args += ["--delimiter", delimiter]
    returns = [("_row", "BIGINT"), ("s", "VARCHAR(20)"), ("score", "FLOAT")]
    got = run_script(
        rows, args, returns, hash_by="_row", operator="apply", delimiter=delimiter
    ).sort_by("_row")
    want = duckdb_results({"q": (QUOTED_PMML, None)}, rows)
    assert got["score"].to_pylist() == want["score"].to_pylist()
    pairs = zip(rows["s"].to_pylist(), rows["x"].to_pylist(), strict=True)
    by_hand = [1 + 2 * x + BY_HAND[s] for s, x in pairs]
    np.testing.assert_allclose(got["score"].to_numpy(), by_hand, rtol=1e-12)
    # every value comes back as it went: '' stays '' and NULL stays NULL
    assert got["s"].to_pylist() == rows["s"].to_pylist()


def test_labels_needing_quotes_come_back_whole(tmp_path):
    rows = quoted_rows().set_column(1, "model_id", pa.array(["t"] * 90))
    blob = tree_pmml("low, or below", "high &quot;enough&quot;")
    args = ["--model-column", "model_id", "--model-file", model_file(tmp_path, "t", blob)]
    args += ["--accumulate", "_row", "--outputs", "label,json_report"]
    returns = [("_row", "BIGINT"), ("label", "VARCHAR(20)"), ("json_report", "VARCHAR(2000)")]
    got = run_script(rows, args, returns, hash_by="_row", operator="apply").sort_by("_row")
    want = duckdb_results({"t": (blob, None)}, rows)
    assert got["label"].to_pylist() == want["label"].to_pylist()
    assert got["json_report"].to_pylist() == want["json_report"].to_pylist()
    assert set(got["label"].to_pylist()) == {"low, or below", 'high "enough"'}


# -- the exact bytes ------------------------------------------------------------------------------
def test_apply_writes_rfc4180_exactly(tmp_path):
    """Fields quoted only where RFC 4180 needs it; '' as "" and NULL as nothing."""
    args = ["--columns", "id INTEGER, s VARCHAR(20), x FLOAT", "--model-id", "t"]
    args += ["--model-file", model_file(tmp_path, "t", tree_pmml("lo,w", "hi&quot;gh"))]
    args += ["--accumulate", "id,s", "--outputs", "label", "--operator", "apply"]
    stdin = b'1,"a,b",-1\n2,"",1\n3,,1\n4,"say ""hi""",-2\n5,plain,3\n'
    proc = launch(args, stdin)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout == (
        b'1,"a,b","lo,w"\n2,"","hi""gh"\n3,,"hi""gh"\n4,"say ""hi""","lo,w"\n5,plain,"hi""gh"\n'
    )


def test_apply_command_is_the_environment_python_on_the_bare_file():
    command = apply_command(["--model-id", "m", "--inputs", "a=c1;b=c2"])
    assert command == "python3 byom_score.py --model-id m --inputs 'a=c1;b=c2' --operator apply"
