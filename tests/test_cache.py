"""The content-keyed cache: bounded by entries and bytes, one load per key under contention."""

from __future__ import annotations

import threading
import time

from byom.cache import ContentCache


def test_evicts_least_recently_used_by_bytes_and_entries():
    cache: ContentCache[str] = ContentCache(max_bytes=100, max_entries=3)
    for key in "abc":
        cache.get_or_load(key, lambda key=key: (key.upper(), 30))
    assert cache.get("a") == "A"  # a is now the most recently used
    cache.get_or_load("d", lambda: ("D", 30))  # 120 bytes > 100: evict b, the oldest
    assert "b" not in cache and {"a", "c", "d"} <= {k for k in "abcd" if k in cache}
    cache.get_or_load("e", lambda: ("E", 5))  # 4 entries > 3: evict c
    assert "c" not in cache and len(cache) == 3
    assert cache.stats.evictions == 2


def test_a_single_oversized_entry_is_still_kept():
    cache: ContentCache[str] = ContentCache(max_bytes=10, max_entries=5)
    assert cache.get_or_load("big", lambda: ("x", 1000)) == "x"
    assert "big" in cache


def test_concurrent_misses_load_once():
    cache: ContentCache[int] = ContentCache()
    calls = []

    def load() -> tuple[int, int]:
        calls.append(1)
        time.sleep(0.05)
        return 42, 1

    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.get_or_load("k", load)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [42] * 8 and len(calls) == 1
