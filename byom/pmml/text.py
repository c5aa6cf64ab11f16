"""TextIndex (PMML 4.4): how often a term occurs in a text, for bag-of-words and tf-idf models
such as scikit-learn's CountVectorizer / TfidfVectorizer exported by sklearn2pmml.

Evaluated as JPMML does (TextUtil, TextSplitter): the text goes through its
TextIndexNormalizations (regex or literal replacements, in row order, repeated while
`recursive` changes it), is split at `wordSeparatorCharacterRE` (default \\s+) or, with JPMML's
`x-wordRE`, cut into the matches of that pattern; split tokens lose leading and trailing
punctuation (Unicode category P) and empty ones are dropped. The term is tokenized the same
way, without normalization. A match is the term's tokens in sequence, compared
case-insensitively unless isCaseSensitive="true" (tokens are cut from the text as written, then
compared); overlapping matches count.
localTermWeights: termFrequency (the count), binary (0 / 1), logarithmic (log10(1 + count)).
A missing text or term gives a missing value.

Refused, as JPMML refuses them: tokenize="false" and augmentedNormalizedTermFrequency.
maxLevenshteinDistance > 0 (fuzzy matching) is refused too; sklearn2pmml writes 0.

Vectorized: a batch's texts are normalized, split and trimmed with pyarrow.compute (RE2;
patterns RE2 cannot compile fall back to Python's re, row by row), and their tokens
dictionary-encoded once per batch and TextIndex settings (`Scope.cache`), so the hundreds of
TextIndex calls of a tf-idf model share one tokenization. Counting one term is then a lookup
of its first token's positions and a comparison of the following ones: no per-row Python.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from byom.errors import InvalidModelError
from byom.pmml.fields import is_missing, numbers_as_text
from byom.pmml.scope import Context, Expr, Scope
from byom.pmml.xml import children

_WEIGHTS = ("termFrequency", "binary", "logarithmic")
#: Java's \s (RE2's lacks \x0B).
_JAVA_SPACE = "[ \\t\\n\\x0B\\f\\r]"
_PUNCTUATION_RE2 = r"^\p{P}+|\p{P}+$"
#: Most passes of a recursive TextIndexNormalization before the document is refused.
MAX_PASSES = 100


@dataclass(frozen=True)
class _Rule:
    pattern: str
    replacement: str


@dataclass(frozen=True)
class _Normalization:
    rules: tuple[_Rule, ...]
    case_sensitive: bool
    recursive: bool


@dataclass(frozen=True)
class _Settings:
    """What a text's tokens depend on: the cache key of a tokenization."""

    normalizations: tuple[_Normalization, ...]
    separator: str | None
    word: str | None
    case_sensitive: bool


def compile_text_index(ctx: Context, element: Element, term: Expr) -> tuple[Expr, str]:
    from byom.pmml.expressions import field_name

    text_field = field_name(ctx, element, "textField")
    weights = element.get("localTermWeights", "termFrequency")
    if weights == "augmentedNormalizedTermFrequency":
        raise ctx.doc.unsupported(element, 'TextIndex localTermWeights="' + weights + '"')
    if weights not in _WEIGHTS:
        raise ctx.doc.invalid(element, f'has localTermWeights="{weights}"')
    if element.get("tokenize", "true") != "true":
        raise ctx.doc.unsupported(element, 'TextIndex tokenize="false"')
    distance = _int(ctx, element, "maxLevenshteinDistance")
    if distance:
        raise ctx.doc.unsupported(
            element, f'TextIndex maxLevenshteinDistance="{distance}" (fuzzy term matching)'
        )
    if element.get("countHits", "allHits") not in ("allHits", "bestHits"):
        raise ctx.doc.invalid(element, f'has countHits="{element.get("countHits")}"')
    case_sensitive = element.get("isCaseSensitive", "false") == "true"
    settings = _Settings(
        tuple(
            _normalization(ctx, n, case_sensitive)
            for n in children(element, "TextIndexNormalization")
        ),
        element.get("wordSeparatorCharacterRE", r"\s+"),
        element.get("x-wordRE") or element.get("wordRE"),
        case_sensitive,
    )
    for pattern in (settings.separator, settings.word):
        _check_pattern(ctx, element, pattern)

    def text_index(scope: Scope) -> np.ndarray:
        text = scope.get(text_field)
        terms = term(scope)
        tokens = _tokens(scope, text, settings)
        out = np.full(scope.n, np.nan)
        term_text = terms if terms.dtype == object else numbers_as_text(terms)
        values = pd.unique(term_text)
        if len(values) == 1:  # a constant term: what sklearn2pmml writes
            if values[0] is not None and values[0] == values[0]:
                counts = tokens.count(_tokenize_one(str(values[0]), settings))
                out = np.where(tokens.missing, np.nan, counts)
        else:
            present = ~is_missing(term_text) & ~tokens.missing
            for value in pd.unique(term_text[present]):
                counts = tokens.count(_tokenize_one(str(value), settings))
                rows = present & (term_text == value)
                out[rows] = counts[rows]
        if weights == "binary":
            out = np.minimum(out, 1.0)
        elif weights == "logarithmic":
            out = np.log10(1.0 + out)
        return out

    return text_index, "double" if weights == "logarithmic" else "integer"


