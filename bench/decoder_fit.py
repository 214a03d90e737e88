"""Can the default decoder draw a face at all? A decoder-only fit on a few test images.

    python -m bench.decoder_fit [--images 20] [--steps 1500] [--data data/faces]

The evaluate stage's `detail` of every trained faces model is ~0: reconstructions redraw none
of the fine structure inside the head's outline (README "Metrics"). This separates the two
readings of that: the decoder cannot represent a face, or training does not get it there. The
default decoder (params.yaml's train.* widths, GroupNorm) is fitted alone, GLO-style: each image
gets a free latent vector, optimised with the decoder's weights by Adam on the training loss's
reconstruction term (BCE summed over pixels), 20 images a step. The images are the first
--images of the test azimuth grid (identity 0's 20 views, then identity 1's, ...). Every fifth
of the steps it prints the fit's MSE and `detail` as the evaluate stage scores it.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench import publish
from bench.render import machine
from core.device import bf16_autocast
from core.params import load_params
from evaluate.stage import Detail, eval_inputs
from train.fit import model_config
from train.model import Decoder, ModelConfig, detail_loss

REPO = Path(__file__).resolve().parents[1]


def fit(x: torch.Tensor, cfg: ModelConfig, steps: int, detail: Detail, seed: int = 0,
        amp: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
        detail_weight: float = 0.0):
    """Yield (step, MSE, detail, seconds) five times while fitting decoder + free latents;
    ``amp`` is the training step's autocast (core.device.bf16_autocast)."""
    torch.manual_seed(seed)
    dec = Decoder(cfg)
    z = torch.nn.Parameter(torch.randn(len(x), cfg.latent_dim) * 0.1)
    opt = torch.optim.Adam([*dec.parameters(), z], lr=1e-3, betas=(0.9, 0.99))
    t0, every = time.time(), max(1, steps // 5)
    for step in range(1, steps + 1):
        idx = torch.randperm(len(x))[:20]
        with amp():
            logits = dec(z[idx])
        loss = F.binary_cross_entropy_with_logits(logits.float(), x[idx], reduction="sum")
        if detail_weight:
            loss = loss + detail_weight * detail_loss(logits, x[idx], detail.sigma)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % every == 0:
            with torch.no_grad():
                out = torch.sigmoid(dec(z)).numpy()
            yield (step, float(np.mean((out - x.numpy()) ** 2)), detail.score(out, x.numpy()),
                   time.time() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--data", type=Path, default=REPO / "data" / "faces")
    ap.add_argument("--amp", action="store_true",
                    help="bf16 autocast, as training uses it where the CPU has bf16")
    ap.add_argument("--detail-weight", type=float, default=0.0)
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    a = ap.parse_args()
    if a.images < 1 or a.steps < 5:
        raise SystemExit("--images must be >= 1 and --steps >= 5")
    torch.set_num_threads(1)
    params = load_params(REPO / "params.yaml")
    inp = eval_inputs(params, "faces", a.data)
    x = torch.from_numpy(inp.grids["azimuth"].images.astype(np.float32) / 255)
    x = x.reshape(-1, *x.shape[2:])[: a.images]
    cfg = model_config(params, inp.test_idx, "faces")  # the decoder the faces model trains
    detail = Detail.of(params.evaluate, inp.test_idx.image_size)
    lines = ["### the default decoder fitted alone to a few faces (analysis)", "",
             f"Machine: {machine()}",
             "Command: `python -m bench.decoder_fit "
             + shlex.join(["--images", str(a.images), "--steps", str(a.steps)]
                         + ["--amp"] * a.amp
                         + ["--detail-weight", str(a.detail_weight)] * bool(a.detail_weight))
             + "`", "",
             "| step | MSE | detail | seconds |", "|---|---|---|---|"]
    amp = bf16_autocast(torch.device("cpu"), a.amp)
    for step, mse, d, sec in fit(x, cfg, a.steps, detail, amp=amp, detail_weight=a.detail_weight):
        lines.append(f"| {step} | {mse:.5f} | {'n/a' if d is None else f'{d:.3f}'} | {sec:.0f} |")
        print(lines[-1], flush=True)
    publish("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
