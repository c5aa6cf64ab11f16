"""Score an engine's Arrow batch: group rows by model version, bind inputs, render outputs.

Every engine adapter calls `score_batch`; the adapter only converts its engine's batch to Arrow
and back. One output row per input row, in order; a NULL model id gives a NULL result.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from byom.cache import ContentCache
from byom.errors import (
    InvalidModelError,
    InvalidValueError,
    ModelChangedError,
    ModelMemoryError,
    UnknownModelError,
)
from byom.formats import check_size, sha256_hex
from byom.inputs import BatchColumns, InputBinder, InputMap, Plan, parse_input_map
from byom.outputs import ARROW_TYPES, OutputKind, render
from byom.scorers import Scorer, load_hashed_scorer
from byom.scorers.base import ModelFamily

#: A model's features by input name, as its scorer takes them.
Features = dict[str, np.ndarray]


@dataclass(frozen=True)
class StoredModel:
    """A model row as an engine reads it from its model table."""

    model_id: str
    blob: bytes
    #: The version key the engine resolved for this row (content hash, plus the input map's).
    version: str
    sha256: str | None = None
    input_map: str | None = None


class ModelSource(Protocol):
    """What an engine adapter provides so the core can fetch model bytes on a cache miss."""

    table: str

    def fetch(self, model_id: str) -> StoredModel | None: ...

    def model_ids(self) -> list[str]: ...


@dataclass(frozen=True)
class BoundModel:
    """A loaded scorer together with how table columns feed it."""

    model_id: str
    scorer: Scorer
    binder: InputBinder
    #: About what the loaded model holds in memory (`Scorer.memory_bytes`).
    memory: int = 0
    #: The family it is scored with and its member index there (`membership`), by the shape
    #: of the batches it meets.
    _memberships: dict[int, tuple[ModelFamily | None, int]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def create(
        cls,
        model_id: str,
        scorer: Scorer,
        input_map: InputMap | str | None = None,
        memory: int = 0,
    ) -> BoundModel:
        parsed = parse_input_map(input_map) if not isinstance(input_map, dict) else input_map
        binder = InputBinder(model_id, scorer.inputs, parsed, scorer.missing_string)
        return cls(model_id, scorer, binder, memory)

    def features(self, args: Sequence[pa.Array]) -> dict[str, np.ndarray]:
        """A single struct argument is a whole row matched by name; otherwise by position."""
        if len(args) == 1 and pa.types.is_struct(args[0].type):
            row = args[0]
            names = [row.type.field(i).name for i in range(row.type.num_fields)]
            return self.binder.by_name(names, [row.field(i) for i in range(len(names))])
        return self.binder.by_position(args)

    def score(
        self, kinds: Sequence[OutputKind], args: Sequence[pa.Array], n: int
    ) -> list[pa.Array]:
        """Each requested result, rendered from one run of the model."""
        return self.render(kinds, lambda: self.features(args), n)

    def score_rows(
        self, kinds: Sequence[OutputKind], batch: _SharedBatch, start: int, stop: int
    ) -> list[pa.Array]:
        """`score` on rows [start, stop) of a batch that several models share."""
        return self.render(kinds, lambda: self.features_rows(batch, start, stop), stop - start)

    def features_rows(self, batch: _SharedBatch, start: int, stop: int) -> Features:
        """The features of rows [start, stop) of a batch that several models share."""
        return self.binder.from_batch(self._plan(batch), batch.columns, start, stop)

    def membership(self, batch: _SharedBatch) -> tuple[ModelFamily | None, int]:
        """The family this model is scored with on batches of this shape, and its member
        index there: models of one `Scorer.family` key that read the same columns alike share
        a family, process-wide; (None, -1): scored alone."""
        found = self._memberships.get(batch.shape)
        if found is None:
            key = self.scorer.family()
            if key is None:
                found = (None, -1)
            else:
                family = _family(
                    (type(self.scorer), key, self.binder.reads(self._plan(batch))), self.scorer
                )
                found = (family, family.member(self.scorer))
            self._memberships[batch.shape] = found
        return found

    def _plan(self, batch: _SharedBatch) -> Plan:
        if batch.names is not None:
            return self.binder.plan(batch.names)
        return self.binder.positional_plan(len(batch.columns.columns))

    def render(
        self,
        kinds: Sequence[OutputKind],
        features: Callable[[], Features],
        n: int,
    ) -> list[pa.Array]:
        """Each requested result, from one run of the model on `features()`."""
        try:
            prediction = self.scorer.predict(features(), n, _full(kinds))
        except InvalidValueError as exc:  # scorers are shared by content: name the model here
            raise InvalidValueError(f"model {self.model_id!r}: {exc}") from None
        return [render(kind, prediction, self.model_id) for kind in kinds]


@dataclass
class _SharedBatch:
    """A batch whose rows several models score: its columns, and their names when the row
    came as one struct (None: positional arguments)."""

    columns: BatchColumns
    names: tuple[str, ...] | None
    #: What a model's binding plan depends on (the names, or the number of arguments), as a
    #: number this process gives each such shape once.
    shape: int = field(init=False)

    def __post_init__(self) -> None:
        shape = self.names if self.names is not None else len(self.columns.columns)
        found = _shapes.get(shape)
        if found is None:
            with _registry_lock:
                if len(_shapes) >= 4096:  # forgotten shapes get new numbers: never reused
                    _shapes.clear()
                found = _shapes.setdefault(shape, next(_shape_numbers))
        self.shape = found


_shapes: dict[object, int] = {}
_shape_numbers = itertools.count()
#: Model families by (scorer type, `Scorer.family` key, what the binder reads): shared by
#: every statement, so a model's membership is worked out once per process.
_families: dict[tuple[object, ...], ModelFamily] = {}
_registry_lock = threading.Lock()


def _family(key: tuple[object, ...], scorer: Scorer) -> ModelFamily:
    found = _families.get(key)
    if found is None:
        with _registry_lock:
            found = _families.get(key)
            if found is None:
                if len(_families) >= 1024:  # members keep the family they joined
                    _families.clear()
                found = _families[key] = scorer.make_family()
    return found


class _Slot(NamedTuple):
    """A model version as one statement scores it: bound, and its family and member index
    there (None and -1: scored alone)."""

    model: BoundModel
    family: ModelFamily | None
    member: int


class StatementModels:
    """The models one statement has bound in this process, and the memory they need together.

    Every model a statement scores must stay loaded while it runs: its rows may come in any
    order, so a model evicted to make room for another would load again and again. So when a
    statement's models need more than BYOM_CACHE_BYTES together, the statement fails at once,
    saying how much they need, instead of thrashing the cache. Engines keep one per statement
    (or per task, or per process, whichever they can see).

    A statement may start from the previous one's models (`following`): statement after
    statement over the same models then finds each one counted and pinned already, instead of
    paying some microseconds per model per statement. Carried models the new statement does
    not use stay pinned only until the bound is reached: then they are let go and counting
    starts over from this statement's models."""

    def __init__(self) -> None:
        self._sizes: dict[str, int] = {}
        self._total = 0
        self.carried = False  # the counts include models of earlier statements
        #: With carried models: the versions this statement has scored (kept when they go).
        self.used: set[str] = set()
        self._lock = threading.Lock()
        #: The statement's bound models by (model id, version): held for the statement, so
        #: none is loaded twice in it, and found again without the caches' locks.
        self.bound: dict[tuple[str, str], BoundModel] = {}
        #: Per row shape (`_SharedBatch.shape`), each version's model and family member.
        self.slots: dict[int, dict[str, _Slot]] = {}

    def following(self) -> StatementModels:
        """The next statement's models, starting with this one's."""
        after = StatementModels()
        with self._lock:
            after._sizes, after._total = dict(self._sizes), self._total
            after.bound = dict(self.bound)
            after.slots = {shape: dict(slots) for shape, slots in list(self.slots.items())}
            after.carried = bool(self._sizes)
        return after

    def add(self, version: str, memory: int) -> None:
        if version in self._sizes:  # the common case, without the lock
            return
        self._count([(version, memory)])

    def pin(self, table: str, ids: list[str], versions: list[str], models: list[BoundModel]):
        """Count models found bound already (as `add` counts them; the statement's slots hold
        them) and mark them recently used in the bound-model cache (put back if it evicted
        them meanwhile): one lock each for the whole list."""
        self._count([(v, m.memory) for v, m in zip(versions, models, strict=True)])
        bound_cache.touch(
            [
                (_bound_key(table, i, v), m, m.memory)
                for i, v, m in zip(ids, versions, models, strict=True)
            ]
        )

    def _count(self, entries: list[tuple[str, int]]) -> None:
        """Count versions not counted yet; over the bound, let carried models go, then fail
        if this statement's own models still need more than it."""
        bound = bound_cache.max_bytes
        with self._lock:
            for version, memory in entries:
                if version not in self._sizes:
                    self._sizes[version] = memory
                    self._total += memory
            if self._total > bound and self.carried:  # new objects: batches keep theirs
                kept = self.used.union(version for version, _ in entries)
                self._sizes = {v: m for v, m in self._sizes.items() if v in kept}
                self._total, self.carried = sum(self._sizes.values()), False
                self.bound = {key: m for key, m in self.bound.items() if key[1] in kept}
                self.slots = {
                    shape: {v: slot for v, slot in list(slots.items()) if v in kept}
                    for shape, slots in list(self.slots.items())
                }
            count, total = len(self._sizes), self._total
        if total > bound and count > 1:
            raise ModelMemoryError(count, total, bound)