def _int(ctx: Context, element: Element, attr: str) -> int:
    try:
        value = int(element.get(attr, "0"))
    except ValueError:
        value = -1
    if value < 0:
        raise ctx.doc.invalid(element, f'has {attr}="{element.get(attr)}"')
    return value


def _check_pattern(ctx: Context, element: Element, pattern: str | None) -> None:
    if pattern is None:
        return
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ctx.doc.invalid(
            element, f"has the invalid regular expression {pattern!r}: {exc}"
        ) from None


def _normalization(ctx: Context, element: Element, case_sensitive: bool) -> _Normalization:
    in_field = element.get("inField", "string")
    out_field = element.get("outField", "stem")
    regex_field = element.get("regexField", "regex")
    if element.get("isCaseSensitive") is not None:
        case_sensitive = element.get("isCaseSensitive") == "true"
    table = next((c for c in element if c.tag == "InlineTable"), None)
    if table is None:
        if any(c.tag == "TableLocator" for c in element):
            raise ctx.doc.unsupported(element, "TextIndexNormalization with a TableLocator")
        return _Normalization((), case_sensitive, False)
    rules = []
    for row in children(table, "row"):
        cells = {c.tag: c.text or "" for c in row}
        if in_field not in cells or out_field not in cells:
            raise ctx.doc.invalid(row, f"has no {in_field!r} or {out_field!r} cell")
        regex = cells.get(regex_field, "false").strip().lower() == "true"
        pattern = cells[in_field] if regex else _literal(cells[in_field])
        _check_pattern(ctx, row, pattern)
        # Java's replacement syntax ($1) in Python's (\1); a literal backslash stays one.
        replacement = re.sub(r"\$(\d+)", r"\\\1", cells[out_field].replace("\\", "\\\\"))
        rules.append(_Rule(pattern, replacement))
    recursive = element.get("recursive", "false") == "true"
    return _Normalization(tuple(rules), case_sensitive, recursive)


def _literal(text: str) -> str:
    """A pattern matching `text` literally, in syntax both RE2 and Python's re accept."""
    return re.sub(r"([\\.^$|?*+()\[\]{}])", r"\\\1", text)


# ----------------------------------------------------------------------------- tokens


class _Tokens:
    """A batch of texts as one flat token array: `rows` (the text each token is from) and
    `ids` (dictionary codes), with each code's positions for term lookups."""

    def __init__(self, n: int, rows: np.ndarray, tokens: pa.Array, missing: np.ndarray) -> None:
        self.n = n
        #: Texts that are missing: their counts are missing too.
        self.missing = missing
        encoded = pc.dictionary_encode(tokens) if len(tokens) else None
        if encoded is None:
            self.rows = np.zeros(0, np.int64)
            self.ids = np.zeros(0, np.int64)
            self.vocabulary: dict[str, int] = {}
        else:
            self.rows = rows
            self.ids = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.int64)
            words = encoded.dictionary.to_pylist()
            self.vocabulary = {w: i for i, w in enumerate(words)}
        self.order = np.argsort(self.ids, kind="stable")
        self.bounds = np.searchsorted(
            self.ids[self.order], np.arange(len(self.vocabulary) + 1), side="left"
        )

    def count(self, term: tuple[str, ...]) -> np.ndarray:
        """Per text, how often the term's tokens occur in sequence (overlaps count)."""
        codes = [self.vocabulary.get(t) for t in term]
        if not term or any(c is None for c in codes):
            return np.zeros(self.n)
        first = codes[0]
        assert first is not None
        at = self.order[self.bounds[first] : self.bounds[first + 1]]
        for j, code in enumerate(codes[1:], start=1):
            nxt = at + j
            ok = nxt < len(self.ids)
            nxt = np.where(ok, nxt, 0)
            ok &= (self.ids[nxt] == code) & (self.rows[nxt] == self.rows[at])
            at = at[ok]
        return np.bincount(self.rows[at], minlength=self.n).astype(np.float64)


