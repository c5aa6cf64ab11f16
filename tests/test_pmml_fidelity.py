"""Native PMML evaluator fidelity to JPMML (issue 14): model-chain outputs, boolean outputs,
x-mathContext="float", TextIndex, and deeply nested documents.

References: pypmml (PMML4S) for documents it evaluates as JPMML does; for x-mathContext="float",
which pypmml ignores (it computes in double, ~1e-7 away), outputs recorded from JPMML-Evaluator
(tests/pmml_float_cases.py), plus a live JPMML comparison where `jpmml_evaluator` is installed.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from helpers import PMML_DOUBLE, assert_close
from pmml_float_cases import DOCS, EXPECTED, ROWS
from pmml_reference import scorer_pair

from byom.errors import InvalidModelError, UnsupportedPmmlError
from byom.outputs import json_rows
from byom.pmml.scorer import NativePmmlScorer
from udfs.duckdb import sql

# ----------------------------------------------------------------------------- fixtures


@functools.cache
def _classifier(kind: str) -> tuple[bytes, pd.DataFrame]:
    """A small sklearn2pmml export (modelChain of a tree sum and a logit) and held-out rows."""
    from sklearn.datasets import make_classification
    from sklearn2pmml.pipeline import PMMLPipeline

    from byom.export import sklearn_to_pmml

    classes = 3 if kind.endswith("3") else 2
    Xa, ya = make_classification(
        n_samples=400, n_features=5, n_informative=3, n_classes=classes, random_state=7
    )
    X = pd.DataFrame(Xa, columns=[f"x{i}" for i in range(5)])
    y = pd.Series(ya, name="y")
    if kind.startswith("lightgbm"):
        from lightgbm import LGBMClassifier

        model: Any = LGBMClassifier(
            n_estimators=5, num_leaves=7, n_jobs=1, verbose=-1, deterministic=True,
            force_row_wise=True, random_state=0,
        )  # fmt: skip
    elif kind.startswith("xgboost"):
        from xgboost import XGBClassifier

        model = XGBClassifier(n_estimators=5, max_depth=3, n_jobs=1, random_state=0)
    else:
        from sklearn.ensemble import GradientBoostingClassifier

        model = GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0)
    pipe = PMMLPipeline([("clf", model)]).fit(X.iloc[:300], y.iloc[:300])
    return sklearn_to_pmml(pipe), X.iloc[300:].reset_index(drop=True)


def _json(pred) -> list[dict[str, Any]]:
    return [json.loads(r) for r in json_rows(pred).to_pylist()]


def _features(scorer: NativePmmlScorer, frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {i.name: frame[i.name].to_numpy(np.float64) for i in scorer.inputs}


def _assert_rows_close(mine: list[dict], theirs: list[dict], atol: float) -> None:
    assert [list(r) for r in mine] == [list(r) for r in theirs]  # same names, same order
    for a, b in zip(mine, theirs, strict=True):
        for name, value in b.items():
            if isinstance(value, float) or isinstance(a[name], float):
                assert a[name] == pytest.approx(value, abs=atol, rel=0), name
            else:
                assert a[name] == value, name


# ----------------------------------------------------------------------------- 1. model chain


@pytest.mark.parametrize("kind", ["lightgbm", "gradient_boosting", "xgboost", "xgboost3"])
def test_model_chain_reports_last_segment_outputs(kind):
    """sklearn2pmml's classifiers declare probability(<class>) only on the chain's last
    segment; JPMML (and pypmml) report them, with the same names and values."""
    blob, rows = _classifier(kind)
    native, jvm = scorer_pair(blob)
    classes = ["0", "1", "2"] if kind.endswith("3") else ["0", "1"]
    assert native.output_names() == ["y", *[f"probability({c})" for c in classes]]
    assert native.output_names() == jvm.output_names()
    features = _features(native, rows)
    mine = _json(native.predict(features, len(rows)))
    theirs = _json(jvm.predict(features, len(rows)))
    # XGBoost's float math (x-mathContext) is JPMML's, not pypmml's: ~1e-7 apart.
    _assert_rows_close(mine, theirs, 1e-6 if kind.startswith("xgboost") else 1e-13)
    assert all(r["probability(1)"] is not None for r in mine)


def test_predict_json_in_duckdb_reports_chain_probabilities(con, store):
    blob, rows = _classifier("lightgbm")
    store.add("lgbm", blob)
    con.register("rows", rows.assign(id=range(len(rows))))
    got = sql(con, "SELECT predict_json('lgbm', *) AS j FROM rows ORDER BY id").fetchall()
    _, jvm = scorer_pair(blob)
    theirs = _json(jvm.predict(_features(NativePmmlScorer(blob), rows), len(rows)))
    _assert_rows_close([json.loads(r[0]) for r in got], theirs, 1e-13)


_CHAIN = b"""<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header/>
  <DataDictionary>
    <DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="y" optype="continuous" dataType="double"/>
  </DataDictionary>
  <MiningModel functionName="regression">
    <MiningSchema><MiningField name="x"/><MiningField name="y" usageType="target"/></MiningSchema>
    <Output><OutputField name="top" feature="predictedValue" dataType="double"/></Output>
    <Segmentation multipleModelMethod="modelChain">
      <Segment id="1"><True/>
        <RegressionModel functionName="regression">
          <MiningSchema><MiningField name="x"/></MiningSchema>
          <Output><OutputField name="first" feature="predictedValue" dataType="double"/></Output>
          <RegressionTable intercept="1"><NumericPredictor name="x" coefficient="2"/>
          </RegressionTable>
        </RegressionModel>
      </Segment>
      <Segment id="2"><True/>
        <RegressionModel functionName="regression">
          <MiningSchema><MiningField name="first"/></MiningSchema>
          <Output><OutputField name="second" feature="predictedValue" dataType="double"/>
          </Output>
          <RegressionTable intercept="0"><NumericPredictor name="first" coefficient="10"/>
          </RegressionTable>
        </RegressionModel>
      </Segment>
    </Segmentation>
  </MiningModel>
