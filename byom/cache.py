"""Process-wide cache of loaded scorers, keyed by the model's content hash.

Keying by content (never by model id) means a model replaced in its table can never be served
stale, and the same bytes stored under two ids are loaded once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from byom import config

T = TypeVar("T")


@dataclass
class CacheStats:
    hits: int = 0
    loads: int = 0
    evictions: int = 0


class ContentCache(Generic[T]):
    """LRU bounded by the summed sizes of its entries (and by their count, when
    `max_entries` is above 0)."""

    def __init__(self, max_bytes: int | None = None, max_entries: int | None = None) -> None:
        self.max_bytes = config.CACHE_BYTES if max_bytes is None else max_bytes
        self.max_entries = config.CACHE_ENTRIES if max_entries is None else max_entries
        self._items: OrderedDict[str, tuple[T, int]] = OrderedDict()
        self._total = 0  # the entries' summed sizes
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self.stats = CacheStats()

    def get(self, key: str) -> T | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            self.stats.hits += 1
            return item[0]

    def get_or_load(self, key: str, load: Callable[[], tuple[T, int]]) -> T:
        """Return the cached value, or run load() once even if several threads miss together."""
        found = self.get(key)
        if found is not None:
            return found
        with self._lock:
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            found = self.get(key)
            if found is not None:
                return found
            try:
                value, size = load()
            except BaseException:
                with self._lock:
                    self._loading.pop(key, None)
                raise
            with self._lock:  # publish before dropping the key lock: no second load
                self.stats.loads += 1
                self._store(key, value, size)
                self._evict()
                self._loading.pop(key, None)
            return value

    def touch(self, entries: list[tuple[str, T, int]]) -> None:
        """Mark entries (key, value, size) as just used: each moved to the recent end, or
        stored again if it was evicted."""
        with self._lock:
            for key, value, size in entries:
                if key in self._items:
                    self._items.move_to_end(key)
                else:
                    self._store(key, value, size)
            self._evict()

    def put(self, key: str, value: T, size: int) -> None:
        """Store or replace an entry."""
        with self._lock:
            self._store(key, value, size)
            self._evict()

    def _store(self, key: str, value: T, size: int) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._total -= old[1]
        self._items[key] = (value, size)
        self._total += size

    def _evict(self) -> None:
        counted = self.max_entries > 0
        while len(self._items) > 1 and (
            self._total > self.max_bytes or (counted and len(self._items) > self.max_entries)
        ):
            _, (_, size) = self._items.popitem(last=False)
            self._total -= size
            self.stats.evictions += 1

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._total = 0

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: str) -> bool:
        return key in self._items
