"""Atomic file writes: outputs appear whole or not at all.

Every file a stage writes goes to a temporary name in the same directory and is renamed into
place when complete, so a killed stage never leaves a file that looks finished.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

TMP_MARK = ".tmp-"


def temp_name(path: Path) -> Path:
    """The temporary sibling of `path` used while it is being written (unique per process)."""
    return path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success rename it to `path`, on error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def remove_stale_temps(directory: Path) -> int:
    """Delete leftovers of killed writers in `directory`; returns how many were removed."""
    if not directory.is_dir():
        return 0
    removed = 0
    for p in directory.iterdir():
        if TMP_MARK in p.name:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed += 1
    return removed
