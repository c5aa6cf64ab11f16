"""The SQL a Teradata user runs: model files to install, and the SCRIPT query that scores.

The query text follows teradataml's own Script query layout (a test compares them), so what
`byom teradata sql` prints is what a teradataml user would see. Names follow Teradata BYOM's
scoring functions: pass-through columns are `accumulate`, outputs default to `prediction` and
`json_report`, and an input map plays the part of ModelInputFieldsMap.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field

from byom.errors import ByomError
from byom.inputs import parse_input_map
from byom.scorers import Scorer
from udfs.teradata.script import Column, check_outputs, parse_columns

#: Where byom's files live: the database named in SEARCHUIFDBPATH.
SCRIPT_FILE = "byom_score.py"
CORE_FILE = "byom_core.zip"
#: Columns the inline-model ON query adds after the input table's.
PART, ROW, MODEL = "byom_part", "byom_row", "byom_model"


def model_file_name(sha256: str) -> str:
    """Installed model files are named by content: a replaced model gets a new file."""
    return f"byom_{sha256[:16]}"


def _map_text(mapping: dict[str, list[str]]) -> str:
    """An input map in its plain form (`c1,c2` or `input=c1,c2;other=c3`)."""
    if list(mapping) == [""]:
        return ",".join(mapping[""])
    return ";".join(f"{name}={','.join(cols)}" for name, cols in mapping.items())


#: Teradata's default FLOAT text has 15 significant digits; this FORMAT writes 17, enough for
#: every double to reach the script exactly (a row at a tree's split point scores as in DuckDB).
FLOAT_FORMAT = "-9.9999999999999999E-999"
#: The prefix teradataml puts before every SCRIPT_COMMAND: one BLAS thread per AMP instance.
THREADS_PREFIX = "OPENBLAS_NUM_THREADS=1 "


def script_command(
    script: str, args: Sequence[str], python: str = "tdpython3", prefix: str = THREADS_PREFIX
) -> str:
    """The command text the server hands to a shell: every argument quoted for the shell (a
    `;`, `|`, blank or parenthesis in a value stays in its argument), teradataml's prefix."""
    return prefix + shlex.join([python, script, *args])


def spec_name(name: str) -> str:
    """A column name as the script's `--columns` / `--accumulate` lists read it: in double
    quotes when it holds a blank, comma, colon, quote or parenthesis."""
    if re.search(r'[\s,:"()]', name):
        return '"' + name.replace('"', '""') + '"'
    return name


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$#]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


