"""Does the encoder see a factor that its assigned latent does not carry? (analysis, not a timing)

    python -m bench.latent_probe CHECKPOINT [CHECKPOINT ...] [--factor elevation]
                                 [--by-view] [--data data/faces] [--out FILE]

For each DC-IGN checkpoint, on the minibatches of kind --factor (only that factor varies): a
ridge regression (sklearn's RidgeCV, alphas 1e-3..1e3) fitted on the train split's batches
predicts the factor from (a) the encoder's flattened conv features and (b) the whole mu code;
its Pearson r on the test split's batches is printed beside the assigned latent's own r with
the factor, the same r within minibatches (latent and factor centred in each minibatch, which
holds one identity), and that latent's standard deviation over the test batches. A high (a)
with a low latent r means the information is there and the latent carries something else.

--by-view adds, per checkpoint, where along the factor and at which views the latent reads it:
the latent's mean and sd in six equal bins of the factor, on the test split's batches (a grid
at the reference view: every other factor at the middle of its range) and on the train split's
(the other factors drawn per batch), the latter split by the batch's first other factor
(azimuth for elevation) in three equal bins of its absolute value; and the within-minibatch r
of the train batches in the same three bins. The test split holds no other views, so these are
training identities: read them for the shape, not as a held-out score.
"""

from __future__ import annotations

import argparse
import itertools
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import RidgeCV

from bench import publish
from bench.render import machine
from core.shards import ShardReader, scan_splits
from train import checkpoint

REPO = Path(__file__).resolve().parents[1]


def factor_batches(index, factor: str, *, every: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, C, H, W) uint8 and factor values (N,) of every minibatch of kind `factor`;
    ``every``: all factors' values (N, F), in ``index.factor_names`` order."""
    reader = ShardReader(index)
    col = index.factor_names.index(factor)
    images, values = [], []
    for fi, row in index.by_kind[factor]:
        b = reader.read(int(fi), int(row))
        images.append(b["images"])
        values.append(b["factors"] if every else b["factors"][:, col])
    reader.close()
    return np.concatenate(images), np.concatenate(values)


