"""The HDF5 data contract between the render stage and everything downstream.

`data/<dataset>/<split>/shard-NNNNN.h5`, each holding whole minibatches:

=========  =======  ===============  ====================================================
dataset    dtype    shape            notes
=========  =======  ===============  ====================================================
images     uint8    (N, B, C, H, W)  one minibatch per chunk, gzip-compressed
factors    float32  (N, B, F)        attr ``names`` = FACTORS, attr ``units`` = "degrees"
identity   int64    (N, B)           identity id within the split
kind       uint8    (N,)             attr ``names`` = the dataset's kinds
=========  =======  ===============  ====================================================

Every dataset carries HDF5's fletcher32 checksum on each chunk, which HDF5 verifies on every
read: a flipped byte in images, factors, identity or kind is an error naming the shard, not
wrong training labels. `validate` reads the small arrays whole (so opening a shard checks its
labels) and `is_current` reads every chunk (so a re-render replaces a damaged shard).

Root attributes: schema_version, dataset, split, renderer, image_size, channels, batch_size,
seed, latent_factors (JSON list, latent order), factor_ranges (JSON {factor: [lo, hi]} in
degrees, every stored factor; a range spanning 360 is circular), params (JSON of the params
that made it), software (JSON of versions), fingerprint (what the shard was made from; a re-run
skips a shard only if its fingerprint matches), shard_index, first_batch.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from core.atomic import write_bytes
from core.cache import LRU
from core.params import fingerprint

SCHEMA_VERSION = 3  # 2: factor_ranges; test batches on a shared grid. 3: fletcher32 checksums
SHARD_GLOB = "shard-*.h5"
_JSON_ATTRS = ("latent_factors", "factor_ranges", "params", "software")
_REQUIRED_ATTRS = (
    "schema_version", "dataset", "split", "renderer", "image_size", "channels", "batch_size",
    "seed", "latent_factors", "factor_ranges", "params", "software", "fingerprint",
    "shard_index", "first_batch",
)


class ShardError(ValueError):
    """A file is not a valid shard; the message names the file and what is wrong."""


def shard_path(split_dir: Path, index: int) -> Path:
    return Path(split_dir) / f"shard-{index:05d}.h5"


def list_shards(split_dir: str | Path) -> list[Path]:
    """Complete shard files of a split directory, in index order."""
    return sorted(Path(split_dir).glob(SHARD_GLOB))


@dataclass(frozen=True)
class ShardArrays:
    """One shard's contents in memory. Shapes as in the module docstring."""

    images: np.ndarray
    factors: np.ndarray
    identity: np.ndarray
    kind: np.ndarray


def write_shard(
    path: Path,
    arrays: ShardArrays,
    *,
    factor_names: tuple[str, ...],
    kind_names: tuple[str, ...],
    attrs: Mapping[str, Any],
) -> None:
    """Write a shard atomically (temporary file, then rename)."""
    n, b, c, h, w = arrays.images.shape
    if arrays.images.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {arrays.images.dtype}")
    if arrays.factors.shape != (n, b, len(factor_names)):
        raise ValueError(f"factors shape {arrays.factors.shape} != {(n, b, len(factor_names))}")
    if arrays.identity.shape != (n, b) or arrays.kind.shape != (n,):
        raise ValueError("identity must be (N, B) and kind (N,)")
    # Built in memory, then written with plain file I/O: a full disk is then one OSError naming
    # the file (HDF5 writing to a full disk crashed the process), and nothing half-written stays.
    buf = io.BytesIO()
    # track_times=False keeps the file free of wall-clock stamps; fletcher32 checksums every chunk.
    with h5py.File(buf, "w", track_order=True) as f:
        f.create_dataset(
            "images", data=arrays.images, chunks=(1, b, c, h, w),
            compression="gzip", compression_opts=4, shuffle=True, fletcher32=True,
            track_times=False,
        )
        d = f.create_dataset("factors", data=arrays.factors.astype(np.float32),
                             chunks=arrays.factors.shape, fletcher32=True, track_times=False)
        d.attrs["names"] = json.dumps(list(factor_names))
        d.attrs["units"] = "degrees"
        f.create_dataset("identity", data=arrays.identity.astype(np.int64),
                         chunks=arrays.identity.shape, fletcher32=True, track_times=False)
        d = f.create_dataset("kind", data=arrays.kind.astype(np.uint8), chunks=arrays.kind.shape,
                             fletcher32=True, track_times=False)
        d.attrs["names"] = json.dumps(list(kind_names))
        for key, value in attrs.items():
            f.attrs[key] = json.dumps(value) if key in _JSON_ATTRS else value
        f.attrs["schema_version"] = SCHEMA_VERSION
    write_bytes(path, buf.getvalue())