</PMML>"""


def test_model_chain_nests_last_segment_fields_before_its_own():
    """JPMML's names (MiningModelEvaluator.createOutputFields, depth first): the fields of the
    segments from the last True one on, then the mining model's own; not earlier segments'."""
    scorer = NativePmmlScorer(_CHAIN)
    assert scorer.output_names() == ["y", "second", "top"]
    got = _json(scorer.predict({"x": np.array([1.0, np.nan])}, 2))
    assert got == [{"y": 30, "second": 30, "top": 30}, {"y": None, "second": None, "top": None}]


# ----------------------------------------------------------------------------- 2. booleans

_BOOLEANS = b"""<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header/>
  <DataDictionary>
    <DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="y" optype="continuous" dataType="double"/>
  </DataDictionary>
  <RegressionModel functionName="regression">
    <MiningSchema><MiningField name="x"/><MiningField name="y" usageType="target"/></MiningSchema>
    <Output>
      <OutputField name="yhat" feature="predictedValue" dataType="double"/>
      <OutputField name="big" feature="transformedValue" dataType="boolean" optype="categorical">
        <Apply function="greaterThan"><FieldRef field="yhat"/><Constant>1.5</Constant></Apply>
      </OutputField>
      <OutputField name="small" feature="transformedValue" optype="categorical">
        <Apply function="lessThan"><FieldRef field="yhat"/><Constant>1.5</Constant></Apply>
      </OutputField>
      <OutputField name="absent" feature="transformedValue" dataType="boolean">
        <Apply function="isMissing"><FieldRef field="x"/></Apply>
      </OutputField>
    </Output>
    <RegressionTable intercept="1"><NumericPredictor name="x" coefficient="1"/></RegressionTable>
  </RegressionModel>
