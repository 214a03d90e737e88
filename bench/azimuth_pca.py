"""Why one latent folds: principal components of the image change inside one-factor minibatches.

    python -m bench.azimuth_pca [--data data/faces] [--factor azimuth] [--windows 90,60,45,30]
                                [--view NAME=LO,HI] [--components 3] [--out FILE]

Not a timing. For every train minibatch of kind --factor, the images are centred on their batch
mean (what the clamp leaves for the one free latent to explain) and pooled; the table gives the
leading principal components' share of that variance and their correlation with the factor
(odd: left vs right) and with its absolute value (even: how far from the middle of the range, e.g.
turned vs frontal). A window W keeps only images with |factor - middle| < W, as if the range were
narrower. A linear VAE's single latent takes the first component (PCA); if it is even, the code
starts folded (README, "The azimuth fold"). --view NAME=LO,HI keeps only the minibatches whose
other factor NAME (fixed within a minibatch) lies LO <= |NAME - middle of its range| < HI, e.g.
elevation seen from the front: --factor elevation --view azimuth=0,20.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from core.shards import ShardError, SplitIndex
from evaluate.data import load_batches


def batches_of(split_dir: Path, factor: str,
               view: tuple[str, float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images (n, B, pixels) float in [0, 1], factor values (n, B)) of the split's `factor`
    minibatches; ``view`` (name, lo, hi): only those with lo <= |name - its middle| < hi."""
    try:
        index = SplitIndex.scan(split_dir)
    except ShardError as e:
        raise SystemExit(str(e)) from None
    if factor not in index.kinds:
        raise SystemExit(f"{split_dir}: no minibatch kind {factor!r} (kinds: {list(index.kinds)})")
    # The evaluate stage's reader; it reads as many of each other kind, cheap next to the SVD.
    batches = load_batches(index, per_kind=len(index.by_kind[factor])).of_kind(factor)
    images = batches.images.reshape(len(batches), index.batch_size, -1) / 255.0
    values = batches.factor(factor)
    if view is None:
        return images, values
    name, lo, hi = view
    if name == factor or name not in index.factor_ranges:
        raise SystemExit(f"--view {name}: not another factor of {split_dir} "
                         f"(factors: {sorted(index.factor_ranges)}, varied: {factor})")
    middle = sum(index.factor_ranges[name]) / 2
    off = np.abs(batches.factor(name)[:, 0] - middle)  # one value per minibatch
    keep = (off >= lo) & (off < hi)
    if not keep.any():
        raise SystemExit(f"--view {name}={lo:g},{hi:g}: no {factor} minibatch in {split_dir}")
    return images[keep], values[keep]


def parse_view(text: str) -> tuple[str, float, float]:
    """"azimuth=0,20" -> ("azimuth", 0.0, 20.0)."""
    try:
        name, bounds = text.split("=")
        lo, hi = (float(b) for b in bounds.split(","))
    except ValueError:
        raise SystemExit(f"--view {text!r}: expected NAME=LO,HI, e.g. azimuth=0,20") from None
    if not 0 <= lo < hi:
        raise SystemExit(f"--view {text!r}: expected 0 <= LO < HI")
    return name, lo, hi


def components(images: np.ndarray, values: np.ndarray, window: float,
               k: int) -> tuple[int, list[tuple[float, float, float]]]:
    """(images used, [(variance share, r with factor, r with |factor - middle|)] * k)."""
    middle = (values.min() + values.max()) / 2
    rows, vals = [], []
    for x, v in zip(images, values, strict=True):
        keep = np.abs(v - middle) < window
        if keep.sum() >= 2:
            rows.append(x[keep] - x[keep].mean(0))
            vals.append(v[keep])
    if not rows:
        raise SystemExit(f"no minibatch has two images within {window} of {middle:g}")
    centred, v = np.concatenate(rows), np.concatenate(vals)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    share = s**2 / np.sum(s**2)
    out = []
    for j in range(min(k, len(s))):
        out.append((float(share[j]), float(np.corrcoef(u[:, j], v)[0, 1]),
                    float(np.corrcoef(u[:, j], np.abs(v - middle))[0, 1])))
    return len(v), out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=Path("data/faces"))
    ap.add_argument("--factor", default="azimuth")
    ap.add_argument("--windows", default="90,60,45,30",
                    help="half-widths around the middle of the range, degrees")
    ap.add_argument("--view", type=parse_view, default=None,
                    help="NAME=LO,HI: only minibatches with LO <= |NAME - middle| < HI")
    ap.add_argument("--components", type=int, default=3)
    ap.add_argument("--out", type=Path, help="append the table here (default: print it)")
    a = ap.parse_args(argv)
    images, values = batches_of(a.data / "train", a.factor, a.view)
    view = "" if a.view is None else f" --view {a.view[0]}={a.view[1]:g},{a.view[2]:g}"
    where = "" if a.view is None else (f", {len(images)} minibatches with "
                                       f"{a.view[1]:g} <= \\|{a.view[0]}\\| < {a.view[2]:g}")
    lines = [f"### {a.factor} minibatches of {a.data}/train{where}: batch-centred principal "
             "components", "", f"`python -m bench.azimuth_pca --data {a.data} --factor {a.factor} "
             f"--windows {a.windows}{view}`", "",
             "| window | images | component | variance share | r(factor) | r(abs) |",
             "|---|---|---|---|---|---|"]
    for w in (float(x) for x in a.windows.split(",")):
        n, comps = components(images, values, w, a.components)
        for j, (share, r_odd, r_even) in enumerate(comps, 1):
            lines.append(f"| ±{w:g} | {n} | {j} | {share:.3f} | {r_odd:+.2f} | {r_even:+.2f} |")
    text = "\n".join(lines) + "\n"
    if a.out:
        with a.out.open("a") as f:
            f.write("\n" + text)
    else:
        print(text, end="")


if __name__ == "__main__":
    main()
