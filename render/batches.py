"""Seeded plans of what goes in each minibatch: which identities, which factor values.

A minibatch varies exactly one kind of thing (paper section 3.1):
- kind "<factor>" (e.g. "azimuth"): one identity; that factor is drawn per image, uniformly in
  its range; every other factor is drawn once and held for the whole batch.
- kind "intrinsic": `batch_size` distinct identities; the disentangled factors are drawn once and
  held; non-disentangled factors (`other_factors`) are drawn per image, because they belong to the
  intrinsic part of the code.

In a grid split (GRID_SPLITS: the test split) an extrinsic batch is drawn from no generator:
the n-th batch of kind "<factor>" shows identity n (mod the split's identities) at that factor's
evenly spaced grid (`grid_values`: a circular range without its duplicate end), with every other
factor at the middle of its range. So every test identity that has a batch of a kind is seen at
the same views as every other, and a novel view's ground truth, for that identity and for all the
others, is a stored image.

Plans are pure functions of (seed, dataset, split, batch index): a shard can be rendered alone,
and in any order, on any machine (sample first, then render from the stored values).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.params import DatasetConfig
from core.seeds import stream
from core.vocab import FACTORS, GRID_SPLITS, INTRINSIC, grid_values


@dataclass(frozen=True)
class BatchPlan:
    """kind: a name of DatasetConfig.kinds; identity: int64 (B,);
    factors: float32 (B, len(FACTORS)) in degrees, columns in FACTORS order."""

    kind: str
    identity: np.ndarray
    factors: np.ndarray


def kind_sequence(ds: DatasetConfig, seed: int, dataset: str, split: str) -> list[str]:
    """The kind of every minibatch of a split, in a seeded shuffled order (counts from params)."""
    kinds = [k for k in ds.kinds for _ in range(ds.batches[split][k])]
    order = stream(seed, "kinds", dataset, split).permutation(len(kinds))
    return [kinds[i] for i in order]


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float], n: int) -> np.ndarray:
    lo, hi = lo_hi
    return rng.uniform(lo, hi, size=n) if hi > lo else np.full(n, lo)


def plan_batch(
    kind: str,
    rng: np.random.Generator,
    *,
    ds: DatasetConfig,
    batch_size: int,
    num_identities: int,
) -> BatchPlan:
    """Draw one minibatch's identities and factors from `rng`."""
    if kind == INTRINSIC:
        identity = rng.choice(num_identities, size=batch_size, replace=False)
    else:
        identity = np.full(batch_size, rng.integers(num_identities))
    factors = np.empty((batch_size, len(FACTORS)))
    for j, name in enumerate(FACTORS):
        per_image = name == kind or (kind == INTRINSIC and name in ds.other_factors)
        factors[:, j] = _uniform(rng, ds.factor_range(name), batch_size if per_image else 1)
    # float32 first: the stored values are exactly the ones the renderer sees.
    return BatchPlan(kind, identity.astype(np.int64), factors.astype(np.float32))


def reference_view(ds: DatasetConfig) -> dict[str, float]:
    """The shared setting of the factors a grid batch holds: the middle of each range."""
    return {name: 0.5 * sum(ds.factor_range(name)) for name in FACTORS}


def plan_grid_batch(kind: str, ordinal: int, *, ds: DatasetConfig, batch_size: int,
                    num_identities: int) -> BatchPlan:
    """The `ordinal`-th batch of extrinsic `kind` of a grid split (module docstring)."""
    ref = reference_view(ds)
    factors = np.empty((batch_size, len(FACTORS)))
    for j, name in enumerate(FACTORS):
        factors[:, j] = grid_values(ds.factor_range(name), batch_size) if name == kind \
            else ref[name]
    identity = np.full(batch_size, ordinal % num_identities, dtype=np.int64)
    return BatchPlan(kind, identity, factors.astype(np.float32))


def plan_split(
    ds: DatasetConfig,
    *,
    seed: int,
    dataset: str,
    split: str,
    batch_size: int,
    num_identities: int,
    start: int = 0,
    stop: int | None = None,
) -> list[BatchPlan]:
    """Plans for minibatches [start, stop) of a split."""
    kinds = kind_sequence(ds, seed, dataset, split)
    stop = len(kinds) if stop is None else stop
    ordinals = kind_ordinals(kinds)
    plans = []
    for i in range(start, stop):
        if split in GRID_SPLITS and kinds[i] != INTRINSIC:
            plans.append(plan_grid_batch(kinds[i], ordinals[i], ds=ds, batch_size=batch_size,
                                         num_identities=num_identities))
        else:
            plans.append(plan_batch(kinds[i], stream(seed, "batch", dataset, split, i), ds=ds,
                                    batch_size=batch_size, num_identities=num_identities))
    return plans


def kind_ordinals(kinds: list[str]) -> list[int]:
    """For each batch, how many batches of its kind come before it."""
    seen: dict[str, int] = {}
    out = []
    for k in kinds:
        out.append(seen.get(k, 0))
        seen[k] = out[-1] + 1
    return out
