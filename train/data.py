"""The training stream: whole minibatches drawn from the shards (core.shards reads them).

The training stream is a pure function of (seed, item): item i picks a batch kind with the
params mix, then one stored minibatch of that kind, uniformly. Step s of a run on rank r of W,
carrying G minibatches per step, reads items (s*W + r)*G + g. So a resumed run, a run with a
different G, and a multi-GPU run all see exactly the minibatches they would have seen anyway, and
memory does not grow with the dataset: only the indices (a few bytes per minibatch) are held.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from core.seeds import stream
from core.shards import ShardReader, SplitIndex


def kind_weights(index: SplitIndex, mix: dict[str, float] | None) -> np.ndarray:
    """Probabilities of drawing each kind: `mix` if given, else the stored batch counts."""
    if mix is None:
        w = np.array([index.count(k) for k in index.kinds], dtype=np.float64)
    else:
        unknown = sorted(set(mix) - set(index.kinds))
        if unknown:
            raise ValueError(f"params key 'train.kind_mix.{index.dataset}': kinds {unknown} are "
                             f"not in this dataset (its kinds: {list(index.kinds)})")
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

    def __init__(self, index: SplitIndex, seed: int, mix: dict[str, float] | None = None) -> None:
        self.index, self.seed = index, int(seed)
        self.weights = kind_weights(index, mix)
        self.reader = ShardReader(index)

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
        return self.reader.read(fi, row)

    def __getitem__(self, item: int) -> dict[str, torch.Tensor]:
        k, fi, row = self.locate(item)
        d = self.read(fi, row)
        return {"images": torch.from_numpy(d["images"]), "kind": torch.tensor(k),
                "factors": torch.from_numpy(d["factors"]),
                "identity": torch.from_numpy(d["identity"]), "item": torch.tensor(int(item))}

    def close(self) -> None:
        self.reader.close()


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
