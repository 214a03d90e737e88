"""Can the default decoder draw a face at all? A decoder-only fit on a few test images.

    python -m bench.decoder_fit [--images 20] [--steps 1500] [--grids azimuth|...|all] [--amp]
                                [--lr 1e-3] [--detail-weight W] [--noise S]
                                [--variant default|fullres|bilinear]
                                [--data data/faces] [--out FILE]

The evaluate stage's `detail` of every trained faces model is ~0: reconstructions redraw none
of the fine structure inside the head's outline (README "Metrics"). This separates the two
readings of that: the decoder cannot represent a face, or training does not get it there. The
default decoder (params.yaml's train.* widths, GroupNorm) is fitted alone, GLO-style: each image
gets a free latent vector, optimised with the decoder's weights by Adam on the training loss's
reconstruction term (BCE summed over pixels), 20 images a step. The images are the first
--images of the test azimuth grid (identity 0's 20 views, then identity 1's, ...), or of
--grids all (the azimuth, elevation and light grids, one after the other). Every fifth of the
steps it prints the fit's MSE and `detail` as the evaluate stage scores it.

Options that ask why the VAE does worse: --amp trains under bf16 autocast as training does;
--detail-weight adds W x a fine-structure term (the squared error of the high-passed images,
`detail_loss`) to the loss; --noise adds a VAE-like sampling noise to the codes while fitting.
"""

from __future__ import annotations

import argparse
import contextlib
import math
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
from train.model import Decoder, ModelConfig

REPO = Path(__file__).resolve().parents[1]


def high_pass(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, C, H, W) images minus their Gaussian blur of sd ``sigma`` px (edges replicated, the
    kernel cut at 4 sd as scipy's): evaluate.metrics.high_pass in torch, for a loss."""
    if not math.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma must be a positive number of pixels, got {sigma}")
    radius = int(4 * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = k / k.sum()
    c = images.shape[1]
    blur = F.pad(images, (radius,) * 4, mode="replicate")
    blur = F.conv2d(blur, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    blur = F.conv2d(blur, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return images - blur


def detail_loss(logits: torch.Tensor, x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Sum over pixels of the squared difference of the decoded and target images' fine
    structure (finer than a blur of sd ``sigma`` px), in float32: --detail-weight's term."""
    out = torch.sigmoid(logits.float())
    return (high_pass(out, sigma) - high_pass(x.float(), sigma)).square().sum()


VARIANTS = ("default", "fullres", "bilinear")


def decoder(cfg: ModelConfig, variant: str = "default") -> Decoder:
    """The default decoder, or a prototype variant of it (not in the model, only here):
    fullres: the last stage emits 32 maps, then GroupNorm, ReLU and a 3x3 conv to the image at
    full resolution; bilinear: bilinear upsampling in place of nearest."""
    dec = Decoder(cfg)
    if variant == "fullres":
        last = dec.body[-1]
        width = cfg.dec_channels[-1]
        dec.body[-1] = torch.nn.Conv2d(last.in_channels, width, last.kernel_size)
        dec.body.extend([torch.nn.GroupNorm(8, width), torch.nn.ReLU(),
                         torch.nn.Conv2d(width, cfg.channels, 3, padding=1)])
    elif variant == "bilinear":
        for m in dec.body:
            if isinstance(m, torch.nn.Upsample):
                m.mode = "bilinear"
    elif variant != "default":
        raise ValueError(f"unknown decoder variant {variant!r} (expected one of {VARIANTS})")
    return dec


def fit(x: torch.Tensor, cfg: ModelConfig, steps: int, detail: Detail, seed: int = 0,
        amp: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
        detail_weight: float = 0.0, noise: float = 0.0, variant: str = "default",
        lr: float = 1e-3):
    """Yield (step, MSE, detail, seconds) five times while fitting decoder + free latents;
    ``amp`` is the training step's autocast (core.device.bf16_autocast); ``noise`` adds
    Gaussian noise of this sd, relative to each latent's spread over the images, to the codes
    the decoder is trained on (a VAE's sampling noise, at a chosen level)."""
    torch.manual_seed(seed)
    dec = decoder(cfg, variant)
    z = torch.nn.Parameter(torch.randn(len(x), cfg.latent_dim) * 0.1)
    opt = torch.optim.Adam([*dec.parameters(), z], lr=lr, betas=(0.9, 0.99))
    t0, every = time.time(), max(1, steps // 5)
    for step in range(1, steps + 1):
        idx = torch.randperm(len(x))[:20]
        code = z[idx]
        if noise:
            code = code + noise * z.detach().std(0) * torch.randn_like(code)
        with amp():
            logits = dec(code)
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
    ap.add_argument("--grids", default="azimuth",
                    help="the test grid(s) the images come from, in order: a factor, or all")
    ap.add_argument("--variant", choices=VARIANTS, default="default")
    ap.add_argument("--amp", action="store_true",
                    help="bf16 autocast, as training uses it where the CPU has bf16")
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate")
    ap.add_argument("--detail-weight", type=float, default=0.0)
    ap.add_argument("--noise", type=float, default=0.0,
                    help="code noise sd during the fit, relative to each latent's spread")
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    a = ap.parse_args()
    if a.images < 1 or a.steps < 5:
        raise SystemExit("--images must be >= 1 and --steps >= 5")
    if not (a.detail_weight >= 0 and a.noise >= 0 and a.lr > 0):  # also refuses nan
        raise SystemExit("--detail-weight and --noise must be >= 0, --lr > 0")
    torch.set_num_threads(1)
    params = load_params(REPO / "params.yaml")
    inp = eval_inputs(params, "faces", a.data)
    if a.grids != "all" and a.grids not in inp.grids:
        raise SystemExit(f"--grids {a.grids!r}: expected all or one of {sorted(inp.grids)}")
    grids = list(inp.grids) if a.grids == "all" else [a.grids]
    x = torch.from_numpy(np.concatenate([
        inp.grids[g].images.reshape(-1, *inp.grids[g].images.shape[2:]) for g in grids]
    ).astype(np.float32) / 255)[: a.images]
    cfg = model_config(params, inp.test_idx, "faces")  # the decoder the faces model trains
    detail = Detail.of(params.evaluate, inp.test_idx.image_size)
    lines = ["### the default decoder fitted alone to a few faces (analysis)", "",
             f"Machine: {machine()}",
             "Command: `python -m bench.decoder_fit "
             + shlex.join(["--images", str(a.images), "--steps", str(a.steps)]
                         + ["--grids", a.grids] * (a.grids != "azimuth")
                         + ["--variant", a.variant] * (a.variant != "default")
                         + ["--lr", str(a.lr)] * (a.lr != 1e-3)
                         + ["--amp"] * a.amp
                         + ["--detail-weight", str(a.detail_weight)] * bool(a.detail_weight)
                         + ["--noise", str(a.noise)] * bool(a.noise))
             + "`", "",
             "| step | MSE | detail | seconds |", "|---|---|---|---|"]
    amp = bf16_autocast(torch.device("cpu"), a.amp)
    for step, mse, d, sec in fit(x, cfg, a.steps, detail, amp=amp, detail_weight=a.detail_weight,
                                 noise=a.noise, variant=a.variant, lr=a.lr):
        lines.append(f"| {step} | {mse:.5f} | {'n/a' if d is None else f'{d:.3f}'} | {sec:.0f} |")
        print(lines[-1], flush=True)
    publish("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
