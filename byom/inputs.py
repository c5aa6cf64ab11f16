"""Match table columns to a model's inputs and convert them to the types the model declares.

Three ways to match: by name (case-insensitive, extra columns ignored), by position, or through
an input map saved with the model (like Teradata's ModelInputFieldsMap), which also lets a model
with one [batch, k] tensor input be fed from k named columns.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from byom.errors import (
    AmbiguousColumnError,
    ArityError,
    InputError,
    InputTypeError,
    MissingColumnError,
)
from byom.scorers.base import ModelInput, ValueType

#: Per input slot: the index of the row's column that feeds it, and its label for errors.
Plan = tuple[tuple[int, str], ...]
#: Model input name -> the table columns that feed it, in tensor order. A column may be a
#: position, `[i]` (0-based, as Teradata's column indexes), resolved against the row's columns.
InputMap = dict[str, list[str]]

_RANGE = re.compile(r"\[\s*(\d*)\s*:\s*(\d*)\s*\]")
_POSITION = re.compile(r"\[\s*(\d+)\s*\]|(\d+)")
#: A list's items: commas inside brackets or double quotes do not split.
_ITEM = re.compile(r'(?:"(?:[^"]|"")*"|\[[^\]]*\]|[^,"\[])+')


def position(column: str) -> int | None:
    """The index a map entry `[i]` stands for; None for a column name."""
    found = _POSITION.fullmatch(column)
    return None if found is None else int(found[1] or found[2])


def parse_input_map(
    spec: str | Mapping[str, object] | Sequence[str] | None,
    columns: Sequence[str] | None = None,
) -> InputMap | None:
    """Read an input map in any of the forms Teradata's ModelInputFieldsMap or byom take: JSON,
    `input=c1,c2;other=c3`, `input=c1,c2,other=c3`, one `input=cols` string per tensor (a
    list), or `c1,c2,...` for a single input (kept as {"": [...]}, resolved by the binder).

    Columns are names, positions (`3` or `[3]`) or inclusive ranges (`[1:4]`, `[2:]`, `[:3]`),
    counted from 0 over the input's columns as Teradata counts them. With `columns` (the
    input's columns, in order) positions become names here; otherwise they stay `[i]` entries
    that the binder resolves against each row's field order.
    """
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return None
    if isinstance(spec, str) and spec.strip().startswith("{"):
        try:
            spec = json.loads(spec)
        except json.JSONDecodeError as exc:
            raise InputError(f"input map is not valid JSON: {exc}") from None
    if isinstance(spec, Mapping):
        pairs = []
        for key, value in spec.items():
            items = [value] if isinstance(value, str | int) else value
            if not isinstance(items, Sequence) or not all(
                isinstance(v, str | int) and not isinstance(v, bool) for v in items
            ):
                raise InputError(
                    f"input map entry {key!r} must be a column name or a list of names"
                )
            pairs.append((str(key), [str(v) for v in items]))
    elif isinstance(spec, str):
        pairs = _tensors(spec.split(";"))
    else:
        pairs = _tensors([part for text in spec for part in text.split(";")])
    out: InputMap = {}
    for name, items in pairs:
        if name in out:
            raise InputError(f"input map names input {name!r} twice: give each input once")
        out[name] = [c for item in items for c in _expand(item, name, columns)]
    return out


def _tensors(parts: Sequence[str]) -> list[tuple[str, list[str]]]:
    """(input, items) pairs from `name=c1,c2` texts; an item holding `=` starts another input."""
    pairs: list[tuple[str, list[str]]] = []
    for part in parts:
        for item in (m.strip() for m in _ITEM.findall(part)):
            if not item:
                continue
            name, sep, first = item.partition("=")
            if sep and not item.startswith('"'):
                pairs.append((name.strip(), [first.strip()] if first.strip() else []))
            elif not pairs:
                pairs.append(("", [item]))
            else:
                pairs[-1][1].append(item)
    if len(pairs) > 1 and pairs[0][0] == "":
        raise InputError(
            f"input map lists {', '.join(pairs[0][1])} before any input name: with several "
            "inputs write each as input=col1,col2"
        )
    return pairs


def _expand(item: str, name: str, columns: Sequence[str] | None) -> list[str]:
    """One map item as columns: a name as itself, a position or range as `[i]` entries, or
    as the names at those positions when the input's columns are known."""
    where = f"input map {'range' if ':' in item else 'position'} {item} for input {name!r}"
    found = _RANGE.fullmatch(item)
    if found:
        if (not found[1] or not found[2]) and columns is None:
            raise InputError(
                f"{where} is open-ended, which needs the input's columns: close it, as [1:4]"
            )
        n = len(columns) if columns is not None else 0
        lo, hi = int(found[1] or 0), int(found[2]) if found[2] else n - 1
        if hi < lo:
            raise InputError(f"{where} runs backwards: write [{hi}:{lo}]")
        indexes = list(range(lo, hi + 1))
    elif position(item) is not None:
        indexes = [position(item) or 0]
    else:
        if len(item) >= 2 and item[0] == item[-1] == '"':
            return [item[1:-1].replace('""', '"')]
        return [item]
    if columns is None:
        return [f"[{i}]" for i in indexes]
    if indexes[-1] >= len(columns):
        raise InputError(
            f"{where} is past the last of the input's {len(columns)} columns "
            f"({', '.join(columns)}), which count from 0"
        )
    return [columns[i] for i in indexes]


