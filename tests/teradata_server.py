"""A stand-in for the Teradata side of a SCRIPT table operator call, to test byom_score.py.

No Teradata server runs here, so this module does what the server does around the script:

    SELECT * FROM SCRIPT(
        ON (query) [PARTITION BY cols [ORDER BY col] | HASH BY col [LOCAL ORDER BY col]]
        SCRIPT_COMMAND('OPENBLAS_NUM_THREADS=1 tdpython3 ./mydb/byom_score.py ...')
        RETURNS('col type, ...') [DELIMITER('\t')] [QUOTECHAR('"')])

- the ON query's rows (an Arrow table) go to AMPs: with PARTITION BY, every partition whole to
  the AMP `stable hash(key) % amps`, partitions contiguous and ordered by ORDER BY (NULLs
  first); with HASH BY, each row to the AMP of its value's hash, no grouping; with neither,
  rows spread by the hash of their position (as a table's primary index would);
- one script instance per AMP, all at once, started as the server starts it: the exact
  SCRIPT_COMMAND text byom generates, through `sh -c`, in a folder where ./mydb/ holds the
  files `byom teradata deploy` writes (the core imported from byom_core.zip); each reads its
  AMP's rows on stdin as text: one
  row per line, fields split by the delimiter, NULL as an empty field, FLOAT in Teradata's
  notation (`1.0000000000000000E 002`), and with QUOTECHAR every non-NULL value quoted
  (embedded quotes doubled) while NULL stays an empty unquoted field;
- AMPs with no rows still run the script, with empty stdin: it must exit 0 and write nothing;
- the instances' stdout is read back as rows of the RETURNS columns; an instance that exits
  non-zero, or writes a line that does not fit RETURNS, fails the whole query
  (`ScriptFailed`, with the AMP, the exit code and the instance's stderr).

When `model_data` is given, the harness also does what the SQL `byom teradata sql` generates:
it adds a column holding the base64 text of a model on the first row (in ORDER BY order) of
each partition, NULL elsewhere, for the model id of that row (the `--model-column` value, or
the fixed `--model-id`).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import logging
import os
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

import udfs.teradata
from udfs.teradata.sql import SCRIPT_FILE, script_command

log = logging.getLogger(__name__)

#: The checkout under test: the one Python imports `udfs` from (PYTHONPATH may name another
#: checkout than this file's, to run these tests against it).
REPO = Path(udfs.teradata.__file__).resolve().parents[2]
LAUNCHER = REPO / "udfs" / "teradata" / "byom_score.py"

#: VARCHAR holds at most this many LATIN characters; longer text needs a CLOB.
VARCHAR_MAX = 64000

_INT_TYPES = ("BYTEINT", "SMALLINT", "INTEGER", "INT", "BIGINT")
_FLOAT_TYPES = ("FLOAT", "REAL", "DOUBLE PRECISION", "DOUBLE", "DECIMAL", "NUMBER", "NUMERIC")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")


class ScriptFailed(RuntimeError):
    """The query failed: one script instance exited non-zero or wrote rows that do not parse."""

    def __init__(self, amp: int, returncode: int, stderr: str, reason: str) -> None:
        self.amp = amp
        self.returncode = returncode
        self.stderr = stderr
        self.reason = reason
        super().__init__(
            f"SCRIPT failed on AMP {amp} (exit code {returncode}): {reason}\n"
            f"--- stderr of AMP {amp} ---\n{stderr}"
        )


@dataclass
class AmpRun:
    amp: int
    rows: int
    returncode: int
    stdout: bytes
    stderr: str


# -- declaring and formatting the input -------------------------------------------------------
def teradata_type(field: pa.Field, column: pa.ChunkedArray) -> str:
    """The Teradata type the ON query's column would have, for `--columns`."""
    t = field.type
    if pa.types.is_floating(t):
        return "FLOAT"
    if pa.types.is_integer(t):
        return "INTEGER" if t.bit_width <= 32 else "BIGINT"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        lengths = pc.utf8_length(column)
        longest = pc.max(lengths).as_py() or 1
        return f"VARCHAR({longest})" if longest <= VARCHAR_MAX else "CLOB"
    raise TypeError(f"column {field.name!r}: no Teradata type for Arrow type {t}")


def teradata_float(value: float) -> str:
    """An exact FLOAT in Teradata's notation: 17 digits, and `E 002` / `E-002` exponents."""
    mantissa, exponent = f"{value:.16E}".split("E")
    sign = " " if exponent[0] == "+" else "-"
    return f"{mantissa}E{sign}{int(exponent[1:]):03d}"


