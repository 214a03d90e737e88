"""The device check: the paper-scale model on a GPU, with bf16 autocast and channels-last.

    bash bench/gpu.sh [--steps 60] [--group 4] [--compile] [--out FILE]
    python -m bench.gpu --device cpu --size 40 --latent 8 --steps 3   # the same code on a CPU

Needs torch and numpy only (the lent GPU machine has no renderer, DVC or PyYAML), so the
minibatches are synthetic: smooth random blobs, a fixed set of --group x 4 minibatches of 20
images cycled over the steps, so that the loss must fall if training works. Each step is
`train.step.backward_step` (the fit loop's forward + backward with the clamp, one kind per
minibatch) plus Adam, DC-IGN at the paper's widths and 200-d code (--size 150). Variants:
eager, and with --compile also `torch.compile`d. Prints per variant: images/s and ms per step
(median over the timed steps, after --warmup), peak GPU memory, the loss of the first and the
last pass over the fixed set, and whether it fell. Exit status 1 if a variant's loss did not
fall, 2 if --device cuda was asked for and there is none.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import torch

from bench import publish
from core.device import bf16_autocast, choose_device, cpu_has_bf16
from train.clamp import LatentAssignment
from train.model import DCIGN, ModelConfig
from train.step import backward_step, item_noise

BATCH = 20
KINDS = ("azimuth", "elevation", "light_azimuth", "intrinsic")


def blobs(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """n smooth grayscale images (n, 1, size, size) in [0, 1]: sums of three Gaussian blobs."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size),
                            indexing="ij")
    img = torch.zeros(n, size, size)
    for _ in range(3):
        cx, cy = (torch.rand(n, 1, 1, generator=gen) * 1.2 - 0.6 for _ in range(2))
        w = torch.rand(n, 1, 1, generator=gen) * 0.3 + 0.1
        img += torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * w**2))
    return (img / img.amax(dim=(1, 2), keepdim=True)).unsqueeze(1)


def run_variant(cfg: ModelConfig, device: torch.device, a: argparse.Namespace,
                compiled: bool) -> dict:
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    n_batches = a.group * 4  # the fixed set: 4 steps' worth, cycled
    data = blobs(n_batches * BATCH, cfg.image_size, gen).to(device)
    data = data.contiguous(memory_format=torch.channels_last)
    kinds = [KINDS[i % len(KINDS)] for i in range(n_batches)]
    model = DCIGN(cfg).to(device).to(memory_format=torch.channels_last).train()
    net = torch.compile(model) if compiled else model
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.99))
    assignment = LatentAssignment(KINDS[:-1], cfg.latent_dim)
    bf16 = device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16())
    amp = bf16_autocast(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    per_step = a.group * BATCH
    times, pass_losses, losses = [], [], []
    for step in range(a.warmup + a.steps):
        first = (step * a.group) % n_batches
        rows = slice(first * BATCH, (first + a.group) * BATCH)
        noise = item_noise(0, torch.arange(first, first + a.group), BATCH,
                           cfg.latent_dim).to(device)
        sync()
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss, _ = backward_step(net, data[rows], kinds[first:first + a.group], noise,
                                model_kind="dcign", assignment=assignment, clamp_scale=0.01,
                                amp=amp)
        opt.step()
        sync()
        if step >= a.warmup:  # the first steps pay for compilation and kernel selection
            times.append(time.perf_counter() - t0)
        losses.append(loss.total.item() / per_step)
        if len(losses) == 4:  # one pass over the fixed set
            pass_losses.append(statistics.mean(losses))
            losses = []
    sec = statistics.median(times)
    mem = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return {"variant": "compile" if compiled else "eager", "bf16": bf16,
            "img_s": per_step / sec, "ms_step": 1e3 * sec, "mem_gib": mem,
            "loss_first": pass_losses[0], "loss_last": pass_losses[-1],
            "fell": pass_losses[-1] < 0.9 * pass_losses[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--device", default="auto", choices=["auto", "cuda", "cpu"])
    ap.add_argument("--size", type=int, default=150)
    ap.add_argument("--latent", type=int, default=200)
    ap.add_argument("--group", type=int, default=4, help="minibatches of 20 per step")
    ap.add_argument("--steps", type=int, default=60, help="timed steps per variant")
    ap.add_argument("--warmup", type=int, default=8)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile")
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    a = ap.parse_args()
    if a.steps < 4 or a.warmup < 1 or a.group < 1:
        ap.error("--steps must be >= 4 (one pass over the fixed set), --warmup and --group >= 1")
    if a.device == "cuda" and not torch.cuda.is_available():
        print("bench.gpu: --device cuda, but torch sees no CUDA device", file=sys.stderr)
        sys.exit(2)
    device = choose_device(a.device)
    cfg = ModelConfig(image_size=a.size, channels=1, latent_dim=a.latent)
    name = (torch.cuda.get_device_name(device) if device.type == "cuda"
            else f"CPU ({platform.processor() or platform.machine()})")
    results = []
    for compiled in (False, True) if a.compile else (False,):
        results.append(run_variant(cfg, device, a, compiled=compiled))
        print(results[-1], flush=True)  # a row that lands even if a later variant is cut off
    lines = [f"### gpu: paper-scale DC-IGN step on {name}", "",
             f"torch {torch.__version__}, CUDA {torch.version.cuda}, Python "
             f"{platform.python_version()}; {cfg.image_size} px, latent {cfg.latent_dim}, "
             f"enc {list(cfg.enc_channels)}, dec {list(cfg.dec_channels)}; {a.group} x {BATCH} "
             f"images per step, channels-last; median of {a.steps} steps after {a.warmup}.",
             f"Command: `python -m bench.gpu {' '.join(sys.argv[1:])}`", "",
             "| variant | bf16 autocast | img/s | ms/step | peak GPU memory | loss/image first "
             "-> last pass | loss fell |", "|---|---|---|---|---|---|---|"]
    for r in results:
        mem = f"{r['mem_gib']:.2f} GiB" if r["mem_gib"] is not None else "-"
        lines.append(f"| {r['variant']} | {'yes' if r['bf16'] else 'no'} | {r['img_s']:.1f} | "
                     f"{r['ms_step']:.1f} | {mem} | {r['loss_first']:.1f} -> "
                     f"{r['loss_last']:.1f} | {'yes' if r['fell'] else 'NO'} |")
    publish("\n".join(lines), a.out)
    if not all(r["fell"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
