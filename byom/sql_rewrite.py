"""Rewrite `score(model_id, *)` into each engine's by-name row form.

Engines either refuse `*` inside a function call (DuckDB) or pass the columns positionally with
their names lost (Spark). byom's SQL entry points rewrite that argument to a named row. Only the
`*` token is replaced, located with sqlglot's tokenizer, so the rest of the user's SQL reaches
the engine byte for byte (regenerating it could change engine-specific syntax).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import Token, TokenType

SCORING_FUNCTIONS = frozenset({"score", "predict", "predict_json"})


#: How an engine spells "the whole row, with its column names", optionally of one table (the
#: table's name as written, quotes included). Each engine adapter supplies its own.
RowForm = Callable[[str | None], str]


def expand_star_arguments(sql: str, dialect: str, row_form: RowForm) -> str:
    """Replace each `*` or `alias.*` argument of score/predict/predict_json by `row_form`'s
    named row; `dialect` is the sqlglot dialect whose tokenizer reads the SQL."""
    tokens: list[Token] = Dialect.get_or_raise(dialect).tokenize(sql)
    edits: list[tuple[int, int, str]] = []
    # Stack of open parentheses: True where the parenthesis opens a scoring-function call.
    stack: list[bool] = []
    for i, tok in enumerate(tokens):
        if tok.token_type == TokenType.L_PAREN:
            prev = tokens[i - 1] if i else None
            is_call = (
                prev is not None
                and prev.text.lower() in SCORING_FUNCTIONS
                and (i < 2 or tokens[i - 2].token_type != TokenType.DOT)
            )
            stack.append(is_call)
        elif tok.token_type == TokenType.R_PAREN:
            if stack:
                stack.pop()
        elif tok.token_type == TokenType.STAR and stack and stack[-1]:
            before = tokens[i - 1]
            after = tokens[i + 1] if i + 1 < len(tokens) else None
            if after is None or after.token_type not in (TokenType.COMMA, TokenType.R_PAREN):
                continue
            if before.token_type in (TokenType.COMMA, TokenType.L_PAREN):
                edits.append((tok.start, tok.end, row_form(None)))
            elif (
                before.token_type == TokenType.DOT
                and i >= 2
                and tokens[i - 3].token_type in (TokenType.COMMA, TokenType.L_PAREN)
            ):
                table = tokens[i - 2]
                start = table.start - (
                    1 if sql[table.start - 1 : table.start] in '"`' and table.start else 0
                )
                edits.append((start, tok.end, row_form(sql[start : tokens[i - 1].start])))
    for start, end, text in reversed(edits):
        sql = sql[:start] + text + sql[end + 1 :]
    return sql