def _field_text(
    value: object, type_: pa.DataType, quotechar: str | None, teradata_floats: bool
) -> str:
    if value is None:
        return ""  # NULL: an empty field, never quoted
    if pa.types.is_floating(type_):
        number = float(value)  # type: ignore[arg-type]
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError(f"Teradata FLOAT has no {number!r}")
        text = teradata_float(number) if teradata_floats else repr(number)
    else:
        text = str(value)
    if quotechar:
        text = quotechar + text.replace(quotechar, quotechar * 2) + quotechar
    return text


def _csv_text(
    value: object, type_: pa.DataType, delimiter: str, quotechar: str, floats: bool
) -> str:
    """APPLY's RFC 4180 field: quoted only when it must be, an empty string always (an empty
    unquoted field is NULL)."""
    text = _field_text(value, type_, None, floats)
    if value is not None and (text == "" or any(c in text for c in (delimiter, quotechar, "\n"))):
        text = quotechar + text.replace(quotechar, quotechar * 2) + quotechar
    return text


def _format(
    table: pa.Table,
    rows: Sequence[int],
    delimiter: str,
    quotechar: str | None,
    floats: bool,
    encoding: str = "utf-8",
    csv: bool = False,
) -> bytes:
    if not rows:
        return b""
    part = table.take(pa.array(rows, pa.int64()))
    columns = [(part.column(i).to_pylist(), f.type) for i, f in enumerate(table.schema)]
    lines = []
    for r in range(part.num_rows):
        fields = [
            _csv_text(values[r], t, delimiter, quotechar or '"', floats)
            if csv
            else _field_text(values[r], t, quotechar, floats)
            for values, t in columns
        ]
        lines.append(delimiter.join(fields) + "\n")
    return "".join(lines).encode(encoding)


def server_encoding(charset: str | None) -> str:
    """The bytes the server writes for the call's CHARSET: UTF-8 without one, Latin-1 for
    LATIN (what UTF-16 sends is not documented, so the harness does not play it)."""
    if charset is None:
        return "utf-8"
    if charset.lower() == "latin":
        return "latin-1"
    raise ValueError(f"the harness plays no CHARSET({charset!r})")


# -- distributing rows ------------------------------------------------------------------------
def _stable_hash(key: tuple) -> int:
    return zlib.crc32(repr(key).encode("utf-8"))


def _order_within(table: pa.Table, rows: list[int], order_by: str | None) -> list[int]:
    if order_by is None or len(rows) < 2:
        return rows  # the server promises no order; the harness keeps the table's
    keys = table.column(order_by).take(pa.array(rows, pa.int64())).to_pylist()
    order = sorted(range(len(rows)), key=lambda i: (keys[i] is not None, keys[i]))
    return [rows[i] for i in order]  # ascending, NULLs first (as teradataml writes it)


def distribute(
    table: pa.Table,
    amps: int,
    partition_by: Sequence[str] | None,
    hash_by: str | None,
    order_by: str | None,
) -> tuple[list[list[int]], list[int]]:
    """Row indices per AMP, in delivery order, and the first row of every partition."""
    n = table.num_rows
    per_amp: list[list[int]] = [[] for _ in range(amps)]
    firsts: list[int] = []
    if partition_by:
        keys = list(zip(*(table.column(c).to_pylist() for c in partition_by), strict=True))
        partitions: dict[tuple, list[int]] = {}
        for i, key in enumerate(keys):
            partitions.setdefault(key, []).append(i)
        # An AMP holds its partitions one after another, each contiguous and in ORDER BY order.
        for key in sorted(partitions, key=lambda k: (_stable_hash(k), repr(k))):
            rows = _order_within(table, partitions[key], order_by)
            per_amp[_stable_hash(key) % amps].extend(rows)
            firsts.append(rows[0])
        return per_amp, firsts
    if hash_by is not None:
        for i, value in enumerate(table.column(hash_by).to_pylist()):
            per_amp[_stable_hash((value,)) % amps].append(i)
    else:
        for i in range(n):
            per_amp[_stable_hash(("row", i)) % amps].append(i)
    # HASH BY with ORDER BY is the LOCAL ORDER BY of the AMP's rows.
    return [_order_within(table, rows, order_by) for rows in per_amp], firsts