@dataclass(frozen=True)
class ShardInfo:
    """What a reader learns from validating a shard (no image data loaded)."""

    path: Path
    num_batches: int
    batch_size: int
    channels: int
    image_size: int
    factor_names: tuple[str, ...]
    kind_names: tuple[str, ...]
    attrs: dict[str, Any]

    @property
    def latent_factors(self) -> tuple[str, ...]:
        return tuple(self.attrs["latent_factors"])

    @property
    def factor_ranges(self) -> dict[str, tuple[float, float]]:
        return {k: (float(v[0]), float(v[1])) for k, v in self.attrs["factor_ranges"].items()}


def _attrs(f: h5py.File) -> dict[str, Any]:
    out = {}
    for k, v in f.attrs.items():
        if isinstance(v, bytes):
            v = v.decode()
        if isinstance(v, np.generic):
            v = v.item()
        out[k] = json.loads(v) if k in _JSON_ATTRS else v
    return out


def validate(path: str | Path, f: h5py.File | None = None) -> ShardInfo:
    """Check a shard against the schema; raise ShardError naming the file and the problem."""
    path = Path(path)
    if f is None:
        if not path.is_file():
            raise ShardError(f"{path}: no such shard file")
        try:
            with h5py.File(path, "r") as handle:
                return validate(path, handle)
        except OSError as e:
            raise ShardError(f"{path}: not a readable HDF5 file ({e})") from None
    for name in ("images", "factors", "identity", "kind"):
        if name not in f:
            raise ShardError(f"{path}: missing dataset '{name}' (not a dcign shard?)")
    attrs = _attrs(f)
    missing = [k for k in _REQUIRED_ATTRS if k not in attrs]
    if missing:
        raise ShardError(f"{path}: missing root attributes {missing}")
    if attrs["schema_version"] != SCHEMA_VERSION:
        raise ShardError(
            f"{path}: schema_version {attrs['schema_version']}, this code reads {SCHEMA_VERSION}"
        )
    images, factors, identity, kind = (f[k] for k in ("images", "factors", "identity", "kind"))
    if images.dtype != np.uint8 or images.ndim != 5:
        raise ShardError(f"{path}: images must be uint8 (N, B, C, H, W), got {images.dtype} "
                         f"{images.shape}")
    n, b, c, h, w = images.shape
    if h != w or h != attrs["image_size"] or c != attrs["channels"] or b != attrs["batch_size"]:
        raise ShardError(f"{path}: images shape {images.shape} disagrees with its attributes")
    factor_names = tuple(json.loads(factors.attrs.get("names", "[]")))
    kind_names = tuple(json.loads(kind.attrs.get("names", "[]")))
    if factors.shape != (n, b, len(factor_names)) or factors.dtype != np.float32:
        raise ShardError(f"{path}: factors must be float32 {(n, b, len(factor_names))}, got "
                         f"{factors.dtype} {factors.shape}")
    if identity.shape != (n, b) or kind.shape != (n,):
        raise ShardError(f"{path}: identity must be {(n, b)} and kind {(n,)}")
    unchecked = [d.name.lstrip("/") for d in (images, factors, identity, kind) if not d.fletcher32]
    if unchecked:
        raise ShardError(f"{path}: datasets {unchecked} carry no fletcher32 checksum")
    # Reading the labels whole verifies their checksums: a damaged label is named here.
    factors_, identity_, kind_ = (read_rows(path, d) for d in (factors, identity, kind))
    if not np.all(np.isfinite(factors_)):
        raise ShardError(f"{path}: factors hold non-finite values")
    if n and int(identity_.min()) < 0:
        raise ShardError(f"{path}: negative identity ids")
    if not kind_names or (n and int(np.max(kind_)) >= len(kind_names)):
        raise ShardError(f"{path}: kind values outside its names {kind_names}")
    ranges = attrs["factor_ranges"]
    if not isinstance(ranges, dict) or sorted(ranges) != sorted(factor_names) or any(
            not isinstance(v, list) or len(v) != 2 for v in ranges.values()):
        raise ShardError(f"{path}: factor_ranges must give [lo, hi] for each of {factor_names}")
    return ShardInfo(path, n, b, c, h, factor_names, kind_names, attrs)


