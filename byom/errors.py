"""One typed hierarchy for every failure byom reports.

Every message names what is at fault (model, column, line) and what to do next, because a SQL
user sees only the message text inside an engine's error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ByomError(Exception):
    """Base class: catch this to handle any byom failure."""


class EngineNotInstalledError(ByomError, ImportError):
    """An engine adapter was used without its install extra."""

    def __init__(self, engine: str, extra: str) -> None:
        super().__init__(f"the {engine} engine is not installed: run `pip install 'byom[{extra}]'`")


class ModelError(ByomError):
    """A model blob cannot be stored or loaded."""


class UnsupportedFormatError(ModelError):
    """The blob is in no format byom knows (see byom.formats)."""


class ModelTooLargeError(ModelError):
    """The blob exceeds the configured size bound."""


class UnsafeModelError(ModelError):
    """The model asks for something byom refuses to do for any model: XML entities or a DTD,
    tensors read from files outside the model bytes."""


class InvalidModelError(ModelError):
    """The blob is in a known format but cannot be loaded or fails to score a sample row."""


class UnsupportedPmmlError(InvalidModelError):
    """The PMML document uses an element, attribute value or function byom's native evaluator
    does not implement yet; the message names it and its line."""

    def __init__(self, what: str, line: int | None = None, who: str = "the PMML model") -> None:
        where = f" (line {line})" if line else ""
        super().__init__(
            f"{who} uses {what}{where}, which byom's native PMML evaluator does not support yet; "
            "set BYOM_PMML_FALLBACK=pypmml to score it with pypmml"
        )
        self.what, self.line = what, line


class UnknownModelError(ByomError, KeyError):
    """A model id is not in the model table."""

    def __init__(self, model_id: str, known: Iterable[str], table: str = "") -> None:
        known = list(known)
        close = difflib.get_close_matches(model_id, known, n=3, cutoff=0.5)
        where = f" in table {table}" if table else ""
        msg = f"unknown model id {model_id!r}{where}"
        if close:
            msg += "; did you mean " + ", ".join(repr(c) for c in close) + "?"
        elif known:
            shown = ", ".join(repr(k) for k in sorted(known)[:10])
            msg += f"; known ids: {shown}" + (" ..." if len(known) > 10 else "")
        else:
            msg += "; the table holds no models: add one with `byom models add`"
        self.model_id = model_id
        self.suggestions = close
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class ModelTableError(ByomError):
    """The model table is missing, unreadable, or lacks the model_id and model columns."""


class ModelExistsError(ModelError):
    """Saving under an id that is taken, without replace."""


class InputError(ByomError):
    """The rows given to a model do not fit its inputs."""


class MissingColumnError(InputError):
    """A model input has no matching column."""

    def __init__(self, model_id: str, missing: list[str], available: Iterable[str]) -> None:
        available = list(available)
        hints = []
        for name in missing:
            close = difflib.get_close_matches(name.lower(), [a.lower() for a in available], n=1)
            if close:
                hints.append(f"{name!r} (did you mean {close[0]!r}?)")
            else:
                hints.append(repr(name))
        cols = ", ".join(repr(a) for a in available) or "none"
        super().__init__(
            f"model {model_id!r} needs input column(s) {', '.join(hints)} but the row has "
            f"columns {cols}; rename the columns or save the model with an input map "
            "(`byom models add --inputs`)"
        )
        self.missing = missing


class AmbiguousColumnError(InputError):
    """Several columns match one model input only when case is ignored."""

    def __init__(self, model_id: str, wanted: str, columns: list[str]) -> None:
        shown = " and ".join(repr(c) for c in columns)
        super().__init__(
            f"model {model_id!r} needs input column {wanted!r}; columns {shown} both match it "
            "only when case is ignored: rename or drop one of them, or save the model with an "
            "input map naming the exact column (`byom models add --inputs`)"
        )
        self.model_id, self.wanted, self.columns = model_id, wanted, columns


class InputTypeError(InputError):
    """A column's values cannot be converted to the type the model declares."""


class InvalidValueError(InputError):
    """A value the model itself declares invalid, such as an unseen category."""


class ArityError(InputError):
    """A positional call passes a different number of values than the model has inputs."""

    def __init__(
        self, model_id: str, expected: list[str], passed: int, row_hint: str | None = None
    ) -> None:
        shown = ", ".join(expected[:12]) + (" ..." if len(expected) > 12 else "")
        how = f", as {row_hint}" if row_hint else ""
        super().__init__(
            f"model {model_id!r} takes {len(expected)} input value(s) ({shown}) but the call "
            f"passes {passed}; pass the whole row by name instead{how}"
        )
        self.model_id, self.expected, self.passed = model_id, expected, passed

    def with_row_hint(self, row_hint: str) -> ArityError:
        """The same error, naming the by-name form of the engine the user is in (engine
        adapters add it: the core does not know how each engine spells a row)."""
        return ArityError(self.model_id, self.expected, self.passed, row_hint)


class ScoringError(ByomError):
    """The runtime failed while scoring a batch."""


class ModelChangedError(ByomError):
    """A model was replaced between resolving its version and fetching its bytes."""


class ModelMemoryError(ByomError):
    """The models one statement scores need more memory together than BYOM_CACHE_BYTES."""

    def __init__(self, count: int, needed: int, bound: int) -> None:
        super().__init__(
            f"this statement scores at least {count:,} models, which need about "
            f"{_mib(needed)} of memory loaded together, more than BYOM_CACHE_BYTES "
            f"({_mib(bound)}): set BYOM_CACHE_BYTES to at least {_mib(needed)} in the engine's "
            "environment (its processes need that memory), or score fewer models per "
            "statement (for example WHERE model_id IN (...))"
        )
        self.count, self.needed, self.bound = count, needed, bound


def _mib(size: int) -> str:
    return f"{size / 1024**2:,.1f} MiB"
