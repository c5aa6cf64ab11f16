"""Bad models and bad input fail loudly, naming the model, the column or the value at fault.

What every engine must refuse alike (an unknown model id, a missing column, a value of the wrong
type, an unseen category, the wrong number of values) is tested once per engine in
tests/conformance; this module has the model store's refusals and the PMML value checks.
"""

from __future__ import annotations

import duckdb
import pytest
from helpers import IRIS_FEATURES, LINEAR_PMML

from byom import config
from byom.errors import (
    InvalidModelError,
    ModelExistsError,
    ModelTooLargeError,
    UnknownModelError,
    UnsafeModelError,
    UnsupportedFormatError,
)


def test_unknown_model_in_core_message():
    err = UnknownModelError("irsi", ["iris", "wine"], "byom_models")
    assert str(err) == "unknown model id 'irsi' in table byom_models; did you mean 'iris'?"
    empty = UnknownModelError("x", [], "byom_models")
    assert "holds no models" in str(empty)


def test_nulls_are_missing_values_not_dropped_rows(con, store, iris_logreg):
    store.add("iris", iris_logreg[1], inputs=",".join(IRIS_FEATURES))
    rows = con.execute(
        "SELECT predict('iris', a, b, c, d) FROM "
        "(VALUES (5.1, 3.5, 1.4, 0.2), (NULL, NULL, NULL, NULL),"
        " (6.0, NULL, 4.0, 1.0)) v(a, b, c, d)"
    ).fetchall()
    assert len(rows) == 3
    assert rows[0][0]["label"] == "0"


def test_corrupt_blob_refused_at_save(store):
    with pytest.raises(UnsupportedFormatError, match="in none of the formats byom knows"):
        store.add("junk", b"\x00\x01garbage")
    with pytest.raises(InvalidModelError, match="cannot be loaded by onnxruntime"):
        store.add("bad_onnx", b"\x08\x07\x12\x05hello\x3a\x02zz")
    with pytest.raises(UnsupportedFormatError, match="empty"):
        store.add("empty", b"")
    with pytest.raises(UnsupportedFormatError, match="root element is not PMML"):
        store.add("xml", b"<?xml version='1.0'?><html></html>")
    assert store.model_ids() == []


def test_truncated_pmml_refused(store):
    with pytest.raises(InvalidModelError, match="not well-formed XML"):
        store.add("cut", LINEAR_PMML[: len(LINEAR_PMML) // 2])


def test_pmml_that_fails_sample_row_refused(store):
    broken = LINEAR_PMML.replace(b'<NumericPredictor name="x"', b'<NumericPredictor name="nope"')
    with pytest.raises(InvalidModelError, match="model 'broken'"):
        store.add("broken", broken)


@pytest.mark.parametrize(
    "doc",
    [
        b'<?xml version="1.0"?><!DOCTYPE PMML [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b'<PMML version="4.4">&b;</PMML>',
        b'<?xml version="1.0"?><!DOCTYPE PMML [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<PMML version="4.4"><Header description="&xxe;"/></PMML>',
        b'<!DOCTYPE PMML SYSTEM "http://example.invalid/pmml.dtd"><PMML version="4.4"/>',
    ],
    ids=["billion-laughs", "external-entity", "external-dtd"],
)
def test_pmml_with_doctype_or_entities_refused(store, doc):
    with pytest.raises(UnsafeModelError, match="DOCTYPE or ENTITY"):
        store.add("evil", doc)


def test_oversized_blob_refused(store, monkeypatch):
    monkeypatch.setattr(config, "MAX_MODEL_BYTES", len(LINEAR_PMML) - 1)
    with pytest.raises(ModelTooLargeError, match="over the limit"):
        store.add("big", LINEAR_PMML)


def test_existing_id_needs_replace(store):
    store.add("lin", LINEAR_PMML)
    with pytest.raises(ModelExistsError, match="--replace"):
        store.add("lin", LINEAR_PMML)
    store.add("lin", LINEAR_PMML, replace=True)


def test_input_map_naming_unknown_input(store, iris_logreg):
    with pytest.raises(Exception, match="not an input of model 'iris'"):
        store.add("iris", iris_logreg[1], inputs="nope=a,b,c,d")
    with pytest.raises(Exception, match="gives 2 column"):
        store.add("iris", iris_logreg[1], inputs="a,b")


def test_engine_not_installed_names_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name == "duckdb":
            raise ImportError("no duckdb")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    from udfs.duckdb._engine import import_duckdb

    with pytest.raises(ImportError, match=r"pip install 'byom\[duckdb\]'"):
        import_duckdb()


def test_unseen_category_allowed_when_model_says_as_is(con, store):
    as_is = LINEAR_PMML.replace(
        b'<MiningField name="color"/>', b'<MiningField name="color" invalidValueTreatment="asIs"/>'
    )
    store.add("lin", as_is)
    got = con.execute("SELECT score('lin', 1.0, 2.0, 'green')").fetchall()
    assert got == [(2.0,)]  # 1 + 2*1 - 0.5*2, no category term


def test_value_outside_declared_interval_fails_loudly(con, store):
    ranged = LINEAR_PMML.replace(
        b'<DataField name="x" optype="continuous" dataType="double"/>',
        b'<DataField name="x" optype="continuous" dataType="double">'
        b'<Interval closure="closedOpen" leftMargin="0" rightMargin="10"/></DataField>',
    )
    store.add("ranged", ranged)
    ok = con.execute("SELECT score('ranged', 0.0, 0.0, 'red'), score('ranged', NULL, 0.0, 'red')")
    assert ok.fetchall()[0][0] == 4.0
    with pytest.raises(duckdb.Error, match=r"x = 10\.0 \(row 1 of the batch.*range \[0, 10\)"):
        con.execute("SELECT score('ranged', 10.0, 0.0, 'red')").fetchall()
