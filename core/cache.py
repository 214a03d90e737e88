"""One least-recently-used cache for the project's per-process caches (meshes, normals, open
shard files). functools.lru_cache cannot close what it evicts or key on an object's identity."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """At most `maxsize` entries (None: no count bound), and entries weighing at most
    `max_weight` in all when `weigh` is given (e.g. bytes: a chair mesh weighs 1/20 of a head);
    the least recently used one goes first, handed to `on_evict` (e.g. to close a file). The
    newest entry always stays."""

    def __init__(self, maxsize: int | None = None,
                 on_evict: Callable[[V], object] | None = None, *,
                 weigh: Callable[[V], int] | None = None, max_weight: int = 0) -> None:
        if maxsize is None and weigh is None:
            raise ValueError("an LRU cache needs maxsize, or weigh and max_weight")
        if maxsize is not None and maxsize < 1:
            raise ValueError(f"an LRU cache holds at least 1 entry, got maxsize={maxsize}")
        if weigh is not None and max_weight < 1:
            raise ValueError(f"a weighed LRU cache needs max_weight >= 1, got {max_weight}")
        self.maxsize, self.on_evict = maxsize, on_evict
        self.weigh, self.max_weight, self.weight = weigh, max_weight, 0
        self._items: OrderedDict[K, V] = OrderedDict()
        self._weights: dict[K, int] = {}

    def get(self, key: K, make: Callable[[], V]) -> V:
        """The entry for `key`, made by `make()` on a miss."""
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        value = self._items[key] = make()
        if self.weigh is not None:
            self._weights[key] = w = int(self.weigh(value))
            self.weight += w
        while (self.maxsize is not None and len(self._items) > self.maxsize) or (
                self.weigh is not None and self.weight > self.max_weight and len(self._items) > 1):
            old_key, old = self._items.popitem(last=False)
            self.weight -= self._weights.pop(old_key, 0)
            if self.on_evict is not None:
                self.on_evict(old)
        return value

    def keys(self) -> list[K]:
        """Keys, least recently used first."""
        return list(self._items)

    def clear(self, evict: bool = True) -> None:
        """Drop every entry (handing each to on_evict unless evict=False)."""
        items, self._items = self._items, OrderedDict()
        self._weights, self.weight = {}, 0
        if evict and self.on_evict is not None:
            for v in items.values():
                self.on_evict(v)

    def __len__(self) -> int:
        return len(self._items)