@dataclass
class ScriptQuery:
    """Everything that decides one SCRIPT query."""

    table: str
    columns: list[Column]
    database: str
    models: dict[str, Scorer]  # the models the query may use, by id (for RETURNS)
    model_id: str | None = None
    model_column: str | None = None
    #: "inline": each partition's first row carries the model's base64 text, read from the
    #: model table; "file": models installed as files (`byom teradata deploy`).
    delivery: str = "inline"
    models_table: str = "byom_models"
    accumulate: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=lambda: ["prediction", "json_report"])
    inputs: str | None = None
    partition_key: str | None = None
    delimiter: str = "\t"
    quotechar: str | None = None
    charset: str | None = None
    model_shas: dict[str, str] = field(default_factory=dict)  # id -> sha256, for file delivery
    #: "script" (SCRIPT, Vantage Enterprise) or "apply" (APPLY, VantageCloud Lake).
    operator: str = "script"
    #: APPLY's user environment, where byom's files are installed.
    environment: str | None = None

    def __post_init__(self) -> None:
        if (self.model_id is None) == (self.model_column is None):
            raise ByomError("give exactly one of a model id and a model-id column")
        if self.delivery not in ("inline", "file"):
            raise ByomError(f"unknown delivery {self.delivery!r}: use inline or file")
        names = {c.name.lower(): c for c in self.columns}
        for col in [*self.accumulate, *filter(None, [self.model_column, self.partition_key])]:
            if col.lower() not in names:
                raise ByomError(
                    f"column {col!r} is not among the input columns "
                    f"({', '.join(c.name for c in self.columns)})"
                )
        check_outputs(self.outputs)
        if self.operator not in ("script", "apply"):
            raise ByomError(f"unknown operator {self.operator!r}: use script or apply")
        if self.operator == "apply":
            if not self.environment:
                raise ByomError("APPLY runs in a user environment: name it (--env)")
            if self.delimiter == "\t":  # APPLY's CSV style: RFC 4180, comma and double quote
                self.delimiter = ","
            self.quotechar = self.quotechar or '"'
        if self.model_id is not None and self.model_id not in self.models:
            raise ByomError(f"model {self.model_id!r} is not among the models given")

    # -- the parts ------------------------------------------------------------------------------
    def column_type(self, name: str) -> str:
        return next(c.type for c in self.columns if c.name.lower() == name.lower())

    def returns(self) -> list[tuple[str, str]]:
        """RETURNS: the accumulated columns as declared, then one column per output."""
        out = [(c, self.column_type(c)) for c in self.accumulate]
        tasks = {s.task for s in self.models.values()}
        for name in self.outputs:
            key = name.lower()
            if key == "json_report":
                out.append((name, "VARCHAR(32000)"))
            elif key == "label" or (key == "prediction" and tasks != {"regression"}):
                out.append((name, "VARCHAR(256)"))
            else:  # score, prob_<class>, the prediction of regressions
                out.append((name, "FLOAT"))
        return out

    def script_columns(self) -> list[Column]:
        cols = list(self.columns)
        if self.delivery == "inline":
            cols += [Column(PART, "INTEGER"), Column(ROW, "BIGINT"), Column(MODEL, "CLOB")]
        return cols

    def script_args(self) -> list[str]:
        """byom_score.py's arguments (unquoted: `script_command` quotes them for the shell)."""
        spec = ",".join(f"{spec_name(c.name)}:{c.type}" for c in self.script_columns())
        args = ["--columns", spec]
        if self.model_id is not None:
            args += ["--model-id", self.model_id]
        else:
            args += ["--model-column", self.model_column or ""]
        if self.delivery == "inline":
            args += ["--model-data-column", MODEL]
        else:
            for model_id, sha in sorted(self.model_shas.items()):
                args += ["--model-file", f"{model_id}={self.file_path(model_file_name(sha))}"]
        if self.accumulate:
            args += ["--accumulate", ",".join(spec_name(c) for c in self.accumulate)]
        if [o.lower() for o in self.outputs] != ["prediction", "json_report"]:
            args += ["--outputs", ",".join(self.outputs)]
        if self.inputs:
            args += ["--inputs", _map_text(parse_input_map(self.inputs) or {})]
        if self.quotechar:
            args += ["--quotechar", self.quotechar]
        if self.delimiter != "\t":
            args += ["--delimiter", self.delimiter]
        if self.charset:
            args += ["--charset", self.charset.lower()]
        return args

    def file_path(self, name: str) -> str:
        """An installed file as the command names it: SCRIPT runs in a folder holding a link
        per database of SEARCHUIFDBPATH; APPLY in the user environment's file folder."""
        return name if self.operator == "apply" else f"./{self.database}/{name}"

    def command(self) -> str:
        if self.operator == "apply":  # a user environment's python3; teradataml adds no prefix
            args = [*self.script_args(), "--operator", "apply"]
            return script_command(self.file_path(SCRIPT_FILE), args, "python3", prefix="")
        return script_command(self.file_path(SCRIPT_FILE), self.script_args())

    def _select(self, alias: str) -> str:
        """The input columns; FLOATs as 17-digit text, so doubles reach the script exactly."""
        out = []
        for c in self.columns:
            col = f"{alias}.{_ident(c.name)}"
            if c.type.split("(")[0].strip() in ("FLOAT", "REAL", "DOUBLE PRECISION"):
                col = f"CAST(CAST({col} AS FORMAT '{FLOAT_FORMAT}') AS VARCHAR(32))"
                col += f" AS {_ident(c.name)}"
            out.append(col)
        return ", ".join(out)

    def on_query(self) -> str:
        if self.delivery == "file":
            return f"SELECT {self._select('t')} FROM {self.table} t"
        key = _ident(self.partition_key or self.columns[0].name)
        # As many buckets as the system has AMPs: each AMP decodes the model once.
        part = f"HASHBUCKET(HASHROW(t.{key})) MOD (HASHAMP() + 1)"
        window = f"{part}" if self.model_id else f"t.{_ident(self.model_column or '')}, {part}"
        cols = ", ".join(f"t.{_ident(c.name)}" for c in self.columns)
        inner = (
            f"SELECT {cols}, {part} AS {PART}, "
            f"ROW_NUMBER() OVER (PARTITION BY {window} ORDER BY t.{key}) AS {ROW} "
            f"FROM {self.table} t"
        )
        match = (
            _literal(self.model_id)
            if self.model_id is not None
            else f"d.{_ident(self.model_column or '')}"
        )
        return (
            f"SELECT {self._select('d')}, d.{PART}, d.{ROW}, "
            f"CASE WHEN d.{ROW} = 1 THEN m.model_b64 END AS {MODEL} "
            f"FROM ({inner}) d LEFT JOIN {self.models_table} m ON m.model_id = {match}"
        )

    def distribution(self) -> tuple[str, str | None]:
        """The ON clause's PARTITION BY / HASH BY line and the ORDER BY column."""
        if self.delivery == "file":
            return "PARTITION BY ANY", None
        keys = [PART] if self.model_id else [self.model_column or "", PART]
        return "PARTITION BY " + ",".join(f'"{k}"' for k in keys), ROW

    def sql(self, set_session: bool = True) -> str:
        """The runnable text: for SCRIPT, `SET SESSION SEARCHUIFDBPATH` (without it a fresh
        session cannot find ./<database>/byom_score.py) unless `set_session` is False; then
        the query, laid out as teradataml's Script / Apply query generators lay it out."""
        returns = ", ".join(f"{_ident(n)} {t}" for n, t in self.returns())
        if self.operator == "apply":
            return apply_call(
                self._on_lines(),
                self.command(),
                returns,
                self.environment or "",
                self.delimiter,
                self.quotechar,
            )
        query = script_call(
            self._on_lines(), self.command(), returns, self.delimiter, self.charset, self.quotechar
        )
        return f"{search_path(self.database)}\n{query}" if set_session else query

    def _on_lines(self) -> list[str]:
        dist, order = self.distribution()
        lines = [f'\tON ({self.on_query()}) AS "input"', f"\t{dist}"]
        if order:
            lines.append(f'\tORDER BY "{order}" ASC NULLS FIRST')
        return [*lines, "\t"]


