"""Training step throughput by memory layout: contiguous (NCHW) vs channels-last, on the CPU.

    python -m bench.layout [--steps 10] [--rounds 2] [--out bench/RESULTS.md]

The default model of params.yaml (faces: image size, widths, latent size, flip-odd latents) and
a DC-IGN step as `train.fit` takes it: uint8 -> float, per-item noise, the clamp, BCE + KL,
backward, Adam, 20 images of one minibatch. The two layouts alternate for --rounds rounds (so a
slow spell on a shared machine hits both), each the median of --steps steps after 2 warm-ups.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import date

import torch

from bench.render import machine, publish
from bench.train import REPO, commit
from pipeline.params import load_params
from train.clamp import LatentAssignment
from train.fit import item_noise
from train.model import DCIGN, ModelConfig, vae_loss

BATCH = 20


def step_rate(cfg: ModelConfig, factors: tuple[str, ...], channels_last: bool,
              steps: int) -> float:
    """Images per second of DC-IGN training steps in one layout."""
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = DCIGN(cfg).to(memory_format=fmt).train()
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.99))
    assignment = LatentAssignment(factors, cfg.latent_dim)
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (BATCH, cfg.channels, cfg.image_size, cfg.image_size),
                           dtype=torch.uint8, generator=gen)
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        x = images.float().div_(255).contiguous(memory_format=fmt)
        noise = item_noise(0, torch.tensor([i]), BATCH, cfg.latent_dim)
        out = model(x, [factors[i % len(factors)]], assignment=assignment, noise=noise)
        loss = vae_loss(out.logits, x, out.mu, out.logvar)
        opt.zero_grad(set_to_none=True)
        loss.total.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return BATCH / statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    a = ap.parse_args()
    p = load_params(REPO / "params.yaml")
    t, ds = p.train, p.render.faces
    factors = tuple(ds.factors)
    cfg = ModelConfig(image_size=p.render.image_size, channels=p.render.channels,
                      latent_dim=t.latent_dim, enc_channels=t.enc_channels,
                      dec_channels=t.dec_channels,
                      odd_latents=tuple(factors.index(f) for f in t.odd_factors.get("faces", ())))
    rates: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(a.rounds):
        for cl in (False, True):
            rates[cl].append(step_rate(cfg, factors, cl, a.steps))
    contiguous, channels_last = (statistics.median(rates[k]) for k in (False, True))
    lines = [f"### layout: DC-IGN training step, contiguous vs channels-last ({date.today()}, "
             f"commit {commit()})", "",
             f"Machine: {machine()}; torch {torch.__version__}, {torch.get_num_threads()} "
             f"thread(s)",
             f"Command: `python -m bench.layout {' '.join(sys.argv[1:])}`", "",
             f"Model: the default faces model ({cfg.image_size} px, latent {cfg.latent_dim}, "
             f"enc {list(cfg.enc_channels)}, dec {list(cfg.dec_channels)}, odd latents "
             f"{list(cfg.odd_latents)}), {BATCH} images per step.", "",
             "| layout | img/s (median of rounds) | every round |", "|---|---|---|",
             f"| contiguous | {contiguous:.1f} | {', '.join(f'{r:.1f}' for r in rates[False])} |",
             f"| channels-last | {channels_last:.1f} | "
             f"{', '.join(f'{r:.1f}' for r in rates[True])} |", "",
             f"channels-last / contiguous: {channels_last / contiguous:.2f}x", ""]
    publish("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