def read_rows(path: Path, dataset: h5py.Dataset, rows: Any = ()) -> np.ndarray:
    """dataset[rows] (all of it by default), with a failed checksum or a damaged chunk reported
    as a ShardError naming the file, the dataset and the rows."""
    try:
        return dataset[rows]
    except OSError as e:
        where = "" if rows == () else f" rows {rows}"
        raise ShardError(f"{path}: dataset '{dataset.name.lstrip('/')}'{where} is damaged "
                         f"({e}); re-render it (`dcign render` replaces damaged shards)") from None


@contextmanager
def open_shard(path: str | Path) -> Iterator[tuple[h5py.File, ShardInfo]]:
    """Open and validate a shard for reading; yields (h5py file, info)."""
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ShardError(f"{path}: not a readable HDF5 file ({e})") from None
    try:
        yield f, validate(path, f)
    finally:
        f.close()


def read_shard(path: str | Path) -> tuple[ShardArrays, ShardInfo]:
    """Load a whole shard into memory (small shards, tests, inspection)."""
    with open_shard(path) as (f, info):
        arrays = ShardArrays(*(read_rows(path, f[k]) for k in ("images", "factors", "identity",
                                                               "kind")))
    return arrays, info


def is_current(path: Path, fingerprint: str) -> bool:
    """True if `path` is a complete, valid shard made from exactly `fingerprint`."""
    try:
        with open_shard(path) as (f, info):
            # Read every chunk (verifying its checksum) so a truncated or damaged file is caught
            # here, not by the trainer; validate has read the labels already.
            for i in range(info.num_batches):
                read_rows(path, f["images"], i)
            return info.attrs["fingerprint"] == fingerprint
    except (ShardError, OSError, KeyError):
        return False


# ----------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class SplitIndex:
    """Where every minibatch of one split lives: shard files and, per kind, (shard, row) pairs."""

    files: tuple[Path, ...]
    kinds: tuple[str, ...]
    by_kind: dict[str, np.ndarray]  # kind -> int64 (n, 2) of (file index, row)
    latent_factors: tuple[str, ...]
    image_size: int
    channels: int
    batch_size: int
    dataset: str
    factor_ranges: dict[str, tuple[float, float]]  # stored factor -> (lo, hi) degrees
    factor_names: tuple[str, ...]  # the stored factors' columns
    # What the shards were made from (params, task, identities of each, and their names): a
    # checkpoint records it, so resuming or evaluating on other data is refused.
    fingerprint: str
    render_params: dict  # the params record every shard of the split was rendered from

    @classmethod
    def scan(cls, split_dir: str | Path) -> SplitIndex:
        """Validate every shard of a split folder and index its minibatches by kind."""
        split_dir = Path(split_dir)
        files = tuple(list_shards(split_dir))
        if not files:
            raise ShardError(f"{split_dir}: no shard-*.h5 files (run `dcign render` first)")
        rows: dict[str, list[tuple[int, int]]] = {}
        first, made_from, prints = None, None, []
        for fi, path in enumerate(files):
            with open_shard(path) as (f, info):
                key = (info.kind_names, info.latent_factors, info.image_size, info.channels,
                       info.batch_size, info.attrs["dataset"],
                       tuple(sorted(info.factor_ranges.items())), info.factor_names)
                if first is None:
                    first, made_from = key, info.attrs["params"]
                elif key != first:
                    raise ShardError(f"{path}: disagrees with {files[0]} on kinds, factors, "
                                     f"factor ranges, image size, channels, batch size or "
                                     f"dataset")
                elif info.attrs["params"] != made_from:
                    raise ShardError(f"{path}: rendered from other params than {files[0]} "
                                     f"(seed {info.attrs['seed']} vs {made_from.get('seed')}): "
                                     f"one folder holds shards of two datasets; re-render it")
                prints.append((path.name, info.attrs["fingerprint"]))
                for row, k in enumerate(read_rows(path, f["kind"])):
                    rows.setdefault(info.kind_names[k], []).append((fi, row))
        assert first is not None and made_from is not None
        kinds, latent, size, channels, bsize, dataset, ranges, names = first
        by_kind = {k: np.array(rows.get(k, []), dtype=np.int64).reshape(-1, 2) for k in kinds}
        return cls(files, kinds, by_kind, latent, size, channels, bsize, dataset, dict(ranges),
                   names, fingerprint(prints), made_from)

    def count(self, kind: str) -> int:
        return len(self.by_kind[kind])