def search_path(database: str) -> str:
    """What a session must run once before SCRIPT can find ./<database>/ files."""
    return f"SET SESSION SEARCHUIFDBPATH = {_ident(database)};"


def script_call(
    on: Sequence[str],
    command: str,
    returns: str,
    delimiter: str = "\t",
    charset: str | None = None,
    quotechar: str | None = None,
) -> str:
    """A SCRIPT call as teradataml's Script query generator lays it out; `on` is the lines of
    the ON clause (just "\t" for none, which runs the script once per AMP)."""
    lines = ["SELECT * FROM Script(", *on]
    lines.append(f"\tSCRIPT_COMMAND({_literal(command)})")
    lines.append(f"\tdelimiter({_literal(delimiter)})")
    lines.append(f"\treturns({_literal(returns)})")
    if charset:
        lines.append(f"\tcharset({_literal(charset)})")
    if quotechar:
        lines.append(f"\tquotechar({_literal(quotechar)})")
    return "\n".join([*lines, ") as sqlmr"])


def apply_call(
    on: Sequence[str],
    command: str,
    returns: str,
    environment: str,
    delimiter: str = ",",
    quotechar: str | None = None,
) -> str:
    """An APPLY call as teradataml's Apply query generator lays it out."""
    lines = ["SELECT * FROM Apply(", *on, f"\treturns({returns})", "\tUSING", "\t"]
    lines.append(f"\tAPPLY_COMMAND({_literal(command)})")
    lines.append(f"\tENVIRONMENT({_literal(environment)})")
    lines.append("\tSTYLE('csv')")
    lines.append(f"\tdelimiter({_literal(delimiter)})")
    if quotechar:
        lines.append(f"\tquotechar({_literal(quotechar)})")
    lines[-1] += " "  # teradataml's generator ends the last argument with a blank
    return "\n".join([*lines, ") as sqlmr"])


def install_statements(
    database: str, files: Sequence[tuple[str, str, bool]], replace: bool = False
) -> list[str]:
    """SET SESSION SEARCHUIFDBPATH, then one SYSUIF call per (file id, path, binary), spelled
    as teradataml's install_file / replace_file spell them."""
    import os

    statements = [f"DATABASE {_ident(database)}", f"SET SESSION SEARCHUIFDBPATH = {database}"]
    for file_id, path, binary in files:
        arg = _literal(("cb!" if binary else "cz!") + path)
        name = _literal(os.path.basename(path))
        if replace:
            statements.append(f"call SYSUIF.replace_file({_literal(file_id)}, {name}, {arg}, 1)")
        else:
            statements.append(f"call SYSUIF.install_file({_literal(file_id)}, {name}, {arg})")
    return statements


__all__ = [
    "CORE_FILE",
    "SCRIPT_FILE",
    "ScriptQuery",
    "install_statements",
    "model_file_name",
    "parse_columns",
]
