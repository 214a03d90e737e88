"""Evaluation data: whole minibatches from shards, and the models' codes for them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.shards import ShardReader, SplitIndex, fixed_batches
from train.model import DCIGN


@dataclass(frozen=True)
class Batches:
    """n whole minibatches of B images: images uint8 (n, B, C, H, W), factors float32
    (n, B, F) degrees (columns = factor_names), identity int64 (n, B), kinds (n,) names."""

    images: np.ndarray
    factors: np.ndarray
    identity: np.ndarray
    kinds: tuple[str, ...]
    factor_names: tuple[str, ...]

    def of_kind(self, kind: str) -> Batches:
        keep = [i for i, k in enumerate(self.kinds) if k == kind]
        return Batches(self.images[keep], self.factors[keep], self.identity[keep],
                       tuple(self.kinds[i] for i in keep), self.factor_names)

    def factor(self, name: str) -> np.ndarray:
        """(n, B) values of one factor."""
        return self.factors[..., self.factor_names.index(name)]

    def __len__(self) -> int:
        return len(self.kinds)


def load_batches(index: SplitIndex, per_kind: int) -> Batches:
    """Up to `per_kind` minibatches of every kind, always the same ones (first in file order)."""
    reader = ShardReader(index)
    picks = fixed_batches(index, per_kind)
    rows = [reader.read(fi, row) for _, fi, row in picks]
    reader.close()
    names = index.factor_names
    return Batches(np.stack([r["images"] for r in rows]), np.stack([r["factors"] for r in rows]),
                   np.stack([r["identity"] for r in rows]), tuple(k for k, _, _ in picks), names)


@torch.no_grad()
def encode(model: DCIGN, images: np.ndarray, device: torch.device, chunk: int = 200) -> np.ndarray:
    """Posterior means for uint8 images (..., C, H, W) -> float32 (..., D)."""
    lead = images.shape[:-3]
    flat = images.reshape(-1, *images.shape[-3:])
    out = []
    for i in range(0, len(flat), chunk):
        # a copy: inputs may be read-only views (decoded PNGs, HDF5 reads)
        x = torch.tensor(flat[i:i + chunk], device=device).float().div_(255)
        out.append(model.encode(x)[0].float().cpu().numpy())
    codes = np.concatenate(out) if out else np.zeros((0, model.cfg.latent_dim), np.float32)
    return codes.reshape(*lead, -1)


@torch.no_grad()
def decode(model: DCIGN, codes: np.ndarray, device: torch.device, chunk: int = 200) -> np.ndarray:
    """Images in [0, 1], float32 (..., C, H, W), from codes (..., D)."""
    lead = codes.shape[:-1]
    flat = codes.reshape(-1, codes.shape[-1])
    out = []
    for i in range(0, len(flat), chunk):
        z = torch.from_numpy(np.ascontiguousarray(flat[i:i + chunk], dtype=np.float32))
        out.append(model.decode(z.to(device)).float().cpu().numpy())
    images = np.concatenate(out)
    return images.reshape(*lead, *images.shape[1:])
