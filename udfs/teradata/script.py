"""The SCRIPT table operator's side of byom: rows on stdin, scores on stdout.

Teradata starts one instance per AMP and writes that AMP's rows to stdin as delimited text, one
row per line, NULL as an empty field; it reads result rows back from stdout in the same format
and converts them to the RETURNS types. This module reads stdin in large blocks, parses each
block with pyarrow's CSV reader (vectorized, no per-row Python), scores it with the core and
writes the block's results before reading the next. Every input row yields one output row; a
malformed line fails the whole script with its line number (the server then fails the query).

Models reach the script either as installed files (`--model-file ID=./db/file`) or as base64
text in a column of the first row of each partition (`--model-data-column`), the pattern
Teradata documents for SCRIPT, which has no DIMENSION input. Either way they are keyed by
content hash: a model seen before is never decoded or loaded again.
"""

from __future__ import annotations

import argparse
import binascii
import hashlib
import json
import os
import re
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from byom import config
from byom.errors import ByomError, InputError, ModelTooLargeError, UnknownModelError
from byom.formats import check_size
from byom.inputs import parse_input_map
from byom.outputs import OutputKind
from byom.scoring import InMemoryModels, StatementModels, score_batch

#: Bytes of stdin parsed at once: large enough that pyarrow and the model dominate, not Python,
#: and small enough that a block's copies (text, Arrow columns, the model's tensors and
#: onnxruntime's arena, the output text) stay a few tens of MB.
BLOCK_BYTES = 4 << 20
#: Room on one line beside a model's base64 text, for the other columns (accumulated VARCHARs).
LINE_SLACK_BYTES = 64 << 20
#: pyarrow parses a block in one piece only up to an int32 block size (and string offsets).
_ARROW_MAX_BLOCK = (1 << 31) - 2
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")

OUTPUT_FIELDS = ("prediction", "json_report", "score", "label")
PROBABILITY = re.compile(r"^prob(?:ability)?[_:](.+)$", re.IGNORECASE)


def check_outputs(outputs: list[str]) -> list[str]:
    """The output columns asked for, each one byom knows how to write."""
    for out in outputs:
        if out.lower() not in OUTPUT_FIELDS and not PROBABILITY.match(out):
            raise ByomError(
                f"unknown output {out!r}: use prediction, json_report, score, label or prob_<class>"
            )
    return outputs


class ScriptInputError(ByomError):
    """A line of stdin that does not match the declared columns."""


