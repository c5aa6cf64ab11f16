"""CHARSET('LATIN'): the server writes the rows as Latin-1 bytes and reads results back the
same way (issue 16). The script decodes them when told `--charset latin` and scores what
DuckDB scores on the same text; UTF-16 is refused by name rather than guessed at.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from teradata_server import ScriptFailed, run_script
from test_teradata_hardening import launch, one_line_error
from test_teradata_script import duckdb_results

CITIES = ["Zürich", "Genève", "Köln", "Malmö", "Besançon"]
#: y = 1.5 + 2x + 10/20/30 for Zürich/Genève/Köln (other cities: 0).
CITY_COEFFICIENTS = {"Zürich": 10.0, "Genève": 20.0, "Köln": 30.0}

CITY_PMML = """<?xml version="1.0" encoding="UTF-8"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header description="a categorical input with accented values"/>
  <DataDictionary numberOfFields="3">
    <DataField name="city" optype="categorical" dataType="string">
      <Value value="Zürich"/><Value value="Genève"/><Value value="Köln"/><Value value="Malmö"/>
      <Value value="Besançon"/>
    </DataField>
    <DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="y" optype="continuous" dataType="double"/>
  </DataDictionary>
  <RegressionModel functionName="regression" modelName="cities">
    <MiningSchema>
      <MiningField name="city"/><MiningField name="x"/>
      <MiningField name="y" usageType="target"/>
    </MiningSchema>
    <RegressionTable intercept="1.5">
      <NumericPredictor name="x" coefficient="2"/>
      <CategoricalPredictor name="city" value="Zürich" coefficient="10"/>
      <CategoricalPredictor name="city" value="Genève" coefficient="20"/>
      <CategoricalPredictor name="city" value="Köln" coefficient="30"/>
    </RegressionTable>
  </RegressionModel>
</PMML>
""".encode()


def tree_pmml(low: str, high: str) -> bytes:
    """A classifier: x < 0 is `low` (probability 0.75), otherwise `high`."""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4">
  <Header description="class labels with accents"/>
  <DataDictionary numberOfFields="2">
    <DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="dest" optype="categorical" dataType="string">
      <Value value="{low}"/><Value value="{high}"/>
    </DataField>
  </DataDictionary>
  <TreeModel functionName="classification" modelName="dest">
    <MiningSchema><MiningField name="x"/><MiningField name="dest" usageType="target"/>
    </MiningSchema>
    <Node score="{high}"><True/>
      <Node score="{low}"><SimplePredicate field="x" operator="lessThan" value="0"/>
        <ScoreDistribution value="{low}" recordCount="3"/>
        <ScoreDistribution value="{high}" recordCount="1"/>
      </Node>
      <Node score="{high}"><True/>
        <ScoreDistribution value="{low}" recordCount="1"/>
        <ScoreDistribution value="{high}" recordCount="3"/>
      </Node>
    </Node>
  </TreeModel>
</PMML>
""".encode()


def city_rows(n: int = 80) -> pa.Table:
    rng = np.random.default_rng(16)
    city = rng.choice(CITIES, size=n).astype(object)
    city[rng.random(n) < 0.1] = None
    return pa.table(
        {
            "_row": pa.array(np.arange(n)),
            "model_id": pa.array(["cities"] * n),
            "city": pa.array(city, pa.string()),
            "x": pa.array(rng.normal(size=n)),
        }
    )


def model_file(tmp_path: Path, name: str, blob: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(blob)
    return f"{name}={path}"


RETURNS = [("_row", "BIGINT"), ("city", "VARCHAR(20)"), ("score", "FLOAT")]


@pytest.mark.parametrize("quotechar", [None, '"'])
def test_latin_rows_score_as_duckdb(tmp_path, quotechar):
    rows = city_rows()
    args = ["--model-column", "model_id", "--model-file", model_file(tmp_path, "cities", CITY_PMML)]
    args += ["--accumulate", "_row,city", "--outputs", "score", "--charset", "latin"]
    if quotechar:
        args += ["--quotechar", quotechar]
    got = run_script(rows, args, RETURNS, hash_by="_row", charset="latin", quotechar=quotechar)
    got = got.sort_by("_row")
    want = duckdb_results({"cities": (CITY_PMML, None)}, rows)
    assert got["score"].to_pylist() == want["score"].to_pylist()
    # the accented values came back as the server wrote them, in Latin-1
    assert got["city"].to_pylist() == rows["city"].to_pylist()
    by_hand = [
        1.5 + 2 * x + CITY_COEFFICIENTS.get(c, 0.0)
        for c, x in zip(rows["city"].to_pylist(), rows["x"].to_pylist(), strict=True)
    ]
    np.testing.assert_allclose(got["score"].to_numpy(), by_hand, rtol=1e-12)


def test_latin_labels_come_back_as_latin(tmp_path):
    rows = city_rows().set_column(1, "model_id", pa.array(["dest"] * 80))
    blob = tree_pmml("Genève", "Zürich")
    args = ["--model-id", "dest", "--model-file", model_file(tmp_path, "dest", blob)]
    args += ["--accumulate", "_row", "--outputs", "label,prob_Genève", "--charset", "latin"]
    returns = [("_row", "BIGINT"), ("label", "VARCHAR(10)"), ("p", "FLOAT")]
    got = run_script(rows, args, returns, hash_by="_row", charset="latin").sort_by("_row")
    want = duckdb_results({"dest": (blob, None)}, rows)
    assert got["label"].to_pylist() == want["label"].to_pylist()
    assert set(got["label"].to_pylist()) == {"Genève", "Zürich"}
    expected = np.where(rows["x"].to_numpy() < 0, 0.75, 0.25)
    np.testing.assert_allclose(got["p"].to_numpy(), expected)


def test_latin_rows_without_the_flag_name_the_line(tmp_path):
    rows = city_rows()
    args = ["--model-id", "cities", "--model-file", model_file(tmp_path, "cities", CITY_PMML)]
    with pytest.raises(ScriptFailed) as info:
        run_script(rows, [*args, "--outputs", "score"], [("score", "FLOAT")], charset="latin")
    assert "is not UTF-8 text; a CHARSET('LATIN') call needs --charset latin" in info.value.stderr


def test_label_latin_cannot_hold_names_its_line(tmp_path):
    args = ["--columns", "x FLOAT", "--model-id", "m", "--outputs", "label", "--charset", "latin"]
    args += ["--model-file", model_file(tmp_path, "m", tree_pmml("low", "€uro"))]
    err = one_line_error(launch(args, b"-1.0\n-2.0\n3.0\n"))
    assert "line 3: the output holds '€', which CHARSET LATIN cannot hold" in err


@pytest.mark.parametrize("charset", ["utf-16", "utf16", "kanjisjis"])
def test_other_charsets_are_refused_by_name(tmp_path, charset):
    args = ["--columns", "x FLOAT", "--model-id", "m", "--charset", charset]
    args += ["--model-file", model_file(tmp_path, "m", tree_pmml("a", "b"))]
    err = one_line_error(launch(args, "1.0\n".encode("utf-16")))
    assert f"--charset {charset!r} is not one byom reads: use latin" in err
