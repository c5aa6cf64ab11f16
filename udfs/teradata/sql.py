"""The SQL a Teradata user runs: model files to install, and the SCRIPT query that scores.

The query text follows teradataml's own Script query layout (a test compares them), so what
`byom teradata sql` prints is what a teradataml user would see. Names follow Teradata BYOM's
scoring functions: pass-through columns are `accumulate`, outputs default to `prediction` and
`json_report`, and an input map plays the part of ModelInputFieldsMap.
"""

from __future__ import annotations

import re
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
    """An input map in its plain form (`c1,c2` or `input=c1,c2;other=c3`): no quotes or blanks
    to survive in SCRIPT_COMMAND."""
    if list(mapping) == [""]:
        return ",".join(mapping[""])
    return ";".join(f"{name}={','.join(cols)}" for name, cols in mapping.items())


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
    partitions: int = 256
    delimiter: str = "\t"
    quotechar: str | None = None
    charset: str | None = None
    model_shas: dict[str, str] = field(default_factory=dict)  # id -> sha256, for file delivery

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

    def command(self) -> str:
        args = [f"tdpython3 ./{self.database}/{SCRIPT_FILE}"]
        spec = ",".join(f"{c.name}:{c.type.replace(' ', '')}" for c in self.script_columns())
        if any(" " in c.name for c in self.columns):
            raise ByomError("column names with blanks cannot be passed in SCRIPT_COMMAND")
        args.append(f"--columns {spec}")
        if self.model_id is not None:
            args.append(f"--model-id {self.model_id}")
        else:
            args.append(f"--model-column {self.model_column}")
        if self.delivery == "inline":
            args.append(f"--model-data-column {MODEL}")
        else:
            for model_id, sha in sorted(self.model_shas.items()):
                args.append(f"--model-file {model_id}=./{self.database}/{model_file_name(sha)}")
        if self.accumulate:
            args.append(f"--accumulate {','.join(self.accumulate)}")
        if [o.lower() for o in self.outputs] != ["prediction", "json_report"]:
            args.append(f"--outputs {','.join(self.outputs)}")
        if self.inputs:
            args.append(f"--inputs {_map_text(parse_input_map(self.inputs) or {})}")
        if self.quotechar:
            args.append(f"--quotechar {self.quotechar}")
        if self.delimiter != "\t":
            args.append(f"--delimiter {self.delimiter}")
        command = " ".join(args)
        if any(" " in a.split(" ", 1)[1] for a in args[1:]):
            raise ByomError("SCRIPT_COMMAND arguments cannot hold blanks; rename the values")
        return command

    def on_query(self) -> str:
        cols = ", ".join(f"t.{_ident(c.name)}" for c in self.columns)
        if self.delivery == "file":
            return f"SELECT {cols} FROM {self.table} t"
        key = _ident(self.partition_key or self.columns[0].name)
        part = f"HASHBUCKET(HASHROW(t.{key})) MOD {self.partitions}"
        window = f"{part}" if self.model_id else f"t.{_ident(self.model_column or '')}, {part}"
        inner = (
            f"SELECT {cols}, {part} AS {PART}, "
            f"ROW_NUMBER() OVER (PARTITION BY {window} ORDER BY t.{key}) AS {ROW} "
            f"FROM {self.table} t"
        )
        outer_cols = ", ".join(f"d.{_ident(c.name)}" for c in self.columns)
        match = (
            _literal(self.model_id)
            if self.model_id is not None
            else f"d.{_ident(self.model_column or '')}"
        )
        return (
            f"SELECT {outer_cols}, d.{PART}, d.{ROW}, "
            f"CASE WHEN d.{ROW} = 1 THEN m.model_b64 END AS {MODEL} "
            f"FROM ({inner}) d LEFT JOIN {self.models_table} m ON m.model_id = {match}"
        )

    def distribution(self) -> tuple[str, str | None]:
        """The ON clause's PARTITION BY / HASH BY line and the ORDER BY column."""
        if self.delivery == "file":
            return "PARTITION BY ANY", None
        keys = [PART] if self.model_id else [self.model_column or "", PART]
        return "PARTITION BY " + ",".join(f'"{k}"' for k in keys), ROW

    def sql(self) -> str:
        """The SCRIPT query, laid out as teradataml's Script query generator lays it out."""
        dist, order = self.distribution()
        lines = [
            "SELECT * FROM Script(",
            f'\tON ({self.on_query()}) AS "input"',
            f"\t{dist}",
        ]
        if order:
            lines.append(f'\tORDER BY "{order}" ASC NULLS FIRST')
        lines += ["\t", f"\tSCRIPT_COMMAND({_literal(self.command())})"]
        lines.append(f"\tdelimiter({_literal(self.delimiter)})")
        returns = ", ".join(f"{n} {t}" for n, t in self.returns())
        lines.append(f"\treturns({_literal(returns)})")
        if self.charset:
            lines.append(f"\tcharset({_literal(self.charset)})")
        if self.quotechar:
            lines.append(f"\tquotechar({_literal(self.quotechar)})")
        lines.append(") as sqlmr")
        return "\n".join(lines)


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