#: Bound models by model id and version key, bounded like the scorer cache (a bound model
#: keeps its scorer alive); the scorers inside are shared through the scorer cache.
bound_cache: ContentCache[BoundModel] = ContentCache()


def _bind(model_id: str, version: str, source: ModelSource) -> tuple[BoundModel, int]:
    """Load a model version; its size counts against the cache bound while it stays bound."""
    stored = source.fetch(model_id)
    if stored is None:
        raise UnknownModelError(model_id, source.model_ids(), source.table)
    if stored.version != version:
        raise ModelChangedError(
            f"model {model_id!r} was replaced in {source.table} while this statement ran; "
            "run the statement again"
        )
    return _bind_bytes(model_id, version, stored.blob, stored.input_map)


def _bind_bytes(
    model_id: str, version: str, blob: bytes, input_map: str | None
) -> tuple[BoundModel, int]:
    """Bind bytes that claim to be `version`: the key is recomputed from the bytes themselves,
    so no stored hash column can pass one model's bytes off as another's."""
    check_size(blob, model_id)
    sha = sha256_hex(blob)
    if version_key(sha, input_map) != version:
        raise ModelChangedError(
            f"model {model_id!r}: the bytes read do not match the version the statement "
            "resolved (the model was replaced meanwhile); run the statement again"
        )
    return _bind_hashed(model_id, blob, sha, input_map)


