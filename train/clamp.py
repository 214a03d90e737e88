"""The paper's clamped training (Kulkarni et al. 2015, sections 3.1 and 3.2).

Every training minibatch varies exactly one *kind* (an extrinsic factor such as "azimuth", or
"intrinsic" = identity). Latents not assigned to that kind are *clamped*:

- forward: each inactive latent is replaced by its mean over the minibatch, so the decoder must
  explain all the variation in the batch with the active latents alone (section 3.1, step 5);
- backward: the gradient reaching an inactive latent (from the reconstruction and KL terms) is
  thrown away and replaced by the invariance gradient ``scale * (x - batch_mean)`` (section 3.2,
  "a factor of 1/100 works well"), which pulls the encoder's outputs for the batch together.
  Active latents pass their gradient through unchanged (step 7).

We implement the paper, not the original Lua code (which copied the first sample instead of the
mean and had the invariance gradient off by default); see DESIGN.md section 4. The clamp is
applied to both encoder heads (mu and log-variance) before sampling.

A training step may hold G minibatches of B images each, flattened to G*B rows; each minibatch has
its own kind and its own mean. Nothing here is random.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import FunctionCtx, once_differentiable

DEFAULT_INVARIANCE_SCALE = 0.01
INTRINSIC = "intrinsic"


@dataclass(frozen=True)
class LatentAssignment:
    """Which latents each batch kind trains.

    ``factors`` are the dataset's disentangled extrinsic factor names in order, e.g.
    ("azimuth", "elevation", "light_azimuth") for faces or ("azimuth",) for chairs. Kind
    ``factors[i]`` owns latent ``i``; kind "intrinsic" owns latents ``len(factors) .. latent_dim-1``
    (the paper's z1..z3 and z4..z200).
    """

    factors: tuple[str, ...]
    latent_dim: int

    def __post_init__(self) -> None:
        if isinstance(self.factors, str) or not isinstance(self.factors, Sequence):
            raise ValueError(f"factors must be a sequence of factor names, got {self.factors!r}")
        # Lists (from YAML/JSON) become tuples so the assignment stays hashable and frozen.
        object.__setattr__(self, "factors", tuple(self.factors))
        for name in self.factors:
            if not isinstance(name, str) or not name:
                raise ValueError(f"factor names must be non-empty strings, got {name!r}")
        if INTRINSIC in self.factors:
            raise ValueError(f"{INTRINSIC!r} is reserved for identity and cannot be a factor")
        if len(set(self.factors)) != len(self.factors):
            raise ValueError(f"factor names must be unique, got {list(self.factors)}")
        if isinstance(self.latent_dim, bool) or not isinstance(self.latent_dim, int):
            raise ValueError(f"latent_dim must be an int, got {self.latent_dim!r}")
        if self.latent_dim <= len(self.factors):
            raise ValueError(
                f"latent_dim ({self.latent_dim}) must exceed the number of factors "
                f"({len(self.factors)}) so at least one latent is left for {INTRINSIC!r}"
            )

    @property
    def kinds(self) -> tuple[str, ...]:
        """All batch kinds this assignment accepts: the factors, then "intrinsic"."""
        return (*self.factors, INTRINSIC)

    def active_indices(self, kind: str) -> range:
        """The latent indices trained by a minibatch of ``kind``."""
        if kind == INTRINSIC:
            return range(len(self.factors), self.latent_dim)
        if kind in self.factors:
            i = self.factors.index(kind)
            return range(i, i + 1)
        raise ValueError(f"unknown batch kind {kind!r}; expected one of {list(self.kinds)}")

    def active_mask(self, kinds: Sequence[str], device: torch.device | str | None = None) -> Tensor:
        """(G, latent_dim) bool mask, True where minibatch g's kind trains the latent."""
        mask = torch.zeros(len(kinds), self.latent_dim, dtype=torch.bool, device=device)
        for g, kind in enumerate(kinds):
            idx = self.active_indices(kind)
            mask[g, idx.start : idx.stop] = True
        return mask

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form, for checkpoints and metrics."""
        return {"factors": list(self.factors), "latent_dim": self.latent_dim}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LatentAssignment:
        """Inverse of :meth:`to_dict`; unknown or missing keys are errors."""
        expected = {"factors", "latent_dim"}
        if set(d) != expected:
            raise ValueError(
                f"latent assignment needs exactly the keys {sorted(expected)}, got {sorted(d)}"
            )
        return cls(factors=tuple(d["factors"]), latent_dim=d["latent_dim"])


class ClampToBatchMean(torch.autograd.Function):
    """Clamp inactive latents to their minibatch mean; swap their gradient for the invariance one.

    Inputs: ``x`` (G, B, D) float, G minibatches of B rows; ``active`` (G, D) bool; ``scale``
    a float >= 0. Output: (G, B, D), ``x`` where active, the minibatch mean where not.

    Backward, for inactive entries, returns ``scale * (x - mean)`` whatever the upstream gradient
    is, so a descent step moves them toward the mean. That is exactly the gradient of the penalty
    ``scale/2 * sum_b ||x_b - mean||^2``; because deviations from a mean sum to zero, it is the
    same whether or not the mean is treated as a function of x, so we use the forward's mean as a
    constant. The upstream gradient of the clamped value (which would have flowed to every row
    through the mean) is dropped on purpose: the paper *replaces* it (section 3.1, step 7), so a
    minibatch trains only its own latents by reconstruction.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, active: Tensor, scale: float) -> Tensor:
        mean = x.mean(dim=1, keepdim=True)  # (G, 1, D)
        keep = active.unsqueeze(1)  # (G, 1, D), broadcasts over the B rows
        ctx.save_for_backward(x - mean, keep)
        ctx.scale = scale
        return torch.where(keep, x, mean)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None, None]:
        deviation, keep = ctx.saved_tensors
        grad_x = torch.where(keep, grad_out, ctx.scale * deviation)
        return grad_x, None, None