</PMML>"""


def test_boolean_output_fields_are_json_booleans_like_pypmml():
    """dataType="boolean" (or a boolean expression with no dataType) is true / false in
    predict_json, as pypmml and JPMML report it, not 1 / 0."""
    native, jvm = scorer_pair(_BOOLEANS)
    x = np.array([0.0, 1.0, 7.5])
    mine, theirs = _json(native.predict({"x": x}, 3)), _json(jvm.predict({"x": x}, 3))
    assert mine == theirs
    assert [r["big"] for r in mine] == [False, True, True]
    assert all(type(r[k]) is bool for r in mine for k in ("big", "small", "absent"))


def test_boolean_outputs_through_duckdb(con, store):
    store.add("flags", _BOOLEANS)
    con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (1, 0.0), (2, 1.0), (3, NULL)) v(id, x)")
    got = sql(con, "SELECT predict_json('flags', *) FROM t ORDER BY id").fetchall()
    rows = [json.loads(r[0]) for r in got]
    assert [(r["big"], r["small"], r["absent"]) for r in rows[:2]] == [
        (False, True, False),
        (True, False, False),
    ]
    assert rows[2]["absent"] is True and rows[2]["big"] is None  # NULL stays null


# ----------------------------------------------------------------------------- 3. float math


def _float_features(scorer: NativePmmlScorer) -> dict[str, np.ndarray]:
    return {i.name: np.array(ROWS[i.name], np.float64) for i in scorer.inputs}


@pytest.mark.parametrize("name", sorted(DOCS))
def test_float_math_context_equals_jpmml(name):
    """XGBoost exports (x-mathContext="float"): trees, sum, Targets, logit / softmax and float
    output fields as JPMML computes them, to the last bit."""
    scorer = NativePmmlScorer(DOCS[name].encode())
    n = len(ROWS["a"])
    pred = scorer.predict(_float_features(scorer), n)
    if pred.probabilities is not None:  # the numbers themselves, before any output naming
        expected = [EXPECTED[name][f"probability({c})"] for c in pred.classes]
        assert_close(pred.probabilities, np.transpose(expected), PMML_DOUBLE)
    got = pa.table(pred.outputs).to_pydict()
    for column, expected in EXPECTED[name].items():
        have = np.array([np.nan if v is None else v for v in got[column]], np.float64)
        assert_close(have, expected, PMML_DOUBLE, err_msg=column)


def test_float_math_through_duckdb(con, store):
    store.add("xgb", DOCS["binary"].encode())
    con.register("rows", pd.DataFrame(ROWS).assign(id=range(len(ROWS["a"]))))
    got = sql(con, "SELECT predict_json('xgb', *) FROM rows ORDER BY id").fetchall()
    have = [json.loads(r[0])["probability(1)"] for r in got]
    assert_close(have, EXPECTED["binary"]["probability(1)"], PMML_DOUBLE)


@pytest.fixture(scope="module")
def jpmml():
    """JPMML over a py4j gateway, shut down after the module (its JVM would outlive the run)."""
    evaluator = pytest.importorskip("jpmml_evaluator", reason="jpmml-evaluator not installed")
    from jpmml_evaluator.py4j import Py4JBackend

    from byom.java import ensure_java

    ensure_java()
    backend = Py4JBackend()
    yield lambda doc: evaluator.make_evaluator(doc, backend=backend)
    Py4JBackend.destroyGateway()


@pytest.mark.parametrize("kind", ["xgboost", "xgboost3"])
def test_float_math_equals_live_jpmml(kind, jpmml):
    """Where jpmml-evaluator is installed (not a byom dependency): fresh XGBoost exports."""
    blob, rows = _classifier(kind)
    expected = jpmml(blob.decode()).verify().evaluateAll(rows)
    scorer = NativePmmlScorer(blob)
    got = scorer.predict(_features(scorer, rows), len(rows)).outputs
    for column in expected.columns:
        if column.startswith("probability"):
            np.testing.assert_array_equal(got[column].to_numpy(), expected[column].to_numpy())


# ----------------------------------------------------------------------------- 5. deep documents


def _transformed(transforms: str, feature: str) -> bytes:
    return f"""<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header/>
  <DataDictionary>
    <DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="y" optype="continuous" dataType="double"/>
  </DataDictionary>
  <TransformationDictionary>
{transforms}
  </TransformationDictionary>
  <RegressionModel functionName="regression">
    <MiningSchema><MiningField name="x"/><MiningField name="y" usageType="target"/></MiningSchema>
    <RegressionTable intercept="0"><NumericPredictor name="{feature}" coefficient="1"/>
    </RegressionTable>
  </RegressionModel>
