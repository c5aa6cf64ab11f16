"""`score(model_id, *)` is rewritten to each engine's named-row form, and nothing else changes."""

from __future__ import annotations

import pytest

from byom.sql_rewrite import expand_star_arguments


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
    assert expand_star_arguments(query, "duckdb") == duckdb
    assert expand_star_arguments(query, "spark") == spark


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
    assert expand_star_arguments(query, "duckdb") == query


def test_nested_call_inside_other_function():
    q = "SELECT round(score(m, *), 3), sum(predict(m, *).score) FROM t"
    assert expand_star_arguments(q, "duckdb") == (
        "SELECT round(score(m, struct_pack(*COLUMNS(*))), 3), "
        "sum(predict(m, struct_pack(*COLUMNS(*))).score) FROM t"
    )


def test_unknown_dialect():
    with pytest.raises(ValueError, match="no star rewrite for dialect 'oracle'"):
        expand_star_arguments("SELECT 1", "oracle")
