"""One training step, and what it needs, on torch alone (no shards, params or logging), so the
fit loop, the benchmarks and the GPU check (bench/gpu.py, on a machine with only torch and
numpy) run the same code.

``backward_step`` is a step's forward and backward; the caller zeroes the gradients and steps
the optimiser. ``item_noise`` is the reparameterisation noise as a pure function of the stream
item. The hardware (device, bf16 autocast) is core.device's.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from core.seeds import stream
from train.clamp import LatentAssignment
from train.model import DCIGN, ModelConfig, VAELoss, vae_loss


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
                  kl_weight: float = 1.0, center_extrinsic: bool = False, world: int = 1,
                  amp: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
                  ) -> tuple[VAELoss, float | None]:
    """Forward and backward of one training step (the caller zeroes the gradients and steps the
    optimiser): x (G*B, C, H, W) in [0, 1], one kind per minibatch, noise (G*B, D);
    ``kl_weight`` weights the KL term of the minimised loss (train.kl_weight; 1 = the ELBO);
    ``center_extrinsic`` is train.center_extrinsic (train/clamp.py; DC-IGN only).

    The loss is multiplied by ``world`` before backward, so that DDP's average over W ranks is
    the gradient of the summed loss; the clamp's invariance gradient, relative to the upstream
    one, follows. Returns the loss and, for DC-IGN, the measured ratio of the invariance
    gradient's norm to the active latents' (over the step's minibatches, mu head).
    """
    norms: list[torch.Tensor] = []
    with amp():
        if model_kind == "dcign":
            out = net(x, kinds, assignment=assignment, clamp_scale=clamp_scale, noise=noise,
                      clamp_record=norms, center_extrinsic=center_extrinsic)
        else:
            out = net(x, noise=noise)
    loss = vae_loss(out.logits, x, out.mu, out.logvar, kl_weight)
    (loss.total * world).backward()
    if not norms:
        return loss, None
    inv, act = torch.cat(norms).square().sum(dim=0).sqrt().tolist()
    return loss, (inv / act if act > 0 else 0.0)


def step_memory(cfg: ModelConfig, images: int) -> int:
    """Bytes one training step of `images` images needs: every layer's output kept for the
    backward pass and its gradient (float32), plus weights, gradients and Adam's two moments.
    Counted from a forward pass of one image on the CPU (the meta device's Python kernels took
    ~6 s to load; this takes milliseconds)."""
    net = DCIGN(cfg).eval()
    outputs = [0]

    def count(_module, _inputs, out) -> None:
        if isinstance(out, torch.Tensor):
            outputs[0] += out.numel()

    hooks = [m.register_forward_hook(count) for m in net.modules() if not list(m.children())]
    with torch.no_grad():
        net(torch.zeros(1, cfg.channels, cfg.image_size, cfg.image_size))
    for h in hooks:
        h.remove()
    weights = sum(p.numel() for p in net.parameters())
    return 4 * (2 * outputs[0] * images + 4 * weights)
