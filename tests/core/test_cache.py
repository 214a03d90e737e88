"""core.cache.LRU: the least recently used entry goes first, handed to on_evict."""

from __future__ import annotations

import pytest

from core.cache import LRU


def test_evicts_the_least_recently_used_and_hands_it_over():
    evicted, made = [], []
    cache: LRU[str, str] = LRU(2, on_evict=evicted.append)

    def get(k: str) -> str:
        return cache.get(k, lambda: made.append(k) or k.upper())

    assert [get("a"), get("b"), get("a")] == ["A", "B", "A"]
    assert made == ["a", "b"]  # a hit makes nothing
    get("c")  # b is the least recently used now
    assert evicted == ["B"] and cache.keys() == ["a", "c"] and len(cache) == 2
    cache.clear()
    assert sorted(evicted) == ["A", "B", "C"] and len(cache) == 0


def test_clear_without_eviction_and_a_bad_size():
    evicted: list[int] = []
    cache: LRU[int, int] = LRU(1, on_evict=evicted.append)
    cache.get(1, lambda: 10)
    cache.clear(evict=False)  # e.g. handles inherited by a forked process: not ours to close
    assert evicted == [] and len(cache) == 0
    with pytest.raises(ValueError, match="at least 1"):
        LRU(0)


def test_a_weighed_cache_keeps_entries_within_its_weight():
    evicted: list[bytes] = []
    cache: LRU[int, bytes] = LRU(100, on_evict=evicted.append, weigh=len, max_weight=10)
    for k, size in enumerate([4, 4, 2]):  # 10 in all: everything fits
        cache.get(k, lambda size=size: b"x" * size)
    assert cache.keys() == [0, 1, 2] and cache.weight == 10 and evicted == []
    cache.get(0, lambda: b"")  # a hit: 0 is the most recently used now
    cache.get(3, lambda: b"y" * 5)  # 15: the least recently used go until it fits
    assert cache.keys() == [0, 3] and cache.weight == 9 and evicted == [b"xxxx", b"xx"]
    cache.get(4, lambda: b"z" * 50)  # heavier than the whole budget: kept alone
    assert cache.keys() == [4] and cache.weight == 50
    cache.clear()
    assert cache.weight == 0 and len(cache) == 0
    with pytest.raises(ValueError, match="max_weight"):
        LRU(1, weigh=len)
    with pytest.raises(ValueError, match="needs maxsize, or weigh"):
        LRU()
    weighed_only: LRU[int, bytes] = LRU(weigh=len, max_weight=3)  # no count bound
    for k in range(3):
        weighed_only.get(k, lambda: b"x")
    assert weighed_only.keys() == [0, 1, 2]