@dataclass(frozen=True)
class _Slot:
    """One scalar feature: a whole input (width 1) or one column of a tensor input."""

    input: ModelInput
    column: str | None  # the table column feeding it, when known


class InputBinder:
    """Turns Arrow columns into the feature arrays one model version expects."""

    def __init__(
        self,
        model_id: str,
        inputs: Sequence[ModelInput],
        input_map: InputMap | None = None,
        missing_string: str | None = None,
    ) -> None:
        self.model_id = model_id
        self.inputs = tuple(inputs)
        self.missing_string = missing_string
        input_map = dict(input_map or {})
        if "" in input_map:
            if len(self.inputs) != 1:
                raise InputError(
                    f"model {model_id!r} has {len(self.inputs)} inputs "
                    f"({', '.join(i.name for i in self.inputs)}): name each one in the input "
                    "map, as input=col1,col2;other=col3"
                )
            input_map[self.inputs[0].name] = input_map.pop("")
        by_lower = {i.name.lower(): i for i in self.inputs}
        for key in input_map:
            if key.lower() not in by_lower:
                raise InputError(
                    f"input map names {key!r}, which is not an input of model {model_id!r} "
                    f"(inputs: {', '.join(i.name for i in self.inputs)})"
                )
        lowered = {k.lower(): v for k, v in input_map.items()}
        slots: list[_Slot] = []
        for inp in self.inputs:
            cols = lowered.get(inp.name.lower())
            if cols is not None and len(cols) != inp.width:
                raise InputError(
                    f"input map gives {len(cols)} column(s) for input {inp.name!r} of model "
                    f"{model_id!r}, which takes {inp.width}"
                )
            if cols is None:
                cols = [inp.name] if inp.width == 1 else [None] * inp.width  # type: ignore[list-item]
            slots.extend(_Slot(inp, c) for c in cols)
        self._slots = tuple(slots)
        self._plans: dict[tuple[str, ...], Plan] = {}
        self._split: dict[Plan, list[tuple[ModelInput, tuple[int, ...], list[str]]]] = {}

    def column_names(self) -> list[str | None]:
        """The columns read by name; a position's column is known only from a row."""
        return [s.column if s.column and position(s.column) is None else None for s in self._slots]

    def by_name(self, names: Sequence[str], columns: Sequence[pa.Array]) -> dict[str, np.ndarray]:
        """Pick each feature's column by name; other columns are ignored.

        An exact match wins (input `x0` with columns `X0` and `x0` takes `x0`); otherwise the
        one column that matches ignoring case. Two columns that match only ignoring case (input
        `Age` with columns `AGE` and `age`) are ambiguous: refused, never settled by order."""
        plan = self.plan(tuple(names))
        return self._assemble([columns[i] for i, _ in plan], [label for _, label in plan])

    def plan(self, names: tuple[str, ...]) -> Plan:
        """Which of a row's columns (by index) feeds each slot, and its label for errors;
        worked out once per row shape and kept (engines send the same shape batch after
        batch)."""
        found = self._plans.get(names)
        if found is None:
            found = self._plan(names)
            if len(self._plans) >= 16:  # a handful of shapes per model in practice
                self._plans.clear()
            self._plans[names] = found
        return found

    def _plan(self, names: tuple[str, ...]) -> Plan:
        exact: dict[str, int] = {}
        folded: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            exact.setdefault(name, i)
            folded.setdefault(name.lower(), []).append(i)
        chosen: list[tuple[int, str]] = []
        missing: list[str] = []
        for slot in self._slots:
            if slot.column is None:
                raise MissingColumnError(
                    self.model_id,
                    [f"{slot.input.name} (a tensor of {slot.input.width} columns)"],
                    names,
                ) from None
            idx = exact.get(slot.column)
            at = position(slot.column) if idx is None else None
            if at is not None:  # an input map position, counted over the row's columns
                if at >= len(names):
                    raise InputError(
                        f"input map position {slot.column} for input {slot.input.name!r} of "
                        f"model {self.model_id!r} is past the row's {len(names)} columns "
                        f"({', '.join(names)}), which count from 0"
                    )
                idx = at
            if idx is None:
                candidates = folded.get(slot.column.lower(), [])
                if len(candidates) > 1:
                    raise AmbiguousColumnError(
                        self.model_id, slot.column, [names[i] for i in candidates]
                    )
                idx = candidates[0] if candidates else None
            if idx is None:
                missing.append(slot.column)
            else:
                chosen.append((idx, names[idx] if at is not None else slot.column))
        if missing:
            raise MissingColumnError(self.model_id, missing, names)
        return tuple(chosen)

    def positional_plan(self, count: int) -> Plan:
        """The plan of a positional call: argument i feeds slot i."""
        if count != len(self._slots):
            expected = [s.column or s.input.name for s in self._slots]
            raise ArityError(self.model_id, expected, count)
        return tuple((i, f"argument {i + 2}") for i in range(count))

    def from_batch(
        self, plan: Plan, batch: BatchColumns, start: int, stop: int
    ) -> dict[str, np.ndarray]:
        """The features of rows [start, stop) of a batch shared by several models: each column
        converted once per batch (and type), each model handed a slice of it. A conversion
        that fails over the whole batch is retried on this model's rows alone, so the error
        (or its absence) is this model's."""
        features: dict[str, np.ndarray] = {}
        for inp, indexes, labels in self._per_input(plan):
            whole = batch.converted(indexes, inp.type, inp.width > 1, self.missing_string)
            if whole is None:  # this model's rows alone, as a single-model batch would
                columns = [batch.columns[i].slice(start, stop - start) for i in indexes]
                features[inp.name] = self._assemble(columns, labels, only=inp)[inp.name]
            else:
                features[inp.name] = whole[start:stop]
        return features

    def reads(self, plan: Plan) -> tuple[object, ...]:
        """Everything `from_batch` takes from a batch under `plan`: two binders that read
        alike give the same features for the same rows."""
        return (
            tuple(
                (inp.name, inp.type, inp.width, indexes)
                for inp, indexes, _ in self._per_input(plan)
            ),
            self.missing_string,
        )

    def _per_input(self, plan: Plan) -> list[tuple[ModelInput, tuple[int, ...], list[str]]]:
        """The plan split by input: each input's column indexes and labels (kept per plan)."""
        found = self._split.get(plan)
        if found is None:
            found, pos = [], 0
            for inp in self.inputs:
                used = plan[pos : pos + inp.width]
                found.append((inp, tuple(i for i, _ in used), [label for _, label in used]))
                pos += inp.width
            if len(self._split) >= 16:
                self._split.clear()
            self._split[plan] = found
        return found

    def by_position(self, columns: Sequence[pa.Array]) -> dict[str, np.ndarray]:
        plan = self.positional_plan(len(columns))
        return self._assemble(list(columns), [label for _, label in plan])

    def _assemble(
        self, columns: list[pa.Array], labels: list[str], only: ModelInput | None = None
    ) -> dict[str, np.ndarray]:
        """The features from their columns, in slot order (`only`: the columns of one input)."""
        features: dict[str, np.ndarray] = {}
        pos = 0
        for inp in self.inputs if only is None else (only,):
            if inp.width == 1:
                features[inp.name] = convert_column(
                    columns[pos], inp.type, self.model_id, labels[pos], self.missing_string
                )
            else:
                # Fill the (n, width) tensor column by column: no per-column temporaries.
                n = len(columns[pos])
                dtype = _NUMPY.get(inp.type, object)
                matrix: np.ndarray = np.empty((n, inp.width), dtype=dtype)
                for j in range(inp.width):
                    matrix[:, j] = convert_column(
                        columns[pos + j],
                        inp.type,
                        self.model_id,
                        labels[pos + j],
                        self.missing_string,
                        cast=False,
                    )
                features[inp.name] = matrix
            pos += inp.width
        return features


