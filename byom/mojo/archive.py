"""An H2O MOJO read from its bytes, never from disk: the zip's entries bounded before they are
read, `model.ini` parsed as h2o-genmodel parses it, the domains (categorical levels) loaded.

A MOJO is hostile input like every model blob: entries with `..` or absolute paths, zip bombs
(an entry's declared size, and the bytes actually read, are bounded; so is their sum and the
number of entries), a missing `model.ini` and column counts that disagree are refused by name.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field

import numpy as np

from byom.errors import InvalidModelError
from byom.scorers.base import ModelInput, Task

#: The zip's signature; a MOJO is a zip whose `model.ini` says what it holds.
ZIP_MAGIC = b"PK\x03\x04"
MAX_ENTRIES = 100_000
#: Uncompressed bytes read from one MOJO, all entries together (the blob itself is bounded by
#: BYOM_MAX_MODEL_BYTES before it reaches here).
MAX_UNZIPPED = 1 << 30
_LINE = re.compile(r"\r\n|\r|\n")  # Java's readLine: no other line breaks


@dataclass
class Mojo:
    """What a MOJO's archive says: `info` (model.ini's [info], values typed as genmodel types
    them), the columns (features first, the response last), each column's levels (None:
    numeric) and the other entries' bytes by name."""

    info: dict[str, object]
    columns: list[str]
    domains: list[list[str] | None]
    entries: dict[str, bytes] = field(repr=False)
    #: How errors name the model ("MOJO 'churn'").
    who: str = "the MOJO"

    def integer(self, key: str, default: int | None = None) -> int:
        value = self.info.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(f"model.ini's {key} is {value!r}, not a whole number")
        return value

    def number(self, key: str, default: float | None = None) -> float:
        value = self.info.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"model.ini's {key} is {value!r}, not a number")
        return float(value)

    def numbers(self, key: str, size: int | None = None) -> np.ndarray:
        """An array of numbers (float64), of `size` when given; a one-element array reads as
        a number, and is taken as one."""
        found = self.optional_numbers(key, size)
        if found is None:
            raise self.error(f"model.ini has no {key}")
        return found

    def optional_numbers(self, key: str, size: int | None = None) -> np.ndarray | None:
        """`numbers`, or None where model.ini has no value for `key` (or says null)."""
        value = self.info.get(key)
        if value is None:
            return None
        values = (
            [value] if isinstance(value, int | float) and not isinstance(value, bool) else value
        )
        if not isinstance(values, list) or (size is not None and len(values) != size):
            wanted = "" if size is None else f" of {size}"
            raise self.error(f"model.ini's {key} is {value!r}, not an array{wanted} of numbers")
        return np.array(values, np.float64)

    def text(self, key: str, default: str | None = None) -> str:
        value = self.info.get(key, default)
        if value is None:
            raise self.error(f"model.ini has no {key}")
        return str(value)

    def inputs(self, n_features: int) -> tuple[ModelInput, ...]:
        """The first `n_features` columns as inputs: a column with levels takes text (its
        levels), any other a number."""
        return tuple(
            ModelInput(name, "string", categories=tuple(levels))
            if (levels := self.domains[i]) is not None
            else ModelInput(name, "float64")
            for i, name in enumerate(self.columns[:n_features])
        )

    def outcome(self) -> tuple[Task, tuple[str, ...]]:
        """("classification", the response's levels) or ("regression", ())."""
        n_classes = self.integer("n_classes")
        if n_classes < 2:
            return "regression", ()
        response = self.domains[-1] if self.info.get("supervised") is True else None
        if response is not None and len(response) == n_classes:
            return "classification", tuple(response)
        return "classification", tuple(str(k) for k in range(n_classes))  # a 0/1 response

    def error(self, message: str) -> InvalidModelError:
        return InvalidModelError(f"{self.who}: {message}")


def sniff(head: bytes) -> bool:
    """A zip (local file header) naming `model.ini`, or whose entries are a MOJO's."""
    return head.startswith(ZIP_MAGIC) and (
        b"model.ini" in head
        or b"trees/t" in head
        or b"domains/d" in head
        or b"boosterBytes" in head  # H2O's XGBoost writes its booster first
    )


