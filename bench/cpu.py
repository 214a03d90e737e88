"""CPU training throughput against the machine's peak: layout, bf16 autocast, compile.

    python -m bench.cpu [--models default,paper] [--variants contiguous,channels-last,bf16]
                        [--steps 5] [--rounds 2] [--out bench/RESULTS.md]

Peak: the best of a few large matmuls (fp32, and bf16 when the CPU has bf16 instructions),
in GFLOP/s, measured in the same run with the same threads. Step: `train.step.backward_step`
(the fit loop's own forward + backward, with the clamp) plus Adam, 20 images of one minibatch,
DC-IGN. Models: "default" = params.yaml's faces model, "paper" = 150 px, latent 200, the
paper's widths. Variants: contiguous fp32, channels-last fp32, channels-last + bf16 autocast
("bf16"), channels-last + torch.compile ("compile"). FLOPs per image are counted once per
model by torch's FlopCounterMode on a step (convolutions and matmuls, forward + backward), so
fraction of peak = FLOPs/image x img/s / peak; bf16 rows are set against the bf16 peak. The
variants alternate for --rounds rounds (a slow spell on a shared machine hits all), each the
median of --steps steps after 2 warm-ups. `train.fit` picks channels-last on a CPU, and bf16
autocast where `core.device.cpu_has_bf16()` (avx512_bf16 or AMX) holds.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench import publish
from bench.render import machine
from bench.train import REPO, commit
from core.device import cpu_has_bf16
from core.params import load_params
from train.clamp import LatentAssignment
from train.model import DCIGN, ModelConfig
from train.step import backward_step, item_noise

BATCH = 20
FACTORS = ("azimuth", "elevation", "light_azimuth")


def peak_gflops(dtype: torch.dtype, n: int = 2048, reps: int = 5) -> float:
    """Best GFLOP/s of n x n matmuls in this dtype."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up
    best = 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def model_configs() -> dict[str, ModelConfig]:
    p = load_params(REPO / "params.yaml")
    t = p.train
    odd = tuple(FACTORS.index(f) for f in t.odd_factors.get("faces", ()))
    return {"default": ModelConfig(image_size=p.render.image_size, channels=p.render.channels,
                                   latent_dim=t.latent_dim, enc_channels=t.enc_channels,
                                   dec_channels=t.dec_channels, norm=t.norm,
                                   odd_latents=odd),
            "paper": ModelConfig(image_size=150, channels=1, latent_dim=200)}


class Step:
    """One variant's training step on fixed random images (the cost does not depend on them)."""

    def __init__(self, cfg: ModelConfig, variant: str) -> None:
        torch.manual_seed(0)
        self.fmt = (torch.contiguous_format if variant == "contiguous"
                    else torch.channels_last)
        self.model = DCIGN(cfg).to(memory_format=self.fmt).train()
        self.net = torch.compile(self.model) if variant == "compile" else self.model
        self.opt = torch.optim.Adam(self.model.parameters(), lr=5e-4, betas=(0.9, 0.99))
        self.amp: Callable[[], contextlib.AbstractContextManager] = (
            (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if variant == "bf16"
            else contextlib.nullcontext)
        self.assignment = LatentAssignment(FACTORS, cfg.latent_dim)
        gen = torch.Generator().manual_seed(0)
        self.images = torch.randint(0, 256, (BATCH, cfg.channels, cfg.image_size,
                                             cfg.image_size), dtype=torch.uint8, generator=gen)
        self.i = 0

    def __call__(self) -> None:
        x = self.images.float().div_(255).contiguous(memory_format=self.fmt)
        noise = item_noise(0, torch.tensor([self.i]), BATCH, self.assignment.latent_dim)
        self.opt.zero_grad(set_to_none=True)
        backward_step(self.net, x, [FACTORS[self.i % 3]], noise, model_kind="dcign",
                      assignment=self.assignment, clamp_scale=0.01, amp=self.amp)
        self.opt.step()
        self.i += 1

    def rate(self, steps: int) -> float:
        times = []
        for i in range(steps + 2):
            t0 = time.perf_counter()
            self()
            if i >= 2:
                times.append(time.perf_counter() - t0)
        return BATCH / statistics.median(times)


def flops_per_image(cfg: ModelConfig) -> float:
    step = Step(cfg, "channels-last")
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / BATCH


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--models", default="default,paper")
    ap.add_argument("--variants", default="contiguous,channels-last,bf16")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    a = ap.parse_args()
    configs = model_configs()
    models, variants = a.models.split(","), a.variants.split(",")
    for m in models:
        if m not in configs:
            ap.error(f"--models: unknown model {m!r}; expected some of {list(configs)}")
    for v in variants:
        if v not in ("contiguous", "channels-last", "bf16", "compile"):
            ap.error(f"--variants: unknown variant {v!r}")
    bf16_native = cpu_has_bf16()
    # Without bf16 instructions torch emulates bf16 matmuls, far slower than fp32 (the table says
    # by how much): a 512^2 product measures that rate in seconds where 2048^2 took minutes.
    peak = {"fp32": peak_gflops(torch.float32)}
    if "bf16" in variants:
        peak["bf16"] = peak_gflops(torch.bfloat16, n=2048 if bf16_native else 512)
    rows = []
    for m in models:
        cfg = configs[m]
        per_image = flops_per_image(cfg)
        steps = {v: Step(cfg, v) for v in variants}
        rates: dict[str, list[float]] = {v: [] for v in variants}
        for _ in range(a.rounds):
            for v in variants:
                rates[v].append(steps[v].rate(a.steps))
        base = statistics.median(rates[variants[0]])
        for v in variants:
            r = statistics.median(rates[v])
            dtype = "bf16" if v == "bf16" else "fp32"
            frac = per_image * r / 1e9 / peak[dtype]
            rows.append(f"| {m} ({cfg.image_size} px, latent {cfg.latent_dim}) | {v} | {r:.1f} | "
                        f"{r / base:.2f}x | {per_image / 1e9:.3f} | {frac:.1%} of {dtype} | "
                        f"{', '.join(f'{x:.1f}' for x in rates[v])} |")
    lines = [f"### cpu: DC-IGN training step against the CPU's peak ({date.today()}, "
             f"commit {commit()})", "",
             f"Machine: {machine()}; torch {torch.__version__}, {torch.get_num_threads()} "
             f"thread(s); bf16 instructions (avx512_bf16/AMX): {'yes' if bf16_native else 'no'}",
             f"Command: `python -m bench.cpu {shlex.join(sys.argv[1:])}`", "",
             f"Peak (best 2048^2 matmul): fp32 {peak['fp32']:.0f} GFLOP/s"
             + (f", bf16 {peak['bf16']:.0f} GFLOP/s"
                + ("" if bf16_native else " (emulated, 512^2)") if "bf16" in peak else "")
             + f". Step: {BATCH} images, median of {a.steps} after 2 "
             f"warm-ups, {a.rounds} alternating rounds.", "",
             f"| model | variant | img/s | vs {variants[0]} | GFLOP/image (fwd+bwd) | "
             "fraction of peak | every round |", "|---|---|---|---|---|---|---|", *rows, ""]
    publish("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