</PMML>""".encode()


def _nested_apply(depth: int) -> str:
    return (
        '<DerivedField name="d" optype="continuous" dataType="double">'
        + '<Apply function="+"><Constant>1</Constant>' * depth
        + '<FieldRef field="x"/>'
        + "</Apply>" * depth
        + "</DerivedField>"
    )


def test_chain_of_5000_derived_fields_scores():
    """Each DerivedField adds 1 to the previous one: evaluated without recursion."""
    fields = ['<DerivedField name="d0" optype="continuous" dataType="double">'
              '<FieldRef field="x"/></DerivedField>']  # fmt: skip
    fields += [
        f'<DerivedField name="d{i}" optype="continuous" dataType="double">'
        f'<Apply function="+"><FieldRef field="d{i - 1}"/><Constant>1</Constant></Apply>'
        "</DerivedField>"
        for i in range(1, 5000)
    ]
    scorer = NativePmmlScorer(_transformed("\n".join(fields), "d4999"), "chain")
    pred = scorer.predict({"x": np.array([1.0, np.nan, -3.5])}, 3)
    np.testing.assert_array_equal(pred.value, [5000.0, np.nan, 4995.5])


def test_chain_of_derived_fields_through_duckdb(con, store):
    fields = ['<DerivedField name="d0" optype="continuous" dataType="double">'
              '<FieldRef field="x"/></DerivedField>']  # fmt: skip
    fields += [
        f'<DerivedField name="d{i}" optype="continuous" dataType="double">'
        f'<Apply function="*"><FieldRef field="d{i - 1}"/><Constant>1.0001</Constant></Apply>'
        "</DerivedField>"
        for i in range(1, 3000)
    ]
    store.add("chain", _transformed("\n".join(fields), "d2999"))
    got = sql(con, "SELECT score('chain', 2.0)").fetchall()[0][0]
    expected = 2.0
    for _ in range(2999):
        expected *= 1.0001
    assert got == pytest.approx(expected, rel=1e-12)


def test_deeply_nested_expression_refused_naming_model_and_line():
    with pytest.raises(InvalidModelError) as caught:
        NativePmmlScorer(_transformed(_nested_apply(300), "d"), "deep")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("model 'deep': <")
    assert "at line 8" in message and "more than 200 levels deep" in message
    assert "DerivedFields" in message  # what to do instead


def test_nesting_below_the_limit_scores():
    scorer = NativePmmlScorer(_transformed(_nested_apply(190), "d"))
    np.testing.assert_array_equal(scorer.predict({"x": np.array([0.5])}, 1).value, [190.5])


def test_deeply_nested_predicate_refused():
    predicate = '<CompoundPredicate booleanOperator="or"><False/>' * 400 + "<True/>"
    predicate += "</CompoundPredicate>" * 400
    doc = f"""<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header/>
  <DataDictionary><DataField name="x" optype="continuous" dataType="double"/>
    <DataField name="y" optype="continuous" dataType="double"/></DataDictionary>
  <TreeModel functionName="regression">
    <MiningSchema><MiningField name="x"/><MiningField name="y" usageType="target"/></MiningSchema>
    <Node score="0"><True/><Node score="1">{predicate}</Node></Node>
  </TreeModel>