def _bind_hashed(
    model_id: str, blob: bytes, sha256: str, input_map: str | None
) -> tuple[BoundModel, int]:
    """Bind bytes hashed by the caller just now; the size counts against the cache bound."""
    scorer = load_hashed_scorer(blob, sha256, model_id)
    memory = scorer.memory_bytes(len(blob))
    return BoundModel.create(model_id, scorer, input_map, memory), memory


def score_batch(
    kinds: Sequence[OutputKind],
    model_ids: pa.Array,
    args: Sequence[pa.Array],
    source: ModelSource,
    versions: pa.Array | None = None,
    statement: StatementModels | None = None,
) -> list[pa.Array]:
    """Score one engine batch whose rows may name different models: the one way into the core
    for every engine. Returns one array per requested kind, each model run once per batch.
    `statement`, when the engine keeps one, counts the models the statement has bound.

    `args` is one struct column (the whole row, matched by name) or the values in the model's
    input order. `versions` holds each row's model version key as the engine resolved it
    inside the statement (NULL where the id is not in the table), so every row of a statement
    is scored by one version even if the table changes meanwhile; a `ModelCatalog` source,
    whose versions are fixed when it is built, may leave it out.
    """
    if versions is None:
        if not isinstance(source, ModelCatalog):
            raise TypeError("score_batch needs `versions` unless the source is a ModelCatalog")
        versions = source.versions(model_ids)
    if statement is None:  # a call on its own: its own statement
        statement = StatementModels()
    model_ids, versions = _flat(model_ids), _flat(versions)
    args = [_flat(a) for a in args]
    n = len(model_ids)
    if n == 0:
        return [pa.array([], ARROW_TYPES[kind]) for kind in kinds]
    encoded = pc.dictionary_encode(versions)
    if len(encoded.dictionary) == 1 and encoded.null_count == 0:
        # The common case: one model version for the whole batch.
        version = encoded.dictionary[0].as_py()
        model = _bound_for(model_ids[0].as_py(), version, source, statement)
        return model.score(kinds, args, n)
    return _score_groups(kinds, model_ids, encoded, args, source, statement)