def read(blob: bytes, who: str) -> Mojo:
    """Open the archive in memory and read model.ini and the domains; every entry's bytes are
    read here, within the bounds, so nothing later touches the zip."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(blob))
        infos = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise InvalidModelError(f"{who}: not a readable zip archive ({exc})") from None
    if len(infos) > MAX_ENTRIES:
        raise InvalidModelError(f"{who}: {len(infos):,} entries, over {MAX_ENTRIES:,}")
    declared = 0
    for info in infos:
        name = info.filename
        if name.startswith(("/", "\\")) or ".." in name.split("/") or ":" in name or "\\" in name:
            raise InvalidModelError(f"{who}: entry {name!r} is a path outside the archive")
        declared += info.file_size
    if declared > MAX_UNZIPPED:
        raise InvalidModelError(
            f"{who}: its entries unpack to {declared:,} bytes, over byom's bound of "
            f"{MAX_UNZIPPED:,} (a zip bomb, or a model far larger than any MOJO byom takes)"
        )
    entries: dict[str, bytes] = {}
    for info in infos:
        if info.is_dir():
            continue
        try:
            with archive.open(info) as stream:
                data = stream.read(info.file_size + 1)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as exc:
            raise InvalidModelError(
                f"{who}: entry {info.filename!r} is unreadable ({exc})"
            ) from None
        if len(data) != info.file_size:
            raise InvalidModelError(
                f"{who}: entry {info.filename!r} holds {len(data):,}+ bytes, not the "
                f"{info.file_size:,} its header declares"
            )
        entries[info.filename] = data
    return parse(entries, who)


def parse(entries: dict[str, bytes], who: str) -> Mojo:
    """A MOJO from its entries' bytes (a whole archive's, or a sub-model's folder's, with the
    folder taken off their names)."""
    if "model.ini" not in entries:
        raise InvalidModelError(f"{who}: a zip without model.ini is not an H2O MOJO")
    info_map, columns, domain_files = _model_ini(_text(entries["model.ini"], who), who)
    mojo = Mojo(info_map, columns, [None] * len(columns), entries, who)
    escaped = info_map.get("escape_domain_values") is True
    for col, (count, name) in domain_files.items():
        text = entries.get(f"domains/{name}")
        if text is None:
            raise mojo.error(f"domain file domains/{name} (column {columns[col]!r}) is missing")
        levels = _LINE.split(_text(text, who))
        if levels and levels[-1] == "":
            levels.pop()  # the last line's break
        if len(levels) != count:
            raise mojo.error(f"domains/{name} holds {len(levels)} levels, model.ini says {count}")
        mojo.domains[col] = [_unescape(v) for v in levels] if escaped else levels
    return mojo


def _text(data: bytes, who: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidModelError(f"{who}: a text entry is not UTF-8") from None


def _model_ini(
    text: str, who: str
) -> tuple[dict[str, object], list[str], dict[int, tuple[int, str]]]:
    info: dict[str, object] = {}
    columns: list[str] = []
    domains: dict[int, tuple[int, str]] = {}
    section = None
    for raw in _LINE.split(text):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line in ("[info]", "[columns]", "[domains]"):
            section = line
            continue
        if section == "[info]":
            parts = re.split(r"\s*=\s*", line, maxsplit=1)
            if len(parts) != 2:
                raise InvalidModelError(f"{who}: model.ini line {line!r} is not key = value")
            key, value = parts
            info[key] = value if key == "uuid" else _typed(value)
        elif section == "[columns]":
            columns.append(line)
        elif section == "[domains]":
            found = re.fullmatch(r"(\d+):\s*(\d+) (.+)", line)
            if found is None:
                raise InvalidModelError(f"{who}: model.ini domain line {line!r} is malformed")
            domains[int(found[1])] = (int(found[2]), found[3])
        else:
            raise InvalidModelError(f"{who}: model.ini line {line!r} is outside any section")
    declared = info.get("n_columns")
    if not isinstance(declared, int) or declared != len(columns):
        raise InvalidModelError(
            f"{who}: model.ini declares {declared!r} columns but lists {len(columns)}"
        )
    for col in domains:
        if col >= len(columns):
            raise InvalidModelError(f"{who}: a domain names column {col}, past the last")
    return info, columns, domains


def _typed(value: str) -> object:
    """A model.ini value as genmodel types it: bool or null, int, double, int or double
    arrays, else the text."""
    if value in ("true", "false"):
        return value == "true"
    if value == "null":
        return None
    if re.fullmatch(r"[+-]?\d+", value) and -(2**31) <= int(value) < 2**31:
        return int(value)
    try:
        return float(value)
    except ValueError:
        pass
    if value.startswith("[") and value.endswith("]") and len(value) > 2:
        parts = value[1:-1].split(",")
        try:
            return [float(p) for p in parts]
        except ValueError:
            return value
    return value


def _unescape(level: str) -> str:
    """genmodel's unescapeNewlines: `\\n` is a line break, `\\x` is x."""
    out, i = [], 0
    while i < len(level):
        c = level[i]
        if c == "\\" and i + 1 < len(level):
            nxt = level[i + 1]
            out.append("\n" if nxt == "n" else nxt)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)
