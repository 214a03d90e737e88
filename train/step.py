"""One training step, and what it needs, on torch alone (no shards, params or logging), so the
fit loop, the benchmarks and the GPU check (bench/gpu.py, on a machine with only torch and
numpy) run the same code.

``backward_step`` is a step's forward and backward; the caller zeroes the gradients and steps
the optimiser. ``item_noise`` is the reparameterisation noise as a pure function of the stream
item; ``choose_device`` and ``cpu_has_bf16`` pick the hardware and whether bf16 autocast pays.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from pathlib import Path

import torch

from render.seeds import stream
from train.clamp import LatentAssignment
from train.model import DCIGN, ModelConfig, VAELoss, vae_loss


def choose_device(pref: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then CPU (or exactly what params ask for)."""
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if pref == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("params key 'train.device' is 'cuda' but no CUDA device is available")
    if pref == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(pref)


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic (avx512_bf16 or AMX), where PyTorch's CPU bf16
    autocast is faster than fp32 (an AMD EPYC with avx512_bf16: 1.44x the channels-last fp32
    step at 64 px, 1.9x at 150 px; issue 13). Without it bf16 is emulated and slower."""
    try:
        return bf16_in_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        return False


def bf16_in_cpuinfo(text: str) -> bool:
    """Whether a /proc/cpuinfo text's first ``flags`` line lists avx512_bf16 or amx_bf16."""
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines()
                  if ln.startswith("flags")), [])
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def seed_int(seed: int, *keys: str | int) -> int:
    return int(stream(seed, *keys).integers(2**62))


def item_noise(seed: int, items: torch.Tensor, batch: int, dim: int) -> torch.Tensor:
    """The reparameterisation noise of stream items, a pure function of (seed, item):
    float32 (len(items) * batch, dim). Makes resume, G and DDP equivalences exact."""
    parts = []
    for item in items.tolist():
        g = torch.Generator().manual_seed(seed_int(seed, "noise", int(item)))
        parts.append(torch.randn(batch, dim, generator=g))
    return torch.cat(parts)


def backward_step(net: torch.nn.Module, x: torch.Tensor, kinds: list[str], noise: torch.Tensor,
                  *, model_kind: str, assignment: LatentAssignment, clamp_scale: float,
                  world: int = 1,
                  amp: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                  ) -> tuple[VAELoss, float | None]:
    """Forward and backward of one training step (the caller zeroes the gradients and steps the
    optimiser): x (G*B, C, H, W) in [0, 1], one kind per minibatch, noise (G*B, D).

    The loss is multiplied by ``world`` before backward, so that DDP's average over W ranks is
    the gradient of the summed loss; the clamp's invariance gradient, relative to the upstream
    one, follows. Returns the loss and, for DC-IGN, the measured ratio of the invariance
    gradient's norm to the active latents' (over the step's minibatches, mu head).
    """
    norms: list[torch.Tensor] = []
    with amp():
        if model_kind == "dcign":
            out = net(x, kinds, assignment=assignment, clamp_scale=clamp_scale, noise=noise,
                      clamp_record=norms)
        else:
            out = net(x, noise=noise)
    loss = vae_loss(out.logits, x, out.mu, out.logvar)
    (loss.total * world).backward()
    if not norms:
        return loss, None
    inv, act = torch.cat(norms).square().sum(dim=0).sqrt().tolist()
    return loss, (inv / act if act > 0 else 0.0)


def step_memory(cfg: ModelConfig, images: int) -> int:
    """Bytes one training step of `images` images needs: every layer's output kept for the
    backward pass and its gradient (float32), plus weights, gradients and Adam's two moments.
    Measured by a forward pass on the meta device, which allocates nothing."""
    with torch.device("meta"):
        net = DCIGN(cfg)
    outputs = [0]

    def count(_module, _inputs, out) -> None:
        if isinstance(out, torch.Tensor):
            outputs[0] += out.numel()

    hooks = [m.register_forward_hook(count) for m in net.modules() if not list(m.children())]
    net(torch.empty(1, cfg.channels, cfg.image_size, cfg.image_size, device="meta"))
    for h in hooks:
        h.remove()
    weights = sum(p.numel() for p in net.parameters())
    return 4 * (2 * outputs[0] * images + 4 * weights)
