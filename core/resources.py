"""Memory checked up front: a batch or shard size the machine cannot hold is refused before any
work, naming the params keys that set it, instead of the kernel killing the process later."""

from __future__ import annotations

from pathlib import Path

GIB = 2**30


def available_memory() -> int | None:
    """Bytes the kernel says can be allocated without swapping (MemAvailable); None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def require_memory(need: int, what: str, keys: str, available: int | None = None) -> None:
    """Raise MemoryError if `need` bytes exceed what is available. what: the work that needs
    it; keys: the params keys (or options) that set its size, for the user to lower."""
    have = available_memory() if available is None else available
    if have is not None and need > have:
        raise MemoryError(f"{what} needs about {need / GIB:.1f} GiB of memory but "
                          f"{have / GIB:.1f} GiB is available; lower {keys}")