def _option(args: Sequence[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def with_model_data(
    table: pa.Table,
    firsts: Sequence[int],
    script_args: Sequence[str],
    model_data: dict[str, bytes],
    column: str,
) -> pa.Table:
    """The model data column: a model's base64 text on each partition's first row."""
    model_column = _option(script_args, "--model-column")
    if model_column is not None:
        ids = table.column(model_column).to_pylist()
    else:
        fixed = _option(script_args, "--model-id")
        if fixed is None:
            raise ValueError("model_data needs --model-column or --model-id in script_args")
        ids = [fixed] * table.num_rows
    texts: list[str | None] = [None] * table.num_rows
    encoded: dict[str, str] = {}
    for row in firsts:
        model_id = ids[row]
        if model_id is None or model_id not in model_data:
            continue  # the SQL's join finds no model: the column stays NULL
        if model_id not in encoded:
            encoded[model_id] = base64.b64encode(model_data[model_id]).decode("ascii")
        texts[row] = encoded[model_id]
    return table.append_column(column, pa.array(texts, pa.string()))


# -- running the instances --------------------------------------------------------------------
#: The database byom's files are installed in, as `byom teradata deploy --database mydb` does.
DATABASE = "mydb"


def deployed() -> Path:
    """byom's files as `byom teradata deploy` writes them (byom_score.py beside the core as
    byom_core.zip, so the instances import the zip, as on the server), once per session, and
    a bin folder whose `tdpython3` (SCRIPT's interpreter) and `python3` (APPLY's) are this
    Python.

    Built under a lock: SCRIPT calls (and their AMPs) start on several threads at once, and a
    second build writing its launchers while the first starts instances makes exec fail with
    "Text file busy" (a child forked meanwhile holds the launcher open for writing)."""
    with _deploy_lock:
        return _deploy()


_deploy_lock = threading.Lock()


@functools.cache
def _deploy() -> Path:
    from udfs.teradata.deploy import build_bundle

    root = Path(tempfile.mkdtemp(prefix="byom-teradata-"))
    build_bundle(root / DATABASE)
    bin_dir = root / "bin"
    bin_dir.mkdir()
    for name in ("tdpython3", "python3"):
        launcher = bin_dir / name
        launcher.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
        launcher.chmod(0o755)
    return root


def server_command(script_args: Sequence[str]) -> str:
    """The SCRIPT_COMMAND text byom's generated SQL holds for these arguments."""
    return script_command(f"./{DATABASE}/{SCRIPT_FILE}", script_args)


def apply_command(script_args: Sequence[str]) -> str:
    """The APPLY_COMMAND text: the environment's python3 on the file by its bare name."""
    args = list(script_args)
    if _option(args, "--operator") is None:
        args += ["--operator", "apply"]
    return script_command(SCRIPT_FILE, args, "python3", prefix="")


def command_args(command: str) -> list[str]:
    """byom_score.py's arguments in a SCRIPT_COMMAND text, as the shell will split them."""
    words = shlex.split(command)
    while words and "=" in words[0]:  # VAR=value prefixes
        words.pop(0)
    if len(words) < 2 or not words[1].endswith(SCRIPT_FILE):
        raise ValueError(f"not a byom_score.py command: {command!r}")
    return words[2:]


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(deployed() / "bin"), env.get("PATH", "")])
    env["OMP_NUM_THREADS"] = "1"  # OPENBLAS_NUM_THREADS=1 comes from the command's prefix
    return env


def _workdir(cwd: Path | None) -> Path:
    """The instances' working directory, holding a link per database of SEARCHUIFDBPATH."""
    workdir = cwd or deployed()
    link = workdir / DATABASE
    # AMP threads start at once: whichever comes second finds the link made.
    with contextlib.suppress(FileExistsError):
        link.symlink_to(deployed() / DATABASE, target_is_directory=True)
    return workdir


def script_process(
    command: str,
    stdin: bytes,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    wrapper: Sequence[str] = (),
) -> subprocess.CompletedProcess:
    """One instance, as the server starts it: the command text through `sh -c` (so quoting
    mistakes fail here as they would there), from a folder holding ./mydb/. `wrapper` runs
    before the shell (a memory probe, for instance)."""
    return subprocess.run(
        [*wrapper, "sh", "-c", command],
        input=stdin,
        capture_output=True,
        env=_environment() | (env or {}),
        cwd=_workdir(cwd),
        timeout=600,
    )


