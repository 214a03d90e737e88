"""Does the encoder see a factor that its assigned latent does not carry? (analysis, not a timing)

    python -m bench.latent_probe CHECKPOINT [CHECKPOINT ...] [--factor elevation]
                                 [--data data/faces] [--out FILE]

For each DC-IGN checkpoint, on the minibatches of kind --factor (only that factor varies): a
ridge regression (sklearn's RidgeCV, alphas 1e-3..1e3) fitted on the train split's batches
predicts the factor from (a) the encoder's flattened conv features and (b) the whole mu code;
its Pearson r on the test split's batches is printed beside the assigned latent's own r with
the factor, the same r within minibatches (latent and factor centred in each minibatch, which
holds one identity), and that latent's standard deviation over the test batches. A high (a)
with a low latent r means the information is there and the latent carries something else.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import RidgeCV

from bench import publish
from bench.render import machine
from core.shards import ShardReader, scan_splits
from train import checkpoint

REPO = Path(__file__).resolve().parents[1]


def factor_batches(index, factor: str) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, C, H, W) uint8 and factor values (N,) of every minibatch of kind `factor`."""
    reader = ShardReader(index)
    col = index.factor_names.index(factor)
    images, values = [], []
    for fi, row in index.by_kind[factor]:
        b = reader.read(int(fi), int(row))
        images.append(b["images"])
        values.append(b["factors"][:, col])
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


def probe(path: Path, factor: str, data: Path) -> str:
    model, ckpt = checkpoint.load_model(path)
    model.eval()
    train_idx, test_idx = scan_splits(data, ckpt["dataset"], "probes")
    latent = checkpoint.assignment_of(ckpt).factors.index(factor)
    (xtr, ytr), (xte, yte) = (factor_batches(i, factor) for i in (train_idx, test_idx))
    (ftr, mtr), (fte, mte) = codes(model, xtr), codes(model, xte)
    r = lambda a, b: float(np.corrcoef(a, b)[0, 1])  # noqa: E731
    ridge = lambda a, b: RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(a, ytr).predict(b)  # noqa: E731

    def centred(v: np.ndarray) -> np.ndarray:
        # Each minibatch is one identity: centring both within it leaves only what the latent
        # says about the factor's changes for a fixed identity (the clamp's own question),
        # without the identity-to-identity offsets that the pooled r also counts.
        b = v.reshape(-1, test_idx.batch_size)
        return (b - b.mean(1, keepdims=True)).ravel()

    cells = [str(path), f"step {ckpt['step']}", f"{r(ridge(ftr, fte), yte):.3f}",
             f"{r(ridge(mtr, mte), yte):.3f}", f"{r(mte[:, latent], yte):.3f}",
             f"{r(centred(mte[:, latent]), centred(yte)):.3f}", f"{mte[:, latent].std():.3f}"]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", type=Path)
    ap.add_argument("--factor", default="elevation")
    ap.add_argument("--data", type=Path, default=REPO / "data" / "faces")
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    a = ap.parse_args()
    torch.set_num_threads(1)
    head = ["checkpoint", "trained", "r: ridge on conv features", "r: ridge on mu",
            f"r: the {a.factor} latent", f"r: the {a.factor} latent, within minibatches",
            f"sd of the {a.factor} latent"]
    lines = [f"### latent probe: {a.factor} (analysis, not a timing)", "",
             f"Machine: {machine()}", f"Command: `python -m bench.latent_probe "
             f"{shlex.join([*map(str, a.checkpoints), '--factor', a.factor])}`", "",
             f"On the {a.factor} minibatches of {a.data}: ridge fitted on train, r on test.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += [probe(p, a.factor, a.data) for p in a.checkpoints]
    publish("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