_NUMPY: dict[ValueType, type] = {"float32": np.float32, "float64": np.float64}


class BatchColumns:
    """One engine batch's columns, shared by every model that scores some of its rows (rows
    already grouped by model): each column is converted to a model input type once per batch,
    and each model takes a slice."""

    def __init__(self, columns: Sequence[pa.Array]) -> None:
        self.columns = list(columns)
        self._converted: dict[tuple[object, ...], np.ndarray | None] = {}

    def converted(
        self, indexes: tuple[int, ...], target: ValueType, tensor: bool, missing: str | None
    ) -> np.ndarray | None:
        """Columns `indexes` converted to `target` over the whole batch ((n, k) for a tensor
        input, else (n,)); None where some row's value does not convert (the caller converts
        its own rows and reports the error, if any, as that model's)."""
        key = (indexes, target, tensor, missing)
        if key in self._converted:
            return self._converted[key]
        try:
            if tensor:
                n = len(self.columns[indexes[0]])
                out: np.ndarray = np.empty((n, len(indexes)), dtype=_NUMPY.get(target, object))
                for j, i in enumerate(indexes):
                    out[:, j] = self._one(i, target, missing, cast=False)
            else:
                out = self._one(indexes[0], target, missing, cast=True)
        except InputError:
            out = None  # type: ignore[assignment]
        self._converted[key] = out
        return out

    def _one(self, i: int, target: ValueType, missing: str | None, cast: bool) -> np.ndarray:
        return convert_column(self.columns[i], target, "", f"column {i}", missing, cast=cast)