def run_instances(
    argv: Sequence[str],
    inputs: Sequence[bytes],
    rows: Sequence[int],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    command: str | None = None,
) -> list[AmpRun]:
    """One script process per AMP, all running at once; each gets its AMP's text on stdin.
    `cwd` is the instances' working directory (on the server, the AMP's script directory);
    `env` adds variables to their environment; `command` is the SCRIPT_COMMAND text to run
    verbatim (default: the one byom generates for `argv`)."""
    command = command or server_command(argv)

    def one(amp: int) -> AmpRun:
        proc = script_process(command, inputs[amp], cwd, env)
        return AmpRun(
            amp,
            rows[amp],
            proc.returncode,
            proc.stdout,
            proc.stderr.decode("utf-8", "replace"),
        )

    with ThreadPoolExecutor(max_workers=len(inputs)) as pool:
        return list(pool.map(one, range(len(inputs))))


# -- reading the output back ------------------------------------------------------------------
def _split_fields(text: str, delimiter: str, quotechar: str | None) -> list[list[str | None]]:
    """Output text as rows of fields; None is an empty unquoted field (NULL)."""
    if not quotechar:
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        return [[f if f != "" else None for f in line.split(delimiter)] for line in lines]
    rows: list[list[str | None]] = []
    i, n = 0, len(text)
    while i < n:
        row: list[str | None] = []
        while True:  # one field
            if i < n and text[i] == quotechar:
                j, chars = i + 1, []
                while True:
                    k = text.find(quotechar, j)
                    if k < 0:
                        raise ValueError("a quoted value has no closing quote")
                    chars.append(text[j:k])
                    if text.startswith(quotechar, k + 1):  # a doubled quote
                        chars.append(quotechar)
                        j = k + 2
                        continue
                    i = k + 1
                    break
                row.append("".join(chars))
                if i < n and text[i] not in (delimiter, "\n"):
                    raise ValueError(f"text after a closing quote: {text[i : i + 20]!r}")
            else:
                ends = [e for e in (text.find(delimiter, i), text.find("\n", i)) if e >= 0]
                end = min(ends) if ends else n
                value = text[i:end]
                if quotechar in value:
                    raise ValueError(f"an unquoted value holds the quote character: {value!r}")
                row.append(value if value != "" else None)
                i = end
            if i >= n or text[i] == "\n":
                i += 1
                break
            i += len(delimiter)
        rows.append(row)
    return rows


def _base(type_: str) -> str:
    return " ".join(type_.upper().split("(")[0].split())


def _length(type_: str) -> int | None:
    found = re.search(r"\((\d+)", type_)
    return int(found.group(1)) if found else None


def arrow_type(type_: str) -> pa.DataType:
    base = _base(type_)
    if base in _INT_TYPES:
        return pa.int64()
    if base in _FLOAT_TYPES:
        return pa.float64()
    return pa.string()


def _convert(value: str | None, name: str, type_: str) -> object:
    if value is None:
        return None
    base = _base(type_)
    if base in _FLOAT_TYPES:
        text = value.replace(" ", "")  # Teradata's own notation: 1.5E 002
        if not _NUMBER.fullmatch(text):
            raise ValueError(f"column {name} ({type_}): {value!r} is not a number")
        return float(text)
    if base in _INT_TYPES:
        if not _INTEGER.fullmatch(value.strip()):
            raise ValueError(f"column {name} ({type_}): {value!r} is not an integer")
        return int(value)
    limit = _length(type_)
    if base in ("VARCHAR", "CHAR") and limit is not None and len(value) > limit:
        raise ValueError(f"column {name} ({type_}): a value of {len(value)} characters")
    return value


def parse_output(
    run: AmpRun,
    returns: Sequence[tuple[str, str]],
    delimiter: str,
    quotechar: str | None,
    encoding: str = "utf-8",
) -> pa.Table:
    """One instance's stdout as a table of the RETURNS columns; ScriptFailed if it won't fit."""

    def fail(reason: str) -> ScriptFailed:
        return ScriptFailed(run.amp, run.returncode, run.stderr, reason)

    try:
        text = run.stdout.decode(encoding)
        rows = _split_fields(text, delimiter, quotechar)
    except ValueError as exc:
        raise fail(f"unreadable output: {exc}") from None
    values: list[list[object]] = [[] for _ in returns]
    for number, row in enumerate(rows, 1):
        if len(row) != len(returns):
            raise fail(
                f"output row {number} has {len(row)} fields, RETURNS declares {len(returns)}"
            )
        for j, ((name, type_), field) in enumerate(zip(returns, row, strict=True)):
            try:
                values[j].append(_convert(field, name, type_))
            except ValueError as exc:
                raise fail(f"output row {number}: {exc}") from None
    return pa.table(
        [pa.array(v, arrow_type(t)) for v, (_, t) in zip(values, returns, strict=True)],
        names=[name for name, _ in returns],
    )


