"""Streaming whole minibatches from the render stage's shards.

The training stream is a pure function of (seed, item): item i picks a batch kind with the
params mix, then one stored minibatch of that kind, uniformly. Step s of a run on rank r of W,
carrying G minibatches per step, reads items (s*W + r)*G + g. So a resumed run, a run with a
different G, and a multi-GPU run all see exactly the minibatches they would have seen anyway, and
memory does not grow with the dataset: only the indices (a few bytes per minibatch) are held.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from pipeline.params import fingerprint
from render.seeds import stream
from render.shards import ShardError, list_shards, open_shard, read_rows


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


def kind_weights(index: SplitIndex, mix: dict[str, float] | None) -> np.ndarray:
    """Probabilities of drawing each kind: `mix` if given, else the stored batch counts."""
    if mix is None:
        w = np.array([index.count(k) for k in index.kinds], dtype=np.float64)
    else:
        unknown = sorted(set(mix) - set(index.kinds))
        if unknown:
            raise ValueError(f"params key 'train.kind_mix': kinds {unknown} are not in this "
                             f"dataset (its kinds: {list(index.kinds)})")
        w = np.array([float(mix.get(k, 0.0)) for k in index.kinds])
    for k, wk in zip(index.kinds, w):
        if wk > 0 and index.count(k) == 0:
            raise ValueError(f"kind '{k}' has weight {wk} but no minibatches in {index.files[0]}")
    return w / w.sum()


class MinibatchStream(Dataset):
    """Item i -> one whole stored minibatch, chosen by a pure function of (seed, i).

    Returns dict(images uint8 (B, C, H, W), kind int64 scalar (index into index.kinds),
    factors float32 (B, F) degrees, identity int64 (B,), item int64 scalar).
    """

    # Open handles kept per process; each holds HDF5's chunk cache, so an unbounded set would
    # grow with the number of shards.
    MAX_OPEN = 16

    def __init__(self, index: SplitIndex, seed: int, mix: dict[str, float] | None = None) -> None:
        self.index, self.seed = index, int(seed)
        self.weights = kind_weights(index, mix)
        # Opened lazily, one handle per file per process, least recently used closed first.
        self._files: OrderedDict[int, h5py.File] = OrderedDict()
        self._pid = os.getpid()

    def __len__(self) -> int:  # the stream is unbounded; samplers choose the items
        return 2**62

    def locate(self, item: int) -> tuple[int, int, int]:
        """(kind index, file index, row) of stream item `item`."""
        rng = stream(self.seed, "train-stream", int(item))
        k = int(rng.choice(len(self.index.kinds), p=self.weights))
        pairs = self.index.by_kind[self.index.kinds[k]]
        fi, row = pairs[rng.integers(len(pairs))]
        return k, int(fi), int(row)

    def read(self, fi: int, row: int) -> dict[str, np.ndarray]:
        """The stored minibatch at (file index, row), as numpy arrays."""
        if self._pid != os.getpid():
            # A forked loader worker inherited the parent's handles; HDF5 handles must not be
            # shared across processes, so drop them (unclosed: they belong to the parent).
            self._files, self._pid = OrderedDict(), os.getpid()
        path = self.index.files[fi]
        f = self._files.get(fi)
        if f is None:
            try:
                f = h5py.File(path, "r")
            except OSError as e:
                raise ShardError(f"{path}: cannot open shard ({e})") from None
            self._files[fi] = f
            if len(self._files) > self.MAX_OPEN:
                self._files.popitem(last=False)[1].close()
        else:
            self._files.move_to_end(fi)
        return {name: read_rows(path, f[name], row) for name in ("images", "factors", "identity")}

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        k, fi, row = self.locate(item)
        d = self.read(fi, row)
        return {"images": torch.from_numpy(d["images"]), "kind": torch.tensor(k),
                "factors": torch.from_numpy(d["factors"]),
                "identity": torch.from_numpy(d["identity"]), "item": torch.tensor(int(item))}

    def __getstate__(self) -> dict:
        # Worker processes open their own handles; h5py handles must not cross processes.
        state = self.__dict__.copy()
        state["_files"] = OrderedDict()
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._pid = os.getpid()

    def close(self) -> None:
        for f in self._files.values():
            f.close()
        self._files.clear()


class StepItems(Sampler[list[int]]):
    """Yields, for steps start..stop-1, the G item ids this rank trains on."""

    def __init__(self, start: int, stop: int, group: int, rank: int = 0, world: int = 1) -> None:
        self.start, self.stop, self.group, self.rank, self.world = start, stop, group, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        for s in range(self.start, self.stop):
            base = (s * self.world + self.rank) * self.group
            yield list(range(base, base + self.group))

    def __len__(self) -> int:
        return max(0, self.stop - self.start)


def make_loader(stream_ds: MinibatchStream, *, start: int, stop: int, group: int, rank: int = 0,
                world: int = 1, workers: int = 0, pin_memory: bool = False) -> DataLoader:
    """A loader yielding one step at a time: images uint8 (G, B, C, H, W), kind (G,), ..."""
    return DataLoader(
        stream_ds, batch_sampler=StepItems(start, stop, group, rank, world),
        num_workers=workers, pin_memory=pin_memory,
        persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
    )


def fixed_batches(index: SplitIndex, per_kind: int) -> list[tuple[str, int, int]]:
    """A fixed, ordered selection of up to `per_kind` minibatches of each kind: (kind, file, row).
    Used for held-out losses and evaluation, so every run is scored on the same data."""
    out = []
    for k in index.kinds:
        for fi, row in index.by_kind[k][:per_kind]:
            out.append((k, int(fi), int(row)))
    return out
