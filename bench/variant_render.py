"""Faces shards drawn or lit otherwise than the render stage does (prototypes).

    python -m bench.variant_render --out DIR [--window FACTOR=SHARE] [--light-elevation DEG]
                                   [--set K=V]

Two prototypes, each kept only if it wins, neither in the render stage.

--window FACTOR=SHARE. Seen from the front, a head tilting up and one tilting down
foreshorten alike: over the whole elevation range the batch-centred image change is partly even
in the angle (bench/RESULTS.md "Why the frontal view"), and every trained elevation latent is
flat below the horizon there, a half fold. Within a narrower window the even part is nearly
monotone in the angle (the leading component's r with |elevation| falls from 0.44 over +-30 to
0.20 over +-15, frontal train minibatches), so a latent that must explain a window's change
cannot fold inside it. Here each training minibatch of kind FACTOR draws its window's start
uniformly, so the window lies inside the range, then its images uniformly inside the window
(plan_batch's own draws mapped onto it); every other minibatch and the whole test split
(grids) are drawn exactly as the render stage draws them.

--light-elevation DEG. The render stage puts the light at the camera's elevation
(render.views): when the camera orbits up or down, the light goes with it, so an elevation
change re-lights nothing and changes only the geometry the camera sees, which at the frontal
view is mostly inside the head's outline. Here the light stays at DEG degrees of elevation in
the world (0: the horizon), still turned about the vertical axis by light_azimuth from the
camera's direction: a scene light, as the paper's light is one of the scene's variables, so a
tilt of the view moves the shading across the head. Both splits change with it (it is another
dataset), and the light's azimuth keeps its meaning. The render stage has it now
(`render.light.elevation`, default 30) and renders the same images; this option stays to
remake the shards the 3-seed runs of bench/RESULTS.md "A scene light" were trained on, whose
fingerprint (from before that param) is the one their checkpoints record.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from core.params import DatasetConfig, load_params
from render import batches, views
from render.batches import BatchPlan

REPO = Path(__file__).resolve().parents[1]
_plan_batch = batches.plan_batch
_light_direction = views.light_direction


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


def scene_light(elevation: float):
    """`render.views.light_direction` with the light at a fixed world `elevation` (degrees)."""

    def light_direction(view: views.View) -> np.ndarray:
        return _light_direction(view, elevation)  # the unpatched one, which takes it now

    return light_direction


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
    ap.add_argument("--window", action="append", default=[], metavar="FACTOR=SHARE")
    ap.add_argument("--light-elevation", type=float, default=None, metavar="DEG")
    ap.add_argument("--out", required=True)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--params", default=str(REPO / "params.yaml"))
    a = ap.parse_args(argv)
    params = load_params(a.params, a.set)
    windows = parse_windows(a.window, params.render.faces)

    def plan_batch(kind: str, rng: np.random.Generator, **kw) -> BatchPlan:
        return windowed(kind, rng, windows=windows, **kw)

    from render.stage import make_shards
    if not windows and a.light_elevation is None:
        raise SystemExit("nothing to vary: give --window and/or --light-elevation")
    if a.light_elevation is not None and not -90 <= a.light_elevation <= 90:
        raise SystemExit(f"--light-elevation must be in [-90, 90] degrees, got {a.light_elevation}")
    # In this process only: workers=1 renders here.
    batches.plan_batch = plan_batch
    if a.light_elevation is not None:
        views.light_direction = scene_light(a.light_elevation)
    try:
        s = make_shards(params, "faces", a.out, workers=1)
    finally:
        batches.plan_batch, views.light_direction = _plan_batch, _light_direction
    print(f"{s.rendered} shard(s), {s.images} images in {s.seconds:.0f} s -> {s.out_dir}")


if __name__ == "__main__":
    main()