# -- the SCRIPT call --------------------------------------------------------------------------
def run_script(
    table: pa.Table,
    script_args: list[str],
    returns: list[tuple[str, str]],
    *,
    amps: int = 4,
    partition_by: list[str] | None = None,
    hash_by: str | None = None,
    order_by: str | None = None,
    model_data: dict[str, bytes] | None = None,
    model_data_column: str = "byom_model",
    quotechar: str | None = None,
    teradata_floats: bool = True,
    delimiter: str = "\t",
    charset: str | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    command: str | None = None,
    operator: str = "script",
) -> pa.Table:
    """`SELECT * FROM SCRIPT(ON (table) ... SCRIPT_COMMAND('byom_score.py script_args')
    RETURNS(returns))`: the rows of every AMP's instance, AMP after AMP.

    With `operator="apply"` it is VantageCloud Lake's `Apply(ON ... APPLY_COMMAND('python3
    byom_score.py script_args --operator apply') STYLE('csv'))` instead: RFC 4180 both ways
    (DELIMITER ',' and QUOTECHAR '"' unless given; a value quoted only when it holds either or
    a line break, an empty string as `""`, NULL as an empty field), run in the user
    environment's file folder.

    `--columns` (from the table's schema) and, with `model_data`, `--model-data-column` are
    added to `script_args` unless given there. `quotechar` is the SCRIPT call's QUOTECHAR;
    the script learns of it only from `--quotechar` in `script_args`, as on the server.
    `charset` is the call's CHARSET: with 'latin' the rows go out and come back as Latin-1
    bytes (the script learns of it from `--charset`).
    `cwd` and `env` are the instances' working directory and extra environment variables.
    `command`, a SCRIPT_COMMAND text as generated SQL holds it, is run verbatim; its
    arguments then stand for `script_args`.
    """
    if command is not None:
        script_args = command_args(command)
    apply = operator == "apply"
    if apply:
        delimiter = "," if delimiter == "\t" else delimiter
        quotechar = quotechar or '"'
    if partition_by and hash_by:
        raise ValueError("PARTITION BY and HASH BY exclude each other")
    if model_data is not None and not partition_by:
        raise ValueError("models on the first row of each partition need PARTITION BY")
    per_amp, firsts = distribute(table, amps, partition_by, hash_by, order_by)
    args = list(script_args)
    if model_data is not None:
        table = with_model_data(table, firsts, args, model_data, model_data_column)
        if _option(args, "--model-data-column") is None:
            args += ["--model-data-column", model_data_column]
    if _option(args, "--columns") is None:
        declared = ", ".join(
            f"{f.name} {teradata_type(f, table.column(i))}" for i, f in enumerate(table.schema)
        )
        args = ["--columns", declared, *args]
    encoding = server_encoding(charset)
    inputs = [
        _format(table, rows, delimiter, quotechar, teradata_floats, encoding, apply)
        for rows in per_amp
    ]
    if command is not None and args != script_args:
        raise ValueError("a verbatim command must hold every argument (--columns included)")
    if apply and command is None:
        command = apply_command(args)
        cwd = cwd or deployed() / DATABASE  # the user environment's files
    runs = run_instances(args, inputs, [len(rows) for rows in per_amp], cwd, env, command)
    parts = []
    for run in runs:
        # The server keeps each instance's stderr in a log; here it is a debug message.
        log.debug(
            "AMP %d: %d rows, exit code %d, stderr: %s",
            run.amp,
            run.rows,
            run.returncode,
            run.stderr,
        )
        if run.returncode != 0:
            raise ScriptFailed(run.amp, run.returncode, run.stderr, "the script exited non-zero")
        if run.rows == 0 and run.stdout:
            raise ScriptFailed(
                run.amp, run.returncode, run.stderr, "an AMP with no rows wrote output"
            )
        parts.append(parse_output(run, returns, delimiter, quotechar, encoding))
    return pa.concat_tables(parts)