def level_codes(values: np.ndarray, levels: pa.Array) -> np.ndarray:
    """float64: each value's position in `levels` (a categorical input's known levels, as
    text); NaN where the value is NULL or a level the model does not know."""
    text = pa.array(values, pa.string(), from_pandas=True)
    codes = pc.index_in(text, value_set=levels)
    return codes.cast(pa.float64()).to_numpy(zero_copy_only=False)


def convert_column(
    arr: pa.Array | pa.ChunkedArray,
    target: ValueType,
    model_id: str,
    column: str,
    missing_string: str | None = None,
    cast: bool = True,
) -> np.ndarray:
    """Convert one column to the model's declared type; NULL becomes the missing value.

    With cast=False a float target may come back as any float dtype (the caller assigns it into
    a typed array), which skips a copy on the hot path."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    t = arr.type
    if target in _NUMPY and (pa.types.is_floating(t) or pa.types.is_integer(t)):
        values = arr.to_numpy(zero_copy_only=False)  # NULL -> NaN
        return values if not cast else values.astype(_NUMPY[target], copy=False)
    if target in ("float32", "float64", "int64", "bool"):
        if pa.types.is_null(t):
            arr = pa.nulls(len(arr), pa.float64())
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            arr = _parse_numbers(arr, model_id, column)
        elif pa.types.is_boolean(t):
            arr = pc.cast(arr, pa.int8())
        elif not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t)):
            raise InputTypeError(
                f"model {model_id!r}: {column} is of type {t}, but the model expects a number; "
                "cast it in SQL (for example CAST(x AS DOUBLE))"
            )
        if target in _NUMPY:
            return pc.cast(arr, pa.float64() if target == "float64" else pa.float32()).to_numpy(
                zero_copy_only=False
            )
        if arr.null_count:
            raise InputTypeError(
                f"model {model_id!r}: {column} has NULLs, but the model's input is an {target} "
                "tensor with no missing value; replace them with COALESCE"
            )
        return pc.cast(arr, pa.int64() if target == "int64" else pa.bool_()).to_numpy(
            zero_copy_only=False
        )
    # target == "string": categorical input
    if pa.types.is_floating(t):
        # 2.0 and 2 name the same category
        as_int = pc.cast(arr, pa.int64(), safe=False)
        integral = pc.equal(pc.cast(as_int, t), arr)
        arr = pc.if_else(integral, pc.cast(as_int, pa.string()), pc.cast(arr, pa.string()))
    elif not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        try:
            arr = pc.cast(arr, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InputTypeError(
                f"model {model_id!r}: {column} is of type {t}, which cannot be read as a "
                "category; cast it to VARCHAR in SQL"
            ) from None
    if missing_string is not None:
        arr = pc.fill_null(arr, missing_string)
    return arr.to_numpy(zero_copy_only=False)


def _parse_numbers(arr: pa.Array, model_id: str, column: str) -> pa.Array:
    try:
        return pc.cast(pc.utf8_trim_whitespace(arr), pa.float64())
    except pa.ArrowInvalid:
        pass
    bad_row = None
    for i, value in enumerate(arr.to_pylist()):  # error path only
        try:
            if value is not None:
                float(value)
        except ValueError:
            bad_row = (i, value)
            break
    where = f" (row {bad_row[0] + 1} of the batch holds {bad_row[1]!r})" if bad_row else ""
    raise InputTypeError(
        f"model {model_id!r}: {column} holds text that is not a number{where}, but the model "
        "expects a number; fix or filter the values, or cast the column in SQL"
    )
