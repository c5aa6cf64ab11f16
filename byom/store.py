"""What a model table row holds, the checks a model passes before it is saved, and the steps
every engine's model table shares (`ModelStore`)."""

from __future__ import annotations

import abc
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa

from byom.errors import ByomError, InvalidModelError, ModelExistsError, UnknownModelError
from byom.formats import detect_format, sha256_hex
from byom.inputs import parse_input_map
from byom.outputs import OutputKind, render
from byom.scorers import load_hashed_scorer
from byom.scorers.base import ModelInput
from byom.scoring import BoundModel

#: Columns of the full model table; a table with just model_id and model also works.
MODEL_TABLE_COLUMNS = (
    "model_id",
    "model",
    "format",
    "sha256",
    "size_bytes",
    "created_at",
    "description",
    "inputs",
    "input_schema",
    "output_schema",
)


@dataclass(frozen=True)
class ModelRecord:
    """A validated model, ready to be written to any engine's model table."""

    model_id: str
    blob: bytes
    format: str
    sha256: str
    created_at: datetime
    description: str | None
    #: The input map as canonical JSON, or None when columns match inputs by name.
    inputs: str | None
    input_schema: str
    output_schema: str

    @property
    def size_bytes(self) -> int:
        return len(self.blob)

    def row(self) -> tuple[object, ...]:
        """Values in MODEL_TABLE_COLUMNS order."""
        return (
            self.model_id,
            self.blob,
            self.format,
            self.sha256,
            self.size_bytes,
            self.created_at,
            self.description,
            self.inputs,
            self.input_schema,
            self.output_schema,
        )


def prepare_model(
    blob: bytes,
    model_id: str,
    inputs: str | dict[str, object] | None = None,
    description: str | None = None,
) -> ModelRecord:
    """Validate a model before saving: it must load, and score a generated sample row."""
    if not model_id or not model_id.strip():
        raise ByomError("a model id must be a non-empty string")
    fmt = detect_format(blob, model_id)  # checks the size first
    sha = sha256_hex(blob)
    scorer = load_hashed_scorer(blob, sha, model_id)  # hashed here, from the bytes: once
    input_map = parse_input_map(inputs)
    bound = BoundModel.create(model_id, scorer, input_map)
    try:
        sample = _sample_row(scorer.inputs)
        for kind in OutputKind:
            if kind is OutputKind.SCORE and scorer.task != "regression":
                continue  # a label-only classifier has no score; predict covers it
            render(kind, scorer.predict(bound.binder.by_position(sample), 1), model_id)
    except ByomError as exc:
        raise InvalidModelError(f"model {model_id!r} failed to score a sample row: {exc}") from exc
    except Exception as exc:
        raise InvalidModelError(
            f"model {model_id!r} failed to score a sample row: {type(exc).__name__}: {exc}"
        ) from exc
    schema = scorer.describe()
    return ModelRecord(
        model_id=model_id,
        blob=blob,
        format=fmt.name,
        sha256=sha,
        created_at=datetime.now(timezone.utc).replace(tzinfo=None),
        description=description,
        inputs=json.dumps(input_map, sort_keys=True) if input_map else None,
        input_schema=json.dumps(
            {"inputs": schema["inputs"], "columns": bound.binder.column_names()}
        ),
        output_schema=json.dumps({k: schema[k] for k in ("task", "target", "classes", "outputs")}),
    )


def _sample_row(inputs: tuple[ModelInput, ...]) -> list[pa.Array]:
    row: list[pa.Array] = []
    for inp in inputs:
        for _ in range(inp.width):
            if inp.type == "string":
                row.append(pa.array([inp.categories[0] if inp.categories else "a"]))
            elif inp.type == "bool":
                row.append(pa.array([False]))
            else:
                row.append(pa.array(np.full(1, inp.example or 0.0)))
    return row


class ModelStore(abc.ABC):
    """A model table in one engine. Saving, replacing, removing and showing follow the same
    steps everywhere; an engine says only how it counts, writes, deletes and lists rows."""

    table: str

    def add(
        self,
        model_id: str,
        blob: bytes,
        *,
        replace: bool = False,
        inputs: str | dict[str, object] | None = None,
        description: str | None = None,
    ) -> ModelRecord:
        """Validate the model (it must load and score a sample row), then save it."""
        record = prepare_model(blob, model_id, inputs, description)
        exists = self._count(model_id) > 0
        if exists and not replace:
            raise ModelExistsError(
                f"model {model_id!r} already exists in {self.table}; pass --replace "
                "(replace=True) to overwrite it"
            )
        self._write(record, replacing=exists)
        return record

    def remove(self, model_id: str) -> None:
        if not self._count(model_id):
            raise UnknownModelError(model_id, self.model_ids(), self.table)
        self._delete(model_id)

    def show(self, model_id: str) -> dict[str, Any]:
        for row in self.list():
            if row["model_id"] == model_id:
                return row
        raise UnknownModelError(model_id, self.model_ids(), self.table)

    @abc.abstractmethod
    def model_ids(self) -> list[str]: ...

    @abc.abstractmethod
    def _count(self, model_id: str) -> int:
        """Rows holding this id (0 where the table does not exist yet)."""

    @abc.abstractmethod
    def _write(self, record: ModelRecord, replacing: bool) -> None:
        """Save the record (creating the table if needed), replacing the id's rows if asked,
        atomically where the engine can."""

    @abc.abstractmethod
    def _delete(self, model_id: str) -> None: ...

    # Last: below this line `list` names the method, not the builtin.
    @abc.abstractmethod
    def list(self) -> list[dict[str, Any]]:
        """Every model's row without its bytes, by model id, with `size_bytes`."""