def _score_groups(
    kinds: Sequence[OutputKind],
    model_ids: pa.Array,
    encoded: pa.DictionaryArray,
    args: Sequence[pa.Array],
    source: ModelSource,
    statement: StatementModels,
) -> list[pa.Array]:
    """A batch whose rows name several models (`encoded`: their versions, dictionary
    encoded). Each version is looked up once per batch in the statement's slots. When every
    row's model is of one family, one `ModelFamily.predict` scores the batch as it came, each
    row naming its member. Otherwise the rows are grouped by model once (a stable sort of the
    codes, skipped when each model's rows are already together), each column taken into that
    order once and converted once per type, each model (or family) run once on its rows, and
    the results put back in row order with one take."""
    n = len(model_ids)
    keys = encoded.dictionary.to_pylist()
    indices = encoded.indices
    if indices.null_count:
        indices = indices.fill_null(-1)
    codes = indices.to_numpy(zero_copy_only=False)  # int32: numpy indexes with it as it is
    if encoded.null_count:
        ids_valid = pc.is_valid(model_ids).to_numpy(zero_copy_only=False)
        unknown = np.flatnonzero((codes < 0) & ids_valid)
        if unknown.size:
            bad = model_ids[int(unknown[0])].as_py()
            raise UnknownModelError(str(bad), source.model_ids(), source.table)
    if len(args) == 1 and pa.types.is_struct(args[0].type):
        row = args[0]
        names: tuple[str, ...] | None = tuple(f.name for f in row.type)
        columns = [row.field(i) for i in range(row.type.num_fields)]
    else:
        names, columns = None, list(args)
    batch = _SharedBatch(BatchColumns(columns), names)
    slots = _slots(statement, keys, codes, model_ids, source, batch)
    family = slots[0].family if slots else None
    if family is not None and not encoded.null_count and all(s.family is family for s in slots):
        # One family, every row: no grouping at all.
        members = np.array([s.member for s in slots], np.int64).take(codes)
        model = slots[0].model
        prediction = family.predict(members, model.features_rows(batch, 0, n), _full(kinds))
        return [_typed(render(kind, prediction, model.model_id), kind) for kind in kinds]
    starts = np.flatnonzero(np.diff(codes, prepend=codes[0] - 1))  # where each run begins
    order: np.ndarray | None = None
    distinct = len(keys) + (1 if encoded.null_count else 0)  # the dictionary holds no others
    if len(starts) != distinct:  # some model's rows are apart: group them
        order = np.argsort(codes, kind="stable")
        codes = codes[order]
        starts = np.flatnonzero(np.diff(codes, prepend=codes[0] - 1))
        taken = pa.array(order)
        batch = _SharedBatch(BatchColumns([c.take(taken) for c in columns]), names)
    stops = np.append(starts[1:], n)
    done: list[tuple[int, list[pa.Array]]] = []  # (first row, results), in any order
    families: dict[int, list[tuple[int, int, _Slot]]] = {}
    for start, stop, code in zip(
        starts.tolist(), stops.tolist(), codes[starts].tolist(), strict=True
    ):
        if code < 0:
            done.append((start, [pa.nulls(stop - start, ARROW_TYPES[kind]) for kind in kinds]))
            continue
        slot = slots[code]
        if slot.family is None:
            done.append((start, slot.model.score_rows(kinds, batch, start, stop)))
        else:  # scored below with the other members of its family
            families.setdefault(id(slot.family), []).append((start, stop, slot))
    for members in families.values():
        done.extend(_score_family(kinds, members, batch))
    done.sort(key=lambda item: item[0])
    if len(done) == 1 and order is None:  # one family over the whole batch, in row order
        return [_typed(r, kind) for r, kind in zip(done[0][1], kinds, strict=True)]
    combined = []
    for i, kind in enumerate(kinds):
        combined.append(pa.concat_arrays([_typed(r[i], kind) for _, r in done]))
    if order is None:
        return combined
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.arange(n)
    back = pa.array(inverse)
    return [c.take(back) for c in combined]


