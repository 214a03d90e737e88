"""Faces shards whose training minibatches of one factor span only a window of its range (a
prototype).

    python -m bench.windowed_render --window elevation=0.5 --out /tmp/faces-w0.5 [--set K=V]

Seen from the front, a head tilting up and one tilting down foreshorten alike: over the whole
elevation range the batch-centred image change is partly even in the angle (bench/RESULTS.md
"Why the frontal view"), and every trained elevation latent is flat below the horizon there,
a half fold. Within a narrower window the even part is nearly monotone in the angle (the
leading component's r with |elevation| falls from 0.44 over +-30 to 0.20 over +-15, frontal
train minibatches), so a latent that must explain a window's change cannot fold inside it.
Here each training minibatch of kind FACTOR draws its window's start uniformly, so the window
lies inside the range, then its images uniformly inside the window; every other minibatch and
the whole test split (grids) are drawn exactly as the render stage draws them. Not in the
render stage: a prototype, kept only if it wins.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from core.params import DatasetConfig, load_params
from render import batches
from render.batches import BatchPlan

REPO = Path(__file__).resolve().parents[1]
_plan_batch = batches.plan_batch


def windowed(kind: str, rng: np.random.Generator, *, ds: DatasetConfig, batch_size: int,
             num_identities: int, windows: dict[str, float]) -> BatchPlan:
    """`render.batches.plan_batch`, but a minibatch of a kind in `windows` spans that share of
    its factor's range. The same draws as plan_batch, then the window's start from the same rng."""
    plan = _plan_batch(kind, rng, ds=ds, batch_size=batch_size, num_identities=num_identities)
    if kind not in windows:
        return plan
    lo, hi = ds.factor_range(kind)
    width = windows[kind] * (hi - lo)
    start = rng.uniform(lo, hi - width)
    j = batches.FACTORS.index(kind)
    factors = plan.factors.copy()
    # plan_batch drew the factor uniformly in [lo, hi]: map it affinely onto the window.
    factors[:, j] = (start + (plan.factors[:, j].astype(np.float64) - lo) / (hi - lo) * width
                     ).astype(np.float32)
    return BatchPlan(plan.kind, plan.identity, factors)


def parse_windows(items: list[str], ds: DatasetConfig) -> dict[str, float]:
    """FACTOR=SHARE pairs -> {factor: share}; each factor disentangled, each share in (0, 1]."""
    out = {}
    for item in items:
        name, _, share = item.partition("=")
        if name not in ds.factors:
            raise SystemExit(f"--window {item!r}: {name!r} is not a disentangled factor "
                             f"(one of {list(ds.factors)})")
        try:
            value = float(share)
        except ValueError:
            raise SystemExit(
                f"--window {item!r}: expected FACTOR=SHARE with SHARE a number") from None
        if not 0 < value <= 1:
            raise SystemExit(f"--window {item!r}: SHARE must be in (0, 1], got {value}")
        out[name] = value
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--window", action="append", required=True, metavar="FACTOR=SHARE")
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--params", default=str(REPO / "params.yaml"))
    a = ap.parse_args(argv)
    params = load_params(a.params, a.set)
    windows = parse_windows(a.window, params.render.faces)

    def plan_batch(kind: str, rng: np.random.Generator, **kw) -> BatchPlan:
        return windowed(kind, rng, windows=windows, **kw)

    from render.stage import make_shards
    batches.plan_batch = plan_batch  # in this process only: workers=1 renders here
    try:
        s = make_shards(params, "faces", a.out, workers=1)
    finally:
        batches.plan_batch = _plan_batch
    print(f"{s.rendered} shard(s), {s.images} images in {s.seconds:.0f} s -> {s.out_dir}")


if __name__ == "__main__":
    main()
