"""A small, bounded UBJSON decoder (Universal Binary JSON, draft 12), for XGBoost's `.ubj`
models: big-endian scalars, strings, objects and arrays, including the optimized containers
(`[$type#count`) XGBoost writes for its per-node arrays, which come back as numpy arrays.

Hostile bytes cannot make it allocate more than the input holds: every count and length is
checked against the bytes left before anything is built, nesting is bounded, and any
malformation raises `UbjsonError` with the byte offset.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

#: Containers nested deeper than this are refused (an XGBoost model nests about 8 deep).
MAX_DEPTH = 64

#: Numeric markers: (struct format, numpy dtype, size in bytes).
_INTS = {
    b"i": (">b", "i1", 1),
    b"U": (">B", "u1", 1),
    b"I": (">h", ">i2", 2),
    b"l": (">i", ">i4", 4),
    b"L": (">q", ">i8", 8),
}
_NUMERIC = {**_INTS, b"d": (">f", ">f4", 4), b"D": (">d", ">f8", 8)}
_CONSTANTS: dict[bytes, Any] = {b"Z": None, b"T": True, b"F": False}


class UbjsonError(ValueError):
    """The bytes are not well-formed UBJSON (or exceed the decoder's bounds)."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def fail(self, what: str) -> UbjsonError:
        return UbjsonError(f"UBJSON: {what} at byte {self.pos}")

    def take(self, size: int) -> memoryview:
        if size < 0 or self.pos + size > len(self.data):
            raise self.fail(f"{size:,} bytes needed but {len(self.data) - self.pos:,} are left")
        out = self.data[self.pos : self.pos + size]
        self.pos += size
        return out

    def marker(self) -> bytes:
        while True:
            m = bytes(self.take(1))
            if m != b"N":  # no-op
                return m

    def number(self, m: bytes) -> int | float:
        fmt, _, size = _NUMERIC[m]
        value: int | float = struct.unpack(fmt, self.take(size))[0]
        return value

    def length(self) -> int:
        m = self.marker()
        if m not in _INTS:
            raise self.fail(f"a length must be an integer, not marker {m!r}")
        n = self.number(m)
        if not isinstance(n, int) or n < 0:
            raise self.fail(f"negative length {n}")
        return n

    def string(self) -> str:
        n = self.length()
        try:
            return str(self.take(n), "utf-8")
        except UnicodeDecodeError:
            raise self.fail("a string that is not UTF-8") from None

    def value(self, m: bytes, depth: int) -> Any:
        if m in _NUMERIC:
            return self.number(m)
        if m in _CONSTANTS:
            return _CONSTANTS[m]
        if m == b"S" or m == b"H":
            text = self.string()
            return float(text) if m == b"H" else text
        if m == b"C":
            return chr(self.take(1)[0])
        if m in (b"[", b"{"):
            if depth >= MAX_DEPTH:
                raise self.fail(f"containers nested deeper than {MAX_DEPTH}")
            return self.array(depth + 1) if m == b"[" else self.object(depth + 1)
        raise self.fail(f"unknown marker {m!r}")

    def header(self) -> tuple[bytes | None, int | None]:
        """An optimized container's `$type` and `#count`, when present."""
        kind = count = None
        if bytes(self.data[self.pos : self.pos + 1]) == b"$":
            self.pos += 1
            kind = bytes(self.take(1))
            if kind not in _NUMERIC and kind not in _CONSTANTS and kind not in b"SHC[{":
                raise self.fail(f"unknown container type {kind!r}")
            if bytes(self.data[self.pos : self.pos + 1]) != b"#":
                raise self.fail("a typed container without a count")
        if bytes(self.data[self.pos : self.pos + 1]) == b"#":
            self.pos += 1
            count = self.length()
            # Every element takes at least one byte (or its type's size), unless it is a
            # constant of a typed container: refuse counts the bytes left cannot hold.
            size = _NUMERIC[kind][2] if kind in _NUMERIC else 1
            if kind in _CONSTANTS:
                size = 0
                if count > len(self.data):
                    raise self.fail(f"a count of {count:,} constants")
            elif count * size > len(self.data) - self.pos:
                raise self.fail(f"a count of {count:,} elements the remaining bytes cannot hold")
        return kind, count

    def array(self, depth: int) -> Any:
        kind, count = self.header()
        if kind in _NUMERIC and count is not None:
            _, dtype, size = _NUMERIC[kind]
            raw = np.frombuffer(self.take(count * size), dtype=dtype)
            return raw.astype(raw.dtype.newbyteorder("="))
        out = []
        if count is not None:
            for _ in range(count):
                out.append(self.value(kind or self.marker(), depth))
            return out
        while (m := self.marker()) != b"]":
            out.append(self.value(m, depth))
        return out

    def object(self, depth: int) -> dict[str, Any]:
        kind, count = self.header()
        out: dict[str, Any] = {}
        if count is not None:
            for _ in range(count):
                key = self.string()
                out[key] = self.value(kind or self.marker(), depth)
            return out
        while bytes(self.data[self.pos : self.pos + 1]) != b"}":
            if bytes(self.data[self.pos : self.pos + 1]) == b"N":
                self.pos += 1
                continue
            key = self.string()
            out[key] = self.value(self.marker(), depth)
        self.pos += 1
        return out


def loads(data: bytes) -> Any:
    """Decode one UBJSON value filling `data` (trailing bytes other than no-ops are refused)."""
    reader = _Reader(data)
    value = reader.value(reader.marker(), 0)
    while reader.pos < len(data):
        if bytes(reader.take(1)) != b"N":
            reader.pos -= 1
            raise reader.fail("trailing bytes after the value")
    return value