def scan_splits(data_dir: str | Path, dataset: str,
                purpose: str) -> tuple[SplitIndex, SplitIndex]:
    """The train and test splits of one dataset folder, checked to belong together: both of
    `dataset` and rendered from the same params (and so the same kinds and image shape).
    purpose: what the caller does with them, for the message ("trains", "evaluates")."""
    data_dir = Path(data_dir)
    train, test = SplitIndex.scan(data_dir / "train"), SplitIndex.scan(data_dir / "test")
    if (train.kinds, train.image_size, train.channels) != (
            test.kinds, test.image_size, test.channels):
        raise ShardError(f"{data_dir}: train and test shards disagree on kinds or image shape")
    for idx in (train, test):
        if idx.dataset != dataset:
            raise ShardError(f"{idx.files[0]}: a {idx.dataset!r} shard, but this {purpose} "
                             f"{dataset!r} (check --data)")
    if train.render_params != test.render_params:
        raise ShardError(f"{test.files[0]}: rendered from other params than {train.files[0]}; "
                         f"re-render {data_dir}")
    return train, test


class ShardReader:
    """Reads stored minibatches of one split by (file index, row): the one reader of shards.

    Open handles are kept per process, least recently used closed first (each holds HDF5's
    chunk cache, so an unbounded set would grow with the number of shards). Safe to pickle into
    and to fork into loader workers: each process opens its own handles.
    """

    def __init__(self, index: SplitIndex, max_open: int = 16) -> None:
        self.index, self.max_open = index, max_open
        self._files: LRU[int, h5py.File] = LRU(max_open, on_evict=h5py.File.close)
        self._pid = os.getpid()

    def read(self, fi: int, row: int) -> dict[str, np.ndarray]:
        """The stored minibatch at (file index, row): images uint8 (B, C, H, W), factors
        float32 (B, F) degrees, identity int64 (B,). A damaged chunk is a ShardError naming the
        file, the dataset and the row."""
        if self._pid != os.getpid():
            # A forked process inherited the parent's handles; HDF5 handles must not be shared
            # across processes, so drop them (unclosed: they belong to the parent).
            self._files.clear(evict=False)
            self._pid = os.getpid()
        path = self.index.files[fi]

        def open_file() -> h5py.File:
            try:
                return h5py.File(path, "r")
            except OSError as e:
                raise ShardError(f"{path}: cannot open shard ({e})") from None

        f = self._files.get(fi, open_file)
        return {name: read_rows(path, f[name], row) for name in ("images", "factors", "identity")}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_files"] = LRU(self.max_open, on_evict=h5py.File.close)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()

    def close(self) -> None:
        self._files.clear()


def fixed_batches(index: SplitIndex, per_kind: int) -> list[tuple[str, int, int]]:
    """A fixed, ordered selection of up to `per_kind` minibatches of each kind: (kind, file, row).
    Used for held-out losses and evaluation, so every run is scored on the same data."""
    out = []
    for k in index.kinds:
        for fi, row in index.by_kind[k][:per_kind]:
            out.append((k, int(fi), int(row)))
    return out