def clamp_to_batch_mean(
    x: Tensor, active: Tensor, scale: float = DEFAULT_INVARIANCE_SCALE
) -> Tensor:
    """Validated entry point to :class:`ClampToBatchMean`; x (G, B, D), active (G, D) bool."""
    if x.ndim != 3:
        raise ValueError(f"x must be (G, B, D), got shape {tuple(x.shape)}")
    if active.dtype != torch.bool or active.shape != (x.shape[0], x.shape[2]):
        raise ValueError(
            f"active must be a bool (G, D) = {(x.shape[0], x.shape[2])} mask, "
            f"got {active.dtype} {tuple(active.shape)}"
        )
    if not math.isfinite(scale) or scale < 0:
        # A negative scale would push latents apart: the sign bug DESIGN.md section 4 warns of.
        raise ValueError(f"invariance scale must be finite and >= 0, got {scale}")
    return ClampToBatchMean.apply(x, active.to(x.device), float(scale))


def clamp_latents(
    mu: Tensor,
    logvar: Tensor,
    kinds: Sequence[str],
    assignment: LatentAssignment,
    scale: float = DEFAULT_INVARIANCE_SCALE,
    batch_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Clamp both encoder heads for a step of ``len(kinds)`` minibatches.

    Args:
        mu, logvar: (G*B, D) encoder outputs; rows ``g*B .. g*B+B-1`` are minibatch g.
        kinds: G kind names, one per minibatch.
        assignment: maps kinds to their active latents; D must equal ``assignment.latent_dim``.
        scale: invariance-gradient scale (paper: 1/100); 0 turns the invariance signal off.
        batch_size: B; if None it is ``rows // G``, which must divide exactly.

    Returns:
        (mu, logvar), each (G*B, D), clamped. The plain-VAE baseline simply skips this call.
    """
    if mu.shape != logvar.shape or mu.ndim != 2:
        raise ValueError(
            f"mu and logvar must both be (N, D), got {tuple(mu.shape)} and {tuple(logvar.shape)}"
        )
    n, d = mu.shape
    if d != assignment.latent_dim:
        raise ValueError(
            f"latents have D={d} but the assignment has latent_dim={assignment.latent_dim}"
        )
    g = len(kinds)
    if g == 0:
        raise ValueError("kinds is empty: need one kind per minibatch")
    b = n // g if batch_size is None else batch_size
    if b <= 0 or g * b != n:
        raise ValueError(
            f"{n} rows do not split into {g} minibatches of {batch_size or 'equal'} rows"
        )
    active = assignment.active_mask(kinds, device=mu.device)  # (G, D)
    mu_c = clamp_to_batch_mean(mu.reshape(g, b, d), active, scale)  # (G, B, D)
    logvar_c = clamp_to_batch_mean(logvar.reshape(g, b, d), active, scale)  # (G, B, D)
    return mu_c.reshape(n, d), logvar_c.reshape(n, d)  # (G*B, D) each