</PMML>""".encode()
    with pytest.raises(InvalidModelError, match=r"model 'p': <\w+> at line 7 nests .* 200 levels"):
        NativePmmlScorer(doc, "p")


def test_absurdly_deep_xml_refused_while_parsing():
    with pytest.raises(InvalidModelError, match=r"model 'x': the element at line 8 .*1000 levels"):
        NativePmmlScorer(_transformed(_nested_apply(20_000), "d"), "x")


def test_self_reference_refused_not_recursing():
    """A local DerivedField that reads its own name: a typed error, not a RecursionError."""
    local = (
        b'<LocalTransformations><DerivedField name="a" dataType="double" optype="continuous">'
        b'<Apply function="+"><FieldRef field="a"/><Constant>1</Constant></Apply>'
        b"</DerivedField></LocalTransformations><MiningSchema>"
    )
    fields = '<DerivedField name="a" optype="continuous" dataType="double"><FieldRef field="x"/>'
    doc = _transformed(fields + "</DerivedField>", "a").replace(b"<MiningSchema>", local, 1)
    with pytest.raises(InvalidModelError, match="'a' is defined in terms of itself"):
        NativePmmlScorer(doc).predict({"x": np.array([2.0])}, 1)


# ----------------------------------------------------------------------------- 4. TextIndex

_WORDS = ["good", "Bad", "great", "awful", "movie", "plot", "actor", "boring", "fun", "not"]
#: Texts every reference tokenizes alike, and some only JPMML / scikit-learn do (a vertical tab
#: separates words, guillemets are punctuation); pypmml tokenizes those differently.
_TEXTS = [
    "good movie, great plot!",
    "Bad  BAD awful",
    "the actor is not very good",
    "",
    None,
    "fun. fun, fun; boring",
    "a-good (great) movie",
    "good good good movie movie",
]
_EXOTIC = ["\u00abgood\u00bb\tmovie\x0bplot", "GOOD\u2014movie"]


@functools.cache
def _text_pipeline(kind: str) -> tuple[bytes, Any]:
    """TfidfVectorizer (or a CountVectorizer of words and pairs) + LogisticRegression."""
    from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn2pmml.feature_extraction.text import Splitter
    from sklearn2pmml.pipeline import PMMLPipeline

    from byom.export import sklearn_to_pmml

    rng = np.random.default_rng(3)
    docs = [" ".join(rng.choice(_WORDS, size=rng.integers(2, 10))) for _ in range(200)]
    y = pd.Series([int(d.count("good") + d.count("fun") > d.count("Bad")) for d in docs], name="y")
    if kind == "tfidf":
        vectorizer: Any = TfidfVectorizer(tokenizer=Splitter(), token_pattern=None, norm=None)
    else:
        vectorizer = CountVectorizer(tokenizer=Splitter(), token_pattern=None, ngram_range=(1, 2))
    pipe = PMMLPipeline([("text", vectorizer), ("clf", LogisticRegression())])
    pipe.fit(pd.Series(docs, name="text"), y)
    return sklearn_to_pmml(pipe), pipe


@pytest.mark.parametrize("kind", ["tfidf", "count"])
def test_text_pipeline_matches_pypmml_and_scikit_learn(kind):
    """sklearn2pmml writes a DefineFunction around TextIndex (tf, or tf * idf) per term."""
    blob, pipe = _text_pipeline(kind)
    native, jvm = scorer_pair(blob)
    texts = np.array(_TEXTS, dtype=object)
    mine, theirs = native.predict({"text": texts}, len(texts)), jvm.predict({"text": texts}, 8)
    present = np.array([t is not None for t in _TEXTS])
    assert_close(mine.probabilities[present], theirs.probabilities[present], PMML_DOUBLE)
    assert np.isnan(mine.probabilities[~present]).all()  # a missing text: no prediction
    everything = [t for t in _TEXTS if t is not None] + _EXOTIC
    pred = native.predict({"text": np.array(everything, dtype=object)}, len(everything))
    assert_close(pred.probabilities, pipe.predict_proba(everything), PMML_DOUBLE)


def test_text_pipeline_through_duckdb(con, store):
    blob, pipe = _text_pipeline("tfidf")
    store.add("tfidf", blob)
    texts = [t for t in _TEXTS if t is not None]
    con.register("docs", pd.DataFrame({"id": range(len(texts)), "text": texts}))
    got = sql(con, "SELECT predict_json('tfidf', *) FROM docs ORDER BY id").fetchall()
    have = [json.loads(r[0])["probability(1)"] for r in got]
    assert_close(have, pipe.predict_proba(texts)[:, 1], PMML_DOUBLE)


def _text_doc(index_attrs: str, term: str, normalization: str = "") -> bytes:
    return f"""<?xml version="1.0"?>
