"""Does the decoder reward a latent that follows its factor? (analysis)

    python -m bench.code_swap CHECKPOINT [CHECKPOINT ...] [--factor elevation]
                              [--data data/faces] [--out FILE]

On the test grid of --factor (each test identity at every grid value of it, the other factors
at the reference view), each image is encoded, its factor's latent replaced, and the code
decoded again. The reconstruction MSE against the true image, over the grid and over each half
of the factor's range, for four versions of that one latent:

- encoder: the encoder's own (the model's reconstruction);
- linear: a + b * factor, the least-squares line through the encoder's values on the grid
  (one line for all identities): what a latent that reads the factor perfectly would be;
- linear + identity offset: the same line, shifted per identity to the encoder's mean there;
- constant: each identity's mean of the encoder's values, the same for all its views: a
  latent that says nothing about the factor.

If a constant costs no more than the encoder's latent over some part of the range, the decoder
draws nothing there that the latent could control, and training pays the encoder nothing for
reading the factor there. If the linear latent costs no more than the encoder's, the trained
decoder would accept a latent that follows the factor. `detail` (the evaluate stage's) of the
model's own grid reconstructions is printed beside it.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import numpy as np
import torch

from bench import publish
from bench.render import machine
from core.params import load_params
from evaluate.data import decode, encode
from evaluate.stage import Detail, eval_inputs
from train import checkpoint

REPO = Path(__file__).resolve().parents[1]
VERSIONS = ("encoder", "linear", "linear + identity offset", "constant")


def swapped(latent: np.ndarray, values: np.ndarray) -> dict[str, np.ndarray]:
    """The four versions of one latent on a grid: latent (n, B) per identity and grid view,
    values (B,) the factor at each view."""
    f = np.broadcast_to(values, latent.shape)
    slope, icept = np.polyfit(f.ravel(), latent.ravel(), 1)
    line = icept + slope * f
    mean = latent.mean(1, keepdims=True)
    return {"encoder": latent, "linear": line,
            "linear + identity offset": line - line.mean(1, keepdims=True) + mean,
            "constant": np.broadcast_to(mean, latent.shape)}


def errors(model, images: np.ndarray, values: np.ndarray, latent: int,
           ) -> tuple[dict[str, tuple[float, float, float]], np.ndarray]:
    """(version -> (MSE over the grid, over its lower half of values, over its upper half),
    the model's own reconstructions: the "encoder" version's images)."""
    cpu = torch.device("cpu")
    mu = encode(model, images, cpu)  # (n, B, D)
    truth = images.astype(np.float32) / 255
    mid = (values.min() + values.max()) / 2
    recs = {}
    for name, lat in swapped(mu[..., latent], values).items():
        z = mu.copy()
        z[..., latent] = lat
        recs[name] = decode(model, z, cpu)
    out = {}
    for name, rec in recs.items():
        err = ((rec - truth) ** 2).mean(axis=(2, 3, 4))  # (n, B)
        out[name] = (float(err.mean()), float(err[:, values < mid].mean()),
                     float(err[:, values > mid].mean()))
    return out, recs["encoder"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("checkpoints", type=Path, nargs="+")
    ap.add_argument("--factor", default="elevation")
    ap.add_argument("--data", type=Path, default=REPO / "data" / "faces")
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    a = ap.parse_args()
    torch.set_num_threads(1)
    params = load_params(REPO / "params.yaml")
    inp = eval_inputs(params, "faces", a.data)
    if a.factor not in inp.grids:
        raise SystemExit(f"--factor {a.factor!r}: expected one of {sorted(inp.grids)}")
    grid = inp.grids[a.factor]
    detail = Detail.of(params.evaluate, inp.test_idx.image_size)
    mid = (grid.values.min() + grid.values.max()) / 2  # where errors() splits the grid
    lines = [f"### the decoder given other {a.factor} latents (analysis)", "",
             f"Machine: {machine()}",
             "Command: `python -m bench.code_swap "
             + shlex.join([*map(str, a.checkpoints)]
                          + ["--factor", a.factor] * (a.factor != "elevation")
                          + ["--data", str(a.data)] * (a.data != REPO / "data" / "faces"))
             + "`", "",
             f"Reconstruction MSE on the test {a.factor} grid ({len(grid)} identities x "
             f"{grid.images.shape[1]} views): all / {a.factor} below {mid:g} / above {mid:g}.", "",
             "| checkpoint | trained | detail | " + " | ".join(VERSIONS) + " |",
             "|---|---|---|" + "---|" * len(VERSIONS)]
    for path in a.checkpoints:
        model, ckpt = checkpoint.load_model(path)
        model.eval()
        latent = checkpoint.assignment_of(ckpt).factors.index(a.factor)
        errs, rec = errors(model, grid.images, grid.values, latent)
        d = detail.score(rec, grid.images.astype(np.float32) / 255)
        lines.append(f"| {path} | step {int(ckpt['step'])} | "
                     + ("n/a" if d is None else f"{d:.3f}") + " | "
                     + " | ".join("{:.5f} / {:.5f} / {:.5f}".format(*errs[v]) for v in VERSIONS)
                     + " |")
        print(lines[-1], flush=True)
    publish("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