def _slots(
    statement: StatementModels,
    keys: list[str],
    codes: np.ndarray,
    model_ids: pa.Array,
    source: ModelSource,
    batch: _SharedBatch,
) -> list[_Slot]:
    """Each dictionary version's slot in the statement. A version new to the statement is
    taken from the models this process holds bound (found by version, checked by model id),
    else bound (`_bound_for`), by the model id of its first row."""
    known = statement.slots.setdefault(batch.shape, {})
    found: list[_Slot | None] = [known.get(key) for key in keys]
    if statement.carried:
        statement.used.update(keys)
    if None not in found:
        return found  # type: ignore[return-value]
    new = [code for code, slot in enumerate(found) if slot is None]
    if len(new) <= 16:  # a few models new to the statement (the usual case): a scan each
        ids = [model_ids[int(np.argmax(codes == code))].as_py() for code in new]
    else:
        present, first = np.unique(codes, return_index=True)
        row_of = dict(zip(present.tolist(), first.tolist(), strict=True))
        ids = model_ids.take(pa.array([row_of[code] for code in new])).to_pylist()
    live = _live.get(source.table)
    if live is None:
        live = _live.setdefault(source.table, {})
    pinned: tuple[list[str], list[str], list[BoundModel]] = ([], [], [])
    for code, model_id in zip(new, ids, strict=True):
        version = keys[code]
        ref = live.get(version)
        model = None if ref is None else ref()
        if model is None or model.model_id != model_id:
            model = _bound_for(model_id, version, source, statement)
            if len(live) >= max(4096, 2 * len(bound_cache)):  # drop the dead references
                for gone in [v for v, r in live.items() if r() is None]:
                    del live[gone]
            live[version] = weakref.ref(model)
        else:
            pinned[0].append(model_id)
            pinned[1].append(version)
            pinned[2].append(model)
        found[code] = known[version] = _Slot(model, *model.membership(batch))
    if pinned[0]:
        statement.pin(source.table, *pinned)
    return found  # type: ignore[return-value]


#: Bound models by table and version, as long as something holds them (the bound-model cache,
#: a statement): a statement finds the models earlier ones bound without a lock per model.
_live: dict[str, dict[str, weakref.ref[BoundModel]]] = {}


def _full(kinds: Sequence[OutputKind]) -> bool:
    """Whether a kind needs more than the score (labels, every output)."""
    return any(kind is not OutputKind.SCORE for kind in kinds)


