"""One least-recently-used cache for the project's per-process caches (meshes, normals, open
shard files). functools.lru_cache cannot close what it evicts or key on an object's identity."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most `maxsize` entries; the least recently used one goes first, handed to
    `on_evict` (e.g. to close a file)."""

    def __init__(self, maxsize: int, on_evict: Callable[[V], object] | None = None) -> None:
        if maxsize < 1:
            raise ValueError(f"an LRU cache holds at least 1 entry, got maxsize={maxsize}")
        self.maxsize, self.on_evict = maxsize, on_evict
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K, make: Callable[[], V]) -> V:
        """The entry for `key`, made by `make()` on a miss."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = self._items[key] = make()
        while len(self._items) > self.maxsize:
            _, old = self._items.popitem(last=False)
            if self.on_evict is not None:
                self.on_evict(old)
        return value

    def keys(self) -> list[K]:
        """Keys, least recently used first."""
        return list(self._items)

    def clear(self, evict: bool = True) -> None:
        """Drop every entry (handing each to on_evict unless evict=False)."""
        items, self._items = self._items, OrderedDict()
        if evict and self.on_evict is not None:
            for v in items.values():
                self.on_evict(v)

    def __len__(self) -> int:
        return len(self._items)
