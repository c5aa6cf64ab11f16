"""`score(model_id, *)` is rewritten to each engine's named-row form, and nothing else changes."""

from __future__ import annotations

import pytest

from byom.sql_rewrite import expand_star_arguments
from udfs.duckdb.functions import row_form as duckdb_row
from udfs.spark.functions import row_form as spark_row


def duckdb_sql(query: str) -> str:
    return expand_star_arguments(query, "duckdb", duckdb_row)


@pytest.mark.parametrize(
    ("query", "duckdb", "spark"),
    [
        (
            "SELECT score(model_id, *) FROM t",
            "SELECT score(model_id, struct_pack(*COLUMNS(*))) FROM t",
            "SELECT score(model_id, struct(*)) FROM t",
        ),
        (
            "select id, Predict(m, *) p, predict_json('x',*) j, count(*) from t group by all",
            "select id, Predict(m, struct_pack(*COLUMNS(*))) p, "
            "predict_json('x',struct_pack(*COLUMNS(*))) j, count(*) from t group by all",
            "select id, Predict(m, struct(*)) p, predict_json('x',struct(*)) j, count(*) "
            "from t group by all",
        ),
        (
            'SELECT score(c.model_id, "c".*) FROM customers c JOIN seg s USING (k)',
            'SELECT score(c.model_id, "c") FROM customers c JOIN seg s USING (k)',
            'SELECT score(c.model_id, struct("c".*)) FROM customers c JOIN seg s USING (k)',
        ),
    ],
)
def test_rewrites(query, duckdb, spark):
    assert duckdb_sql(query) == duckdb
    assert expand_star_arguments(query, "spark", spark_row) == spark


@pytest.mark.parametrize(
    "query",
    [
        "SELECT count(*), '*', score('m', a * b) FROM t -- score(m, *)",
        "SELECT x.score(a, *) FROM t",
        "SELECT coalesce(score('m', a), 0) * 2 FROM t",
        "SELECT 'score(m, *)' AS s",
    ],
)
def test_other_stars_untouched(query):
    assert duckdb_sql(query) == query


def test_nested_call_inside_other_function():
    q = "SELECT round(score(m, *), 3), sum(predict(m, *).score) FROM t"
    assert duckdb_sql(q) == (
        "SELECT round(score(m, struct_pack(*COLUMNS(*))), 3), "
        "sum(predict(m, struct_pack(*COLUMNS(*))).score) FROM t"
    )


def test_the_row_form_comes_from_the_caller():
    """The core knows no engine's spelling of a row: each adapter hands in its own."""
    q = "SELECT score(m, *), score(m, t.*) FROM t"
    got = expand_star_arguments(q, "postgres", lambda t: f"ROW_OF({t or 'ALL'})")
    assert got == "SELECT score(m, ROW_OF(ALL)), score(m, ROW_OF(t)) FROM t"