@torch.no_grad()
def codes(model, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(conv features (N, F), mu (N, D)) of uint8 images, 200 at a time."""
    feats, mus = [], []
    for i in range(0, len(images), 200):
        x = torch.from_numpy(images[i:i + 200]).float().div_(255)
        feats.append(model.encoder.features(x).flatten(1).numpy())
        mus.append(model.encode(x)[0].numpy())
    return np.concatenate(feats), np.concatenate(mus)


@dataclass(frozen=True)
class Encoded:
    """One checkpoint's encoding of the --factor minibatches of both splits; per split
    (conv features (N, F), mu (N, D), every factor's values (N, factors))."""

    path: Path
    step: int
    latent: int  # the --factor's latent
    factor_names: tuple[str, ...]
    factor_ranges: dict[str, tuple[float, float]]
    batch_size: int
    train: tuple[np.ndarray, np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray, np.ndarray]


def encode(path: Path, factor: str, data: Path) -> Encoded:
    model, ckpt = checkpoint.load_model(path)
    model.eval()
    train_idx, test_idx = scan_splits(data, ckpt["dataset"], "probes")
    splits = []
    for index in (train_idx, test_idx):
        images, values = factor_batches(index, factor, every=True)
        splits.append((*codes(model, images), values))
    return Encoded(path, int(ckpt["step"]), checkpoint.assignment_of(ckpt).factors.index(factor),
                   tuple(train_idx.factor_names), train_idx.factor_ranges, train_idx.batch_size,
                   splits[0], splits[1])


def probe(enc: Encoded, factor: str) -> str:
    col = enc.factor_names.index(factor)
    (ftr, mtr, vtr), (fte, mte, vte) = enc.train, enc.test
    ytr, yte, latent = vtr[:, col], vte[:, col], enc.latent
    r = lambda a, b: float(np.corrcoef(a, b)[0, 1])  # noqa: E731
    ridge = lambda a, b: RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(a, ytr).predict(b)  # noqa: E731

    def centred(v: np.ndarray) -> np.ndarray:
        # Each minibatch is one identity: centring both within it leaves only what the latent
        # says about the factor's changes for a fixed identity (the clamp's own question),
        # without the identity-to-identity offsets that the pooled r also counts.
        b = v.reshape(-1, enc.batch_size)
        return (b - b.mean(1, keepdims=True)).ravel()

    cells = [str(enc.path), f"step {enc.step}", f"{r(ridge(ftr, fte), yte):.3f}",
             f"{r(ridge(mtr, mte), yte):.3f}", f"{r(mte[:, latent], yte):.3f}",
             f"{r(centred(mte[:, latent]), centred(yte)):.3f}", f"{mte[:, latent].std():.3f}"]
    return "| " + " | ".join(cells) + " |"


def _bins(lo: float, hi: float, n: int) -> np.ndarray:
    return np.linspace(lo, hi, n + 1)


def _mean_sd(v: np.ndarray) -> str:
    return f"{v.mean():+.2f} ± {v.std():.2f} ({len(v)})" if len(v) else ""


def _batch_r(values: np.ndarray, z: np.ndarray, batch_size: int) -> np.ndarray:
    """|r| of factor and latent inside each minibatch: (n minibatches,)."""
    return np.abs([np.corrcoef(f, y)[0, 1] for f, y in
                   zip(values.reshape(-1, batch_size), z.reshape(-1, batch_size), strict=True)])


def by_view(enc: Encoded, factor: str) -> str:
    """The --by-view tables of one checkpoint (module docstring)."""
    names = enc.factor_names
    others = [n for n in names if n != factor]
    if not others:
        return f"{enc.path}: no other factor to split the views by"
    col, by = names.index(factor), names.index(others[0])
    (_, mtr, ftr), (_, mte, fte) = enc.train, enc.test
    ztr, zte = mtr[:, enc.latent], mte[:, enc.latent]
    (lo, hi), (by_lo, by_hi) = (enc.factor_ranges[n] for n in (factor, others[0]))
    edges = _bins(lo, hi + 1e-9, 6)  # the rendered ranges, so bins are the same for every run
    far = np.abs(ftr[:, by])
    view_edges = _bins(0.0, max(abs(by_lo), abs(by_hi)) + 1e-9, 3)
    views = [(far >= a) & (far < b) for a, b in itertools.pairwise(view_edges)]
    view_names = [f"\\|{others[0]}\\| {a:.0f}-{b:.0f}"
                  for a, b in itertools.pairwise(view_edges)]
    head = [factor, "test grid (reference view)", *[f"train, {v}" for v in view_names]]
    lines = [f"{enc.path} (step {enc.step}): the {factor} latent's mean ± sd (images)", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for a, b in itertools.pairwise(edges):
        in_tr = (ftr[:, col] >= a) & (ftr[:, col] < b)
        in_te = (fte[:, col] >= a) & (fte[:, col] < b)
        lines.append("| " + " | ".join([f"{a:.0f} to {b:.0f}", _mean_sd(zte[in_te]),
                                         *[_mean_sd(ztr[in_tr & v]) for v in views]]) + " |")
    bs = enc.batch_size
    r_tr, r_te = _batch_r(ftr[:, col], ztr, bs), _batch_r(fte[:, col], zte, bs)
    lines += ["", "| within-minibatch r (mean ± sd over minibatches) | test grid | "
              + " | ".join(f"train, {v}" for v in view_names) + " |",
              "|" + "---|" * (2 + len(views)),
              f"| {factor} latent | {_mean_sd(r_te)} | "
              + " | ".join(_mean_sd(r_tr[v.reshape(-1, bs)[:, 0]]) for v in views) + " |"]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--factor", default="elevation")
    ap.add_argument("--by-view", action="store_true",
                    help="also the latent along the factor and by view (module docstring)")
    ap.add_argument("--data", type=Path, default=REPO / "data" / "faces")
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    a = ap.parse_args()
    torch.set_num_threads(1)
    head = ["checkpoint", "trained", "r: ridge on conv features", "r: ridge on mu",
            f"r: the {a.factor} latent", f"r: the {a.factor} latent, within minibatches",
            f"sd of the {a.factor} latent"]
    lines = [f"### latent probe: {a.factor} (analysis, not a timing)", "",
             f"Machine: {machine()}", f"Command: `python -m bench.latent_probe "
             f"{shlex.join([*map(str, a.checkpoints), '--factor', a.factor])}"
             f"{' --by-view' if a.by_view else ''}`", "",
             f"On the {a.factor} minibatches of {a.data}: ridge fitted on train, r on test.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    encoded = [encode(p, a.factor, a.data) for p in a.checkpoints]
    lines += [probe(e, a.factor) for e in encoded]
    if a.by_view:
        lines += ["", *(f"{by_view(e, a.factor)}\n" for e in encoded)]
    publish("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