def base64_chars(limit: int) -> int:
    """The longest base64 text of a model of at most `limit` bytes."""
    return -(-limit // 3) * 4


def max_line_bytes() -> int:
    """The longest line read: a model's base64 text within BYOM_MAX_MODEL_BYTES plus room for
    the other columns. A longer line is refused before it is held whole."""
    return min(base64_chars(config.MAX_MODEL_BYTES) + LINE_SLACK_BYTES, _ARROW_MAX_BLOCK)


def read_model_file(path: str, model_id: str) -> bytes:
    """An installed model file, its size checked before its bytes are read (and the read
    bounded, should the file grow meanwhile)."""
    limit = config.MAX_MODEL_BYTES
    try:
        with open(path, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ByomError(
                    f"model file {path!r} for {model_id!r} is not a regular file; install the "
                    "model with `byom teradata deploy --models`"
                )
            if info.st_size > limit:
                raise _too_large(model_id, f"file {path!r} is {info.st_size:,} bytes", limit)
            blob = fh.read(limit + 1)
    except OSError as exc:
        raise ByomError(f"cannot read model file {path!r} for {model_id!r}: {exc}") from None
    if len(blob) > limit:
        raise _too_large(model_id, f"file {path!r} is over {limit:,} bytes", limit)
    return blob


def _too_large(model_id: str, what: str, limit: int) -> ModelTooLargeError:
    return ModelTooLargeError(
        f"model {model_id!r}: its {what}, over the limit of {limit:,} bytes; raise "
        "BYOM_MAX_MODEL_BYTES if this model is trusted and really that large"
    )


def _value_view(arr: pa.Array, i: int) -> memoryview:
    """Value i of a string array as a view of Arrow's buffer: a model's text is never copied
    into a Python str."""
    wide = pa.types.is_large_string(arr.type) or pa.types.is_large_binary(arr.type)
    offsets = np.frombuffer(arr.buffers()[1], np.int64 if wide else np.int32)
    start, end = int(offsets[arr.offset + i]), int(offsets[arr.offset + i + 1])
    data = arr.buffers()[2]
    return memoryview(data)[start:end] if data is not None else memoryview(b"")


# -- column declarations ------------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    name: str
    type: str  # Teradata type as declared, upper case

    @property
    def arrow_type(self) -> pa.DataType:
        base = self.type.split("(")[0].strip()
        if base in ("BYTEINT", "SMALLINT", "INTEGER", "INT", "BIGINT"):
            return pa.int64()
        if base in ("FLOAT", "REAL", "DOUBLE PRECISION", "DOUBLE", "DECIMAL", "NUMBER", "NUMERIC"):
            return pa.float64()
        return pa.string()


#: A comma-separated list's items: commas inside parentheses or double quotes do not split.
_ITEM = re.compile(r'(?:"(?:[^"]|"")*"|\([^()]*\)|[^,"(])+')


def split_list(text: str) -> list[str]:
    """`a, "b,c", DECIMAL(10,2)` -> ['a', '"b,c"', 'DECIMAL(10,2)']: names that need quotes
    are written in double quotes (a doubled quote inside), as in Teradata SQL."""
    return [item.strip() for item in _ITEM.findall(text) if item.strip()]


_QUOTED_COLUMN = re.compile(r'("(?:[^"]|"")*")\s*[:\s]\s*(.+)', re.S)


def unquote(name: str) -> str:
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name


def parse_columns(spec: str) -> list[Column]:
    """The ON query's columns, in order: `id:INTEGER,x:FLOAT,amount:DECIMAL(10,2)` (the form
    byom's generated SCRIPT_COMMAND uses; a name with blanks, commas or colons in double
    quotes) or `id INTEGER, x FLOAT`."""
    columns = []
    for part in split_list(spec):
        quoted = _QUOTED_COLUMN.fullmatch(part)
        if quoted:
            name, sep, type_ = quoted.group(1), ":", quoted.group(2)
        else:
            name, sep, type_ = part.partition(":") if ":" in part else part.partition(" ")
        if not sep or not name.strip() or not type_.strip():
            raise ByomError(f"--columns entry {part!r} needs a name and a type, as name:TYPE")
        columns.append(Column(unquote(name), " ".join(type_.upper().split())))
    if not columns:
        raise ByomError("--columns is empty: list the ON query's columns as name:TYPE,...")
    return columns


# -- arguments ----------------------------------------------------------------------------------
def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="byom_score.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--columns", required=True, help="the ON query's columns: name:TYPE,...")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--model-id", help="score every row with this model")
    which.add_argument("--model-column", help="column naming each row's model")
    p.add_argument(
        "--model-file",
        action="append",
        default=[],
        metavar="ID=PATH",
        help="an installed model file, e.g. churn_v3=./mydb/churn_v3 (repeatable)",
    )
    p.add_argument(
        "--model-data-column",
        help="column with a model's base64 text on the first row of each partition",
    )
    p.add_argument("--accumulate", default="", help="input columns copied to the output")
    p.add_argument(
        "--outputs",
        default="prediction,json_report",
        help="output columns after the accumulated ones: prediction, json_report, score, "
        "label, prob_<class>",
    )
    p.add_argument(
        "--inputs",
        action="append",
        help="input map, as ModelInputFieldsMap: x=c1,c2 or x=[1:4] (0-based positions of "
        "--columns); repeat it, or separate inputs with ;, for several tensors",
    )
    p.add_argument(
        "--operator",
        choices=("script", "apply"),
        default="script",
        help="the table operator: SCRIPT (Vantage), or APPLY (VantageCloud Lake: RFC 4180 "
        "CSV, comma and double quote by default)",
    )
    p.add_argument("--delimiter", help="field delimiter (default: tab; APPLY: comma)")
    p.add_argument("--quotechar", default=None, help="QUOTECHAR of the SCRIPT call, if any")
    p.add_argument(
        "--charset",
        default="utf8",
        help="CHARSET of the SCRIPT call: latin, or utf8 (the default: no CHARSET)",
    )
    args = p.parse_args(argv)
    if not args.model_file and not args.model_data_column:
        p.error("give the models with --model-file ID=PATH or --model-data-column COLUMN")
    apply = args.operator == "apply"
    if args.delimiter is None:
        args.delimiter = "," if apply else "\t"
    if args.delimiter == "\\t":
        args.delimiter = "\t"
    if apply and not args.quotechar:
        args.quotechar = '"'  # APPLY always quotes as RFC 4180 does
    return args


def _names(text: str) -> list[str]:
    return [unquote(c) for c in split_list(text)]


#: The SCRIPT call's CHARSET -> the encoding of the text on stdin and stdout.
CHARSETS = {"utf8": "utf-8", "utf-8": "utf-8", "latin": "latin-1", "latin1": "latin-1"}


def encoding(charset: str) -> str:
    """The Python codec for a CHARSET byom reads; UTF-16 is refused rather than guessed at
    (Teradata does not document the byte order or BOM the script would see)."""
    found = CHARSETS.get(charset.lower())
    if found is None:
        raise ByomError(
            f"--charset {charset!r} is not one byom reads: use latin (CHARSET('LATIN')) or utf8 "
            "(no CHARSET clause); for Unicode columns leave CHARSET out, the rows then arrive "
            "as UTF-8"
        )
    return found


# -- the script ---------------------------------------------------------------------------------
class ScriptModels(InMemoryModels):
    """Models as they reach this instance: installed files, or base64 text on partition rows."""

    def __init__(self, inline: bool) -> None:
        super().__init__()
        self.table = (
            "the models on the first rows of this AMP's partitions (generate the query with "
            "`byom teradata sql` so every partition's first row carries its model)"
            if inline
            else "the installed model files given by --model-file"
        )
        self._texts: dict[str, str] = {}  # model id -> sha256 of the base64 text it holds

    def add_text(self, model_id: str, text: bytes | memoryview, inputs: str | None) -> None:
        """A model's base64 text: its length checked before anything else, its hash (of the
        text itself, never a name or a column) the only thing that can skip the decode."""
        limit = config.MAX_MODEL_BYTES
        if len(text) > base64_chars(limit):
            raise _too_large(
                model_id,
                f"base64 text is {len(text):,} characters (up to {limit:,} bytes "
                f"take at most {base64_chars(limit):,})",
                limit,
            )
        digest = hashlib.sha256(text).hexdigest()
        if self._texts.get(model_id) == digest:
            return  # this instance already holds these bytes: no decode, no load
        try:
            if not _BASE64.fullmatch(text):
                raise ValueError
            blob = binascii.a2b_base64(text)
        except (ValueError, binascii.Error):
            raise ByomError(
                f"model {model_id!r}: the model data column does not hold base64 text"
            ) from None
        check_size(blob, model_id)
        self.add(model_id, blob, inputs)
        self._texts[model_id] = digest


class Script:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.encoding = encoding(getattr(args, "charset", "utf8"))
        self.columns = parse_columns(args.columns)
        self.names = [c.name for c in self.columns]
        lookup = {n.lower(): n for n in self.names}

        def column(name: str, flag: str) -> str:
            found = lookup.get(name.lower())
            if found is None:
                raise ByomError(
                    f"{flag} column {name!r} is not among the input columns "
                    f"({', '.join(self.names)})"
                )
            return found

        self.accumulate = [column(c, "--accumulate") for c in _names(args.accumulate)]
        self.model_column = args.model_column and column(args.model_column, "--model-column")
        self.data_column = args.model_data_column and column(
            args.model_data_column, "--model-data-column"
        )
        self.outputs = check_outputs(_names(args.outputs))
        needed = {o.lower() for o in self.outputs}
        kinds = []
        if needed == {"score"}:  # probabilities only: the model's cheapest run
            kinds.append(OutputKind.SCORE)
        elif needed - {"json_report"}:
            kinds.append(OutputKind.PREDICT)
        if "json_report" in needed:
            kinds.append(OutputKind.JSON)
        self.kinds = tuple(kinds)
        self.inputs = self._input_map(args.inputs)
        self.models = ScriptModels(inline=self.data_column is not None)
        self.statement = StatementModels()  # one script process serves one statement
        for entry in args.model_file:
            model_id, sep, path = entry.partition("=")
            if not sep:
                raise ByomError(f"--model-file {entry!r}: write it as ID=PATH")
            self.models.add(model_id, read_model_file(path, model_id), self.inputs)
        self.line = 0  # input lines consumed so far
        # Accumulated columns stay text, echoed byte for byte; other numbers parse as numbers.
        keep = set(self.accumulate)
        self._types = {
            c.name: pa.string() if c.name in keep else c.arrow_type for c in self.columns
        }
        self._numbers_as_text = False

    def _input_map(self, given: list[str] | str | None) -> str | None:
        """The input map with its positions resolved here, against the row the core is given
        (the ON query's columns without the model data column), as BYOM counts them."""
        if not given:
            return None
        spec = given[0] if isinstance(given, list) and len(given) == 1 else given
        row = [c for c in self.names if c != self.data_column]
        try:
            parsed = parse_input_map(spec, columns=row)
        except InputError as exc:
            raise ByomError(f"--inputs: {exc}") from None
        return json.dumps(parsed) if parsed is not None else None

    # -- reading --------------------------------------------------------------------------------
    def blocks(self, stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
        """Whole lines of stdin, about BLOCK_BYTES at a time, with the first line's number.

        A line longer than a block (a model's base64 text) is gathered whole, once, and read
        as one block; a line longer than `max_line_bytes()` is refused before it is joined."""
        limit = max_line_bytes()
        pending: list[bytes] = []  # the start of a line that has not ended yet
        held = 0
        while True:
            chunk = stream.read(BLOCK_BYTES)
            if not chunk:
                break
            cut = chunk.rfind(b"\n") + 1
            if cut == 0:
                pending.append(chunk)
                held += len(chunk)
                if held > limit:
                    raise self._too_long(limit)
                continue
            if pending:
                if held + chunk.find(b"\n") + 1 > limit:
                    raise self._too_long(limit)
                block = b"".join([*pending, chunk[:cut]])
            else:
                block = chunk if cut == len(chunk) else chunk[:cut]
            tail = chunk[cut:]
            pending, held = ([tail] if tail else []), len(tail)
            first = self.line + 1
            self.line += block.count(b"\n")
            yield first, block
        rest = b"".join(pending)
        if rest.strip(b"\r\n"):
            first = self.line + 1
            self.line += 1
            yield first, rest + b"\n"

    def _too_long(self, limit: int) -> ScriptInputError:
        return ScriptInputError(
            f"line {self.line + 1} runs over {limit:,} bytes with no line break, longer than a "
            "row can be (a model's base64 text within BYOM_MAX_MODEL_BYTES and "
            f"{LINE_SLACK_BYTES:,} bytes for the other columns); check that the ON query sends "
            "one row per line"
        )

    def parse(self, first: int, block: bytes) -> pa.Table:
        """Numbers are parsed as numbers where the text allows (the fast path); once a block
        holds Teradata's `1 E002` notation, numbers are read as text and cleaned in `typed`."""
        self._check_empty_lines(first, block)
        if not self._numbers_as_text:
            try:
                return self._read(block, self._types)
            except pa.ArrowInvalid:
                self._numbers_as_text = True
        try:
            return self._read(block, dict.fromkeys(self.names, pa.string()))
        except pa.ArrowException as exc:
            raise self._locate(first, block, str(exc)) from None

    def _check_empty_lines(self, first: int, block: bytes) -> None:
        """Teradata writes a row of n NULLs as n-1 delimiters, so with two or more columns an
        empty line is no row at all (pyarrow would read it as one of NULLs). With a single
        column it is that column's NULL."""
        if len(self.columns) < 2:
            return
        if block.startswith((b"\n", b"\r\n")):
            at = 0
        else:
            hits = [i + 1 for i in (block.find(b"\n\n"), block.find(b"\n\r\n")) if i >= 0]
            if not hits:
                return
            at = min(hits)
        number = first + block.count(b"\n", 0, at)
        raise ScriptInputError(
            f"line {number} is empty, but a row of "
            f"{len(self.columns)} columns has {len(self.columns) - 1} delimiters even when all "
            "its values are NULL; check the ON query's columns and the SCRIPT call's DELIMITER"
        )

    def _parse_options(self) -> pacsv.ParseOptions:
        return pacsv.ParseOptions(
            delimiter=self.args.delimiter,
            quote_char=self.args.quotechar or False,
            double_quote=True,
            newlines_in_values=False,
            ignore_empty_lines=False,
        )

    def _read(self, block: bytes, types: dict[str, pa.DataType]) -> pa.Table:
        return pacsv.read_csv(
            pa.py_buffer(block),
            # The block is parsed in one piece, so no row (a model's base64 text) straddles two.
            read_options=pacsv.ReadOptions(
                column_names=self.names, block_size=len(block) + 1, use_threads=False
            ),
            parse_options=self._parse_options(),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )

    def _locate(self, first: int, block: bytes, reason: str) -> ScriptInputError:
        """The first line pyarrow cannot read, found by halving the block's lines and parsing
        each half with pyarrow itself (error path only; no limit on a field's length)."""
        ends = np.flatnonzero(np.frombuffer(block, np.uint8) == ord("\n")) + 1
        starts = np.concatenate([[0], ends[:-1]])
        lo, hi = 0, len(ends)  # the first bad line is in [lo, hi); lines before lo read well
        strings = dict.fromkeys(self.names, pa.string())
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                self._read(block[starts[lo] : ends[mid - 1]], strings)
                lo = mid
            except pa.ArrowException:
                hi = mid
        number = first + lo
        line = block[starts[lo] : ends[lo]]
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as exc:
            return ScriptInputError(
                f"line {number}: byte {exc.start + 1} is not UTF-8 text; a CHARSET('LATIN') "
                "call needs --charset latin, otherwise send the rows as UTF-8"
            )
        try:
            found = pacsv.read_csv(
                pa.py_buffer(line),
                read_options=pacsv.ReadOptions(
                    autogenerate_column_names=True, block_size=len(line) + 1
                ),
                parse_options=self._parse_options(),
            ).num_columns
        except pa.ArrowException:
            found = None
        want = len(self.names)
        if found is not None and found != want:
            return ScriptInputError(
                f"line {number}: expected {want} fields ({', '.join(self.names)}) but found "
                f"{found}; --columns must list the ON query's columns in order, and values that "
                "may hold the delimiter need QUOTECHAR in the SCRIPT call (and --quotechar)"
            )
        short = reason if len(reason) <= 300 else reason[:300] + "..."  # pyarrow quotes the row
        return ScriptInputError(f"line {number}: {short}")

    def typed(self, first: int, table: pa.Table) -> dict[str, pa.Array]:
        """Each column in its declared type; FLOAT text such as `1 E002` loses its blanks."""
        out: dict[str, pa.Array] = {}
        for col in self.columns:
            raw = table.column(col.name).combine_chunks()
            target = col.arrow_type
            if raw.type == target and target != pa.string():
                out[col.name] = raw
                continue
            if target == pa.string():
                out[col.name] = (
                    pc.utf8_rtrim_whitespace(raw) if col.type.startswith("CHAR") else raw
                )
                continue
            try:
                out[col.name] = pc.cast(raw, target)
                continue
            except pa.ArrowInvalid:
                pass
            text = pc.replace_substring(raw, " ", "")  # Teradata's `1 E002`, or a bad value
            try:
                out[col.name] = pc.cast(text, target)
            except pa.ArrowInvalid:
                out[col.name] = self._bad_number(first, col, text)
        return out

    def _bad_number(self, first: int, col: Column, text: pa.Array) -> pa.Array:
        """The first value Arrow's cast rejects, found by halving (Python's float() and int()
        accept text Arrow does not, such as `1_0`, so they cannot be the judge)."""
        lo, hi = 0, len(text)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                pc.cast(text.slice(lo, mid - lo), col.arrow_type)
                lo = mid
            except pa.ArrowInvalid:
                hi = mid
        value = text[lo].as_py()
        raise ScriptInputError(
            f"line {first + lo}: column {col.name} ({col.type}) holds {value!r}, "
            "which is not a number"
        )

    # -- scoring --------------------------------------------------------------------------------
    def model_ids(self, cols: dict[str, pa.Array], n: int) -> pa.Array:
        if self.model_column is not None:
            return cols[self.model_column].cast(pa.string())
        return pa.repeat(pa.scalar(self.args.model_id, pa.string()), n)

    def take_models(self, first: int, cols: dict[str, pa.Array], ids: pa.Array) -> None:
        if self.data_column is None:
            return
        data = cols[self.data_column]
        rows = pc.indices_nonzero(pc.is_valid(data)).to_pylist()
        for i in rows:
            model_id = ids[i].as_py()
            if model_id is None:
                raise ScriptInputError(f"line {first + i}: a model's text with no model id")
            self.models.add_text(model_id, _value_view(data, i), self.inputs)

    def score(self, first: int, table: pa.Table) -> list[pa.Array]:
        n = table.num_rows
        cols = self.typed(first, table)
        ids = self.model_ids(cols, n)
        self.take_models(first, cols, ids)
        names = [c for c in self.names if c != self.data_column]
        row = pa.StructArray.from_arrays([cols[c] for c in names], names=names)
        try:
            # One run per model per batch; the process's models must fit the cache together.
            arrays = score_batch(self.kinds, ids, [row], self.models, statement=self.statement)
            results = dict(zip(self.kinds, arrays, strict=True))
        except (InputError, UnknownModelError) as exc:
            raise ScriptInputError(f"lines {first}-{first + n - 1}: {exc}") from None
        out = [table.column(c).combine_chunks() for c in self.accumulate]
        out += [self._output(name, results) for name in self.outputs]
        return out

    @staticmethod
    def _output(name: str, results: dict[OutputKind, pa.Array]) -> pa.Array:
        key = name.lower()
        if key == "json_report":
            return results[OutputKind.JSON]
        if OutputKind.SCORE in results:
            return _text(results[OutputKind.SCORE])
        predicted = results[OutputKind.PREDICT]
        label = predicted.field("label")
        score = _text(predicted.field("score"))
        if key == "label":
            return label
        if key == "score":
            return score
        if key == "prediction":  # the label of a classifier, the value of a regression
            return pc.coalesce(label, score)
        cls = PROBABILITY.match(name)
        assert cls is not None
        probs = predicted.field("probabilities")
        return _text(pc.map_lookup(probs, pa.scalar(cls.group(1)), "first"))

    # -- writing --------------------------------------------------------------------------------
    def format(self, first: int, columns: list[pa.Array]) -> bytes | pa.Buffer:
        """One line per row: fields joined by the delimiter, NULL as an empty field."""
        delim, quote = self.args.delimiter, self.args.quotechar
        fields = []
        for arr in columns:
            text = arr if pa.types.is_string(arr.type) else _text(arr)
            if quote:
                escaped = pc.replace_substring(text, quote, quote + quote)
                quoted = pc.binary_join_element_wise(quote, escaped, quote, "")
                # SCRIPT's QUOTECHAR quotes every value; APPLY (RFC 4180) only those that
                # need it: an empty string (NULL stays an empty field), the delimiter, the
                # quote or a line break.
                text = quoted if self.args.operator != "apply" else self._csv(text, quoted)
            else:
                bad = pc.or_(
                    pc.match_substring(text, delim), pc.match_substring(text, "\n")
                ).fill_null(False)
                if pc.any(bad).as_py():
                    i = pc.indices_nonzero(bad)[0].as_py()
                    raise ScriptInputError(
                        f"line {first + i}: an output value contains the delimiter or a line "
                        "break; add QUOTECHAR to the SCRIPT call (and --quotechar)"
                    )
            fields.append(text.fill_null(""))
        if not fields:
            return b""
        lines = pc.binary_join_element_wise(*fields, delim)
        lines = pc.binary_join_element_wise(lines, "", "\n")  # each line ends in a newline
        # The lines are contiguous in the array's data buffer: write that, never copied.
        offsets = np.frombuffer(lines.buffers()[1], np.int32)
        start, end = int(offsets[lines.offset]), int(offsets[lines.offset + len(lines)])
        return lines.buffers()[2].slice(start, end - start)

    # -- the CHARSET -----------------------------------------------------------------------------
    def decode(self, block: bytes) -> bytes:
        """A block as UTF-8, which is what pyarrow reads: LATIN text is transcoded (in C, one
        copy; every byte is a Latin-1 character, and line breaks stay where they were)."""
        if self.encoding == "utf-8" or block.isascii():
            return block
        return block.decode(self.encoding).encode("utf-8")

    def encode(self, first: int, text: bytes | pa.Buffer) -> bytes | pa.Buffer:
        """Output lines back in the CHARSET of the call; a value LATIN cannot hold fails the
        query with its line rather than reaching the table altered."""
        if self.encoding == "utf-8":
            return text
        data = text.to_pybytes() if isinstance(text, pa.Buffer) else text
        if data.isascii():
            return text
        decoded = data.decode("utf-8")
        try:
            return decoded.encode(self.encoding)
        except UnicodeEncodeError as exc:
            line = first + decoded.count("\n", 0, exc.start)
            raise ScriptInputError(
                f"line {line}: the output holds {decoded[exc.start]!r}, which CHARSET "
                f"{self.args.charset.upper()} cannot hold; leave CHARSET out of the SCRIPT call "
                "(and --charset) so the results are written as UTF-8"
            ) from None

    def _csv(self, text: pa.Array, quoted: pa.Array) -> pa.Array:
        need = pc.equal(pc.utf8_length(text), 0)
        for special in {self.args.delimiter, self.args.quotechar, "\n", "\r"}:
            need = pc.or_(need, pc.match_substring(text, special))
        return pc.if_else(need, quoted, text)

    def run(self, stdin: BinaryIO, stdout: BinaryIO) -> int:
        rows = 0
        for first, raw in self.blocks(stdin):
            block = self.decode(raw)
            table = self.parse(first, block)
            out = self.score(first, table)
            stdout.write(self.encode(first, self.format(first, out)))
            rows += table.num_rows
        stdout.flush()
        return rows


def _text(arr: pa.Array) -> pa.Array:
    """Numbers as text Teradata reads back; NaN (no number) as NULL."""
    if pa.types.is_floating(arr.type):
        arr = pc.if_else(pc.is_nan(arr), pa.scalar(None, arr.type), arr)
    return pc.cast(arr, pa.string())


def main(argv: list[str] | None = None) -> int:
    try:
        script = Script(parse_args(argv))
        script.run(sys.stdin.buffer, sys.stdout.buffer)
    except ByomError as exc:
        sys.stdout.flush()
        print(f"byom_score.py: {exc}", file=sys.stderr)
        return 1
    return 0