def _tokens(scope: Scope, text: np.ndarray, settings: _Settings) -> _Tokens:
    key = ("TextIndex", id(text), settings)
    hit = scope.cache.get(key)
    if hit is not None and hit[0] is text:
        return hit[1]
    strings = text if text.dtype == object else numbers_as_text(text)
    arr = pa.array(strings, pa.string(), from_pandas=True)
    for normalization in settings.normalizations:
        arr = _normalize(arr, normalization)
    if settings.word is not None:
        rows, tokens = _find_words(arr, settings.word)
    else:
        rows, tokens = _split(arr, settings.separator or r"\s+")
    if not settings.case_sensitive:  # tokens are cut from the text as written, then compared
        tokens = pc.utf8_lower(tokens)
    missing = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), bool)
    result = _Tokens(len(text), rows, tokens, missing)
    scope.cache[key] = (text, result)  # keeps `text` alive, so its id is not reused
    return result


def _normalize(arr: pa.Array, normalization: _Normalization) -> pa.Array:
    flags = "" if normalization.case_sensitive else "(?i)"
    for _ in range(MAX_PASSES):
        before = arr
        for rule in normalization.rules:
            arr = _replace(arr, flags + rule.pattern, rule.replacement)
        if not normalization.recursive or arr.equals(before):
            return arr
    raise InvalidModelError(
        f"a recursive TextIndexNormalization still changes the text after {MAX_PASSES} passes: "
        "its replacements never settle; fix the normalization table"
    )


def _replace(arr: pa.Array, pattern: str, replacement: str) -> pa.Array:
    try:
        return pc.replace_substring_regex(arr, pattern, replacement)
    except pa.ArrowInvalid:  # a pattern RE2 cannot run (lookaround, backreferences)
        compiled = re.compile(pattern)
        values = [None if v is None else compiled.sub(replacement, v) for v in arr.to_pylist()]
        return pa.array(values, pa.string())


def _split(arr: pa.Array, separator: str) -> tuple[np.ndarray, pa.Array]:
    """JPMML's TextSplitter: split, trim punctuation from each token, drop empty ones."""
    pattern = _JAVA_SPACE + "+" if separator == r"\s+" else separator
    try:
        lists = pc.split_pattern_regex(arr, pattern)
    except pa.ArrowInvalid:
        compiled = re.compile(separator)
        lists = pa.array(
            [None if v is None else compiled.split(v) for v in arr.to_pylist()],
            pa.list_(pa.string()),
        )
    rows = np.asarray(pc.list_parent_indices(lists).to_numpy(), np.int64)
    tokens = pc.replace_substring_regex(pc.list_flatten(lists), _PUNCTUATION_RE2, "")
    keep = pc.greater(pc.utf8_length(tokens), 0)
    return rows[np.asarray(keep.to_numpy(zero_copy_only=False), bool)], tokens.filter(keep)


def _find_words(arr: pa.Array, word: str) -> tuple[np.ndarray, pa.Array]:
    """JPMML's TextMatcher (x-wordRE): the matches of the pattern, in order."""
    compiled = re.compile(word)
    rows: list[int] = []
    tokens: list[str] = []
    for i, v in enumerate(arr.to_pylist()):  # pyarrow has no find-all: one call per text
        if v is None:
            continue
        found = [m.group(0) for m in compiled.finditer(v)]
        rows.extend([i] * len(found))
        tokens.extend(found)
    return np.array(rows, np.int64), pa.array(tokens, pa.string())


@functools.lru_cache(maxsize=65536)
def _tokenize_one(term: str, settings: _Settings) -> tuple[str, ...]:
    """A term's tokens, as the text's are made but without normalization."""
    arr = pa.array([term], pa.string())
    if settings.word is not None:
        _, tokens = _find_words(arr, settings.word)
    else:
        _, tokens = _split(arr, settings.separator or r"\s+")
    if not settings.case_sensitive:
        tokens = pc.utf8_lower(tokens)
    return tuple(tokens.to_pylist())