def _typed(result: pa.Array, kind: OutputKind) -> pa.Array:
    wanted = ARROW_TYPES[kind]
    return result if result.type == wanted else result.cast(wanted)


def _score_family(
    kinds: Sequence[OutputKind], members: list[tuple[int, int, _Slot]], batch: _SharedBatch
) -> list[tuple[int, list[pa.Array]]]:
    """Groups of rows whose models are members of one family: one prediction over all their
    rows (the batch's converted columns, sliced by runs of adjacent groups), rendered once,
    each run's results a slice of it."""
    runs: list[list[int]] = []  # [start, stop] of adjacent groups
    for start, stop, _ in members:
        if runs and runs[-1][1] == start:
            runs[-1][1] = stop
        else:
            runs.append([start, stop])
    first = members[0][2]
    pieces = [first.model.features_rows(batch, start, stop) for start, stop in runs]
    features = (
        pieces[0]
        if len(pieces) == 1
        else {name: np.concatenate([p[name] for p in pieces]) for name in pieces[0]}
    )
    index = np.array([slot.member for _, _, slot in members], np.int64)
    counts = [stop - start for start, stop, _ in members]
    assert first.family is not None
    prediction = first.family.predict(np.repeat(index, counts), features, _full(kinds))
    rendered = [render(kind, prediction, first.model.model_id) for kind in kinds]
    out, offset = [], 0
    for start, stop in runs:
        out.append((start, [r.slice(offset, stop - start) for r in rendered]))
        offset += stop - start
    return out


