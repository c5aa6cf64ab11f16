"""Match table columns to a model's inputs and convert them to the types the model declares.

Three ways to match: by name (case-insensitive, extra columns ignored), by position, or through
an input map saved with the model (like Teradata's ModelInputFieldsMap), which also lets a model
with one [batch, k] tensor input be fed from k named columns.
"""

from __future__ import annotations

import json
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

#: Model input name -> the table columns that feed it, in tensor order.
InputMap = dict[str, list[str]]


def parse_input_map(spec: str | Mapping[str, object] | None) -> InputMap | None:
    """Read an input map from JSON, `input=c1,c2;other=c3`, or `c1,c2,...` (a single input).

    The single-input form is kept as {"": [...]} and resolved against the model by `bind_inputs`.
    """
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return None
    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith("{"):
            try:
                spec = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"input map is not valid JSON: {exc}") from None
        else:
            result: InputMap = {}
            for part in filter(None, (p.strip() for p in text.split(";"))):
                name, sep, cols = part.partition("=")
                if not sep:
                    name, cols = "", part
                result[name.strip()] = [c.strip() for c in cols.split(",") if c.strip()]
            return result
    assert isinstance(spec, Mapping)
    out: InputMap = {}
    for key, value in spec.items():
        if isinstance(value, str):
            out[str(key)] = [value]
        elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
            out[str(key)] = list(value)
        else:
            raise InputError(f"input map entry {key!r} must be a column name or a list of names")
    return out


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

    def column_names(self) -> list[str | None]:
        return [s.column for s in self._slots]

    def by_name(self, names: Sequence[str], columns: Sequence[pa.Array]) -> dict[str, np.ndarray]:
        """Pick each feature's column by name; other columns are ignored.

        An exact match wins (input `x0` with columns `X0` and `x0` takes `x0`); otherwise the
        one column that matches ignoring case. Two columns that match only ignoring case (input
        `Age` with columns `AGE` and `age`) are ambiguous: refused, never settled by order."""
        exact: dict[str, int] = {}
        folded: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            exact.setdefault(name, i)
            folded.setdefault(name.lower(), []).append(i)
        chosen: list[pa.Array] = []
        missing: list[str] = []
        for slot in self._slots:
            if slot.column is None:
                raise MissingColumnError(
                    self.model_id,
                    [f"{slot.input.name} (a tensor of {slot.input.width} columns)"],
                    names,
                ) from None
            idx = exact.get(slot.column)
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
                chosen.append(columns[idx])
        if missing:
            raise MissingColumnError(self.model_id, missing, names)
        labels = [s.column or s.input.name for s in self._slots]
        return self._assemble(chosen, labels)

    def by_position(self, columns: Sequence[pa.Array]) -> dict[str, np.ndarray]:
        if len(columns) != len(self._slots):
            expected = [s.column or s.input.name for s in self._slots]
            raise ArityError(self.model_id, expected, len(columns))
        labels = [f"argument {i + 2}" for i in range(len(columns))]
        return self._assemble(list(columns), labels)

    def _assemble(self, columns: list[pa.Array], labels: list[str]) -> dict[str, np.ndarray]:
        features: dict[str, np.ndarray] = {}
        pos = 0
        for inp in self.inputs:
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