<PMML xmlns="http://www.dmg.org/PMML-4_4" version="4.4"><Header/>
  <DataDictionary>
    <DataField name="text" optype="categorical" dataType="string"/>
    <DataField name="y" optype="continuous" dataType="double"/>
  </DataDictionary>
  <RegressionModel functionName="regression">
    <MiningSchema><MiningField name="text"/><MiningField name="y" usageType="target"/>
    </MiningSchema>
    <LocalTransformations>
      <DerivedField name="tf" optype="continuous" dataType="double">
        <TextIndex textField="text" {index_attrs}>{normalization}
          <Constant dataType="string">{term}</Constant>
        </TextIndex>
      </DerivedField>
    </LocalTransformations>
    <RegressionTable intercept="0"><NumericPredictor name="tf" coefficient="1"/>
    </RegressionTable>
  </RegressionModel>
</PMML>""".encode()


def _tf(doc: bytes, texts: list[str | None]) -> list[float]:
    pred = NativePmmlScorer(doc).predict({"text": np.array(texts, dtype=object)}, len(texts))
    return [None if np.isnan(v) else float(v) for v in pred.value]


_SAMPLE = ["The brown fox, the BROWN fox!", "brown-fox brown fox brown", "(brown) «fox»", "", None]


@pytest.mark.parametrize(
    ("attrs", "term", "expected"),
    [
        ("", "brown fox", [2, 1, 1, 0, None]),  # case-insensitive, punctuation trimmed
        ('isCaseSensitive="true"', "brown fox", [1, 1, 1, 0, None]),
        ('localTermWeights="binary"', "fox", [1, 1, 1, 0, None]),
        (
            'localTermWeights="logarithmic"',
            "brown",
            [np.log10(3), np.log10(3), np.log10(2), 0, None],
        ),
        ('wordSeparatorCharacterRE="[\\s\\-]+"', "brown fox", [2, 2, 1, 0, None]),
        ('x-wordRE="[a-z]+"', "brown fox", [1, 2, 1, 0, None]),  # BROWN is no [a-z]+ match
        ("", "", [0, 0, 0, 0, None]),
    ],
)
def test_text_index_counts_as_jpmml(attrs, term, expected):
    """Counts by hand, following JPMML's TextUtil.termFrequency and TextSplitter (and checked
    against JPMML-Evaluator 1.7.7)."""
    assert _tf(_text_doc(attrs, term), _SAMPLE) == pytest.approx(expected, nan_ok=True)


def test_text_index_counts_overlapping_matches():
    assert _tf(_text_doc("", "ha ha"), ["ha ha ha", "ha", "ha. ha! ha? ha"]) == [2, 0, 3]


def test_text_index_normalization_as_jpmml():
    """Rows apply in order (regex or literal, case-insensitive by default); `recursive`
    repeats the table until the text stops changing (as JPMML-Evaluator 1.7.7 counts)."""
    table = """<TextIndexNormalization recursive="true"><InlineTable>
      <row><string>colou?r</string><stem>hue</stem><regex>true</regex></row>
      <row><string>hue hue</string><stem>hue</stem></row>
      <row><string>a.b</string><stem>dot</stem></row>
    </InlineTable></TextIndexNormalization>"""
    texts = ["Color colour COLOR", "hue", "a.b axb", None]
    assert _tf(_text_doc("", "hue", table), texts) == [1, 1, 0, None]
    assert _tf(_text_doc("", "dot", table), texts) == [0, 0, 1, None]


@pytest.mark.parametrize(
    ("attrs", "what"),
    [
        ('maxLevenshteinDistance="1"', 'maxLevenshteinDistance="1"'),
        ('tokenize="false"', 'tokenize="false"'),
        ('localTermWeights="augmentedNormalizedTermFrequency"', "augmentedNormalizedTermFreq"),
    ],
)
def test_text_index_options_jpmml_refuses_are_refused_by_name(attrs, what):
    with pytest.raises(UnsupportedPmmlError, match=rf"{what}.*\(line 12\)"):
        NativePmmlScorer(_text_doc(attrs, "fox"))