def _flat(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        return arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr


#: A model's bytes, input map and the sha256 byom computed from those bytes.
_Held = tuple[bytes, str | None, str]
#: The bytes behind each bound model version, as the engine handed them over inside a
#: statement: a model evicted mid-statement is rebound from them, never from a later snapshot.
held_bytes: ContentCache[_Held] = ContentCache()
#: The version each model id last resolved to: a statement whose bytes equal that version's
#: held bytes (a memory compare) needs no hashing.
_latest: dict[str, str] = {}


def resolve_versions(
    table: str,
    model_ids: pa.Array,
    blobs: pa.Array,
    input_maps: pa.Array,
    sizes: pa.Array,
) -> pa.Array:
    """The version key of each model row an engine read inside its statement's snapshot; its
    bytes are held for the statement, and the model is loaded when a row first needs it (an
    engine may resolve every model of its table for a statement that scores a few).

    Engines call this once per model per statement (a SQL subquery over the model table), so
    the bytes a statement scores with are the bytes its own snapshot holds, whatever happens
    to the table meanwhile. The key is hashed from the bytes, never read from a column; bytes
    equal to those already held are not hashed again. `blobs` is NULL where the engine
    withheld bytes over the size bound (`sizes` says how large they are)."""
    out: list[str | None] = []
    ids, maps, lengths = model_ids.to_pylist(), input_maps.to_pylist(), sizes.to_pylist()
    for i, (model_id, input_map, size) in enumerate(zip(ids, maps, lengths, strict=True)):
        if model_id is None:
            out.append(None)
            continue
        if size is None:
            raise InvalidModelError(
                f"model {model_id!r} in {table} has no bytes (its model column is NULL); store "
                "the model with `byom models add --replace`"
            )
        check_size(size, model_id, table)
        out.append(_resolve(table, model_id, blobs[i].as_buffer(), input_map))
    return pa.array(out, pa.string())


def _resolve(table: str, model_id: str, data: pa.Buffer, input_map: str | None) -> str:
    where = f"{table}\0{model_id}"
    version = _latest.get(where)
    held = None if version is None else held_bytes.get(f"{where}\0{version}")
    if (
        version is not None
        and held is not None
        and held[1] == input_map
        and data.equals(pa.py_buffer(held[0]))
    ):  # the same bytes as last time, compared in place: not copied, not hashed again
        return version
    blob = data.to_pybytes()
    sha = sha256_hex(blob)
    version = version_key(sha, input_map)
    held = (blob, input_map, sha)
    held_bytes.put(f"{where}\0{version}", held, len(blob))
    if len(_latest) > max(1024, 4 * len(held_bytes)):
        _latest.clear()  # only a shortcut: a forgotten entry costs one hash
    _latest[where] = version
    return version


def _bind_held(table: str, model_id: str, version: str, held: _Held) -> BoundModel:
    blob, input_map, sha = held
    key = _bound_key(table, model_id, version)
    return bound_cache.get_or_load(key, lambda: _bind_hashed(model_id, blob, sha, input_map))


def _bound_key(table: str, model_id: str, version: str) -> str:
    return f"{table}\0{model_id}\0{version}"


def _bound_for(
    model_id: str, version: str, source: ModelSource, statement: StatementModels | None = None
) -> BoundModel:
    """The bound model for a version: cached, or rebound from the bytes held for it, or read
    through the engine's source (and checked against the version) as the last resort."""
    if statement is not None:
        pinned = statement.bound.get((model_id, version))
        if pinned is not None:
            if statement.carried:
                statement.used.add(version)
            return pinned
    key = _bound_key(source.table, model_id, version)
    found = bound_cache.get(key)
    if found is None:
        held = held_bytes.get(key)
        if held is not None:
            found = _bind_held(source.table, model_id, version, held)
        else:
            found = bound_cache.get_or_load(key, lambda: _bind(model_id, version, source))
    if statement is not None:
        statement.add(version, found.memory)
        statement.bound[(model_id, version)] = found
    return found


def version_key(sha256: str, input_map: str | None) -> str:
    """A model version: its content hash, plus the input map's hash when it has one."""
    if input_map is None:
        return sha256
    return f"{sha256}/{hashlib.sha256(input_map.encode()).hexdigest()}"


class ModelCatalog:
    """Models known up front by id, for engines that ship models with the job instead of
    reading a table inside the statement: the version of each id is fixed when the catalog is
    built, and `fetch` supplies the bytes on a cache miss."""

    table = "in-memory models"

    def __init__(self, versions: dict[str, str] | None = None) -> None:
        self._versions: dict[str, str] = dict(versions or {})
        self._lookup: tuple[pa.Array, pa.Array] | None = None  # ids, versions; built on use

    def fetch(self, model_id: str) -> StoredModel | None:
        raise NotImplementedError

    def model_ids(self) -> list[str]:
        return list(self._versions)

    def input_columns(self, model_id: str) -> list[str]:
        """The table columns a model reads by name (for a job to check its input up front)."""
        if model_id not in self._versions:
            raise UnknownModelError(model_id, self.model_ids(), self.table)
        bound = _bound_for(model_id, self._versions[model_id], self)
        return [c for c in bound.binder.column_names() if c is not None]

    def versions(self, model_ids: pa.Array) -> pa.Array:
        """Each row's version key; NULL where the id is NULL or not in the catalog."""
        if self._lookup is None:  # once per catalog, not once per batch
            self._lookup = (
                pa.array(list(self._versions), pa.string()),
                pa.array(list(self._versions.values()), pa.string()),
            )
        ids, keys = self._lookup
        return keys.take(pc.index_in(_flat(model_ids).cast(pa.string()), value_set=ids))


class InMemoryModels(ModelCatalog):
    """Models held in process memory: the Python API, and the engines' tests."""

    def __init__(self) -> None:
        super().__init__()
        self._models: dict[str, StoredModel] = {}

    def add(self, model_id: str, blob: bytes, inputs: InputMap | str | None = None) -> None:
        sha = sha256_hex(blob)
        text = inputs if isinstance(inputs, str) or inputs is None else json.dumps(inputs)
        version = version_key(sha, text)
        self._models[model_id] = StoredModel(model_id, blob, version, sha, text)
        self._versions[model_id] = version
        self._lookup = None

    def fetch(self, model_id: str) -> StoredModel | None:
        return self._models.get(model_id)
