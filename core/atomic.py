"""Atomic file writes: outputs appear whole or not at all.

Every file a stage writes goes to a temporary name in the same directory and is renamed into
place when complete, so a killed stage never leaves a file that looks finished. The temporary
name carries the writer's host and process id, so a leftover is removed only when its writer is
provably gone: concurrent jobs (cluster array jobs into one folder) never delete each other's
work in progress.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

TMP_MARK = ".tmp-"
# Write failures that are the machine's, not the program's: reported as one line naming the path.
_MACHINE_ERRNOS = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded",
                   errno.EROFS: "read-only file system", errno.EACCES: "permission denied",
                   errno.ENOENT: "folder vanished while writing"}


class WriteError(OSError):
    """An output could not be written for a reason of the machine (disk full, read-only, ...);
    the message names the output path."""

    def __str__(self) -> str:
        return str(self.args[0])


def _host() -> str:
    # '-' separates host from pid in a temp name, so the host part must not contain one.
    return socket.gethostname().replace("-", "_") or "localhost"


def temp_name(path: Path) -> Path:
    """The temporary sibling of `path` used while it is being written (unique per process)."""
    return path.with_name(f"{path.name}{TMP_MARK}{_host()}-{os.getpid()}")


def writer_of(temp: Path) -> tuple[str, int] | None:
    """(host, pid) of the process writing temp file `temp`, or None if it is not ours."""
    _, sep, tag = temp.name.rpartition(TMP_MARK)
    if not sep:
        return None
    host, _, pid = tag.rpartition("-")
    if not pid.isdigit():
        return None
    return host or _host(), int(pid)  # an old-style ".tmp-<pid>" was written on this host


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def writer_gone(temp: Path) -> bool:
    """True only if `temp`'s writer provably no longer runs: it ran on this host and its pid is
    free. A writer on another host (a shared file system) is never assumed gone."""
    who = writer_of(temp)
    if who is None:
        return False
    host, pid = who
    return host == _host() and pid != os.getpid() and not _alive(pid)


def machine_error(path: Path, e: OSError) -> OSError:
    """`e` as a WriteError naming `path`, if it is a fault of the machine; else `e` itself."""
    if isinstance(e, WriteError) or e.errno not in _MACHINE_ERRNOS:
        return e
    err = WriteError(f"cannot write {path}: {_MACHINE_ERRNOS[e.errno]}")
    err.errno, err.strerror, err.filename = e.errno, e.strerror, str(path)
    return err


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success rename it to `path`, on error remove it.
    A disk-full, read-only or vanished-folder failure is raised as a WriteError naming `path`."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise machine_error(path, e) from None
    tmp = temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise machine_error(path, e) from None
        raise


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` atomically, flushed to disk before the rename."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write `text` to `path` atomically."""
    write_bytes(path, text.encode())


def remove_stale_temps(directory: Path) -> int:
    """Delete leftovers of killed writers in `directory` (only those whose writer is provably
    gone, see writer_gone); returns how many were removed."""
    if not directory.is_dir():
        return 0
    removed = 0
    for p in directory.iterdir():
        if TMP_MARK in p.name and writer_gone(p):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
            removed += 1
    return removed
