"""The paper's clamped training (Kulkarni et al. 2015, sections 3.1 and 3.2).

Every training minibatch varies exactly one *kind* (an extrinsic factor such as "azimuth", or
"intrinsic" = identity). Latents not assigned to that kind are *clamped*:

- forward: each inactive latent is replaced by its mean over the minibatch, so the decoder must
  explain all the variation in the batch with the active latents alone (section 3.1, step 5);
- backward: the gradient reaching an inactive latent (from the reconstruction and KL terms) is
  thrown away and replaced by an invariance gradient along ``x - batch_mean``, which pulls the
  encoder's outputs for the batch together. Active latents pass their gradient through unchanged
  (step 7).

The paper scales the invariance signal "to be much smaller than the true training signal ...
a factor of 1/100 works well" (section 3.2). With the loss summed over pixels, the raw
``0.01 * (x - mean)`` is 1e-5 .. 2e-4 of the active latent's gradient, i.e. nearly off
(DESIGN.md section 4). So ``scale`` is a *ratio*: in each minibatch the invariance gradient's
norm is ``scale`` times the norm of the gradient reaching that minibatch's active latents. Being
relative to the upstream gradient, it also scales with whatever the loss is multiplied by (e.g.
the world size under DDP), as a reconstruction gradient does.

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

from core.vocab import INTRINSIC

DEFAULT_INVARIANCE_SCALE = 0.01


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
    a float >= 0; ``record`` None or a list that backward appends to. Output: (G, B, D), ``x``
    where active, the minibatch mean where not.

    Backward, for the inactive entries of minibatch g, returns ``c_g * (x - mean)`` whatever the
    upstream gradient there is, with ``c_g = scale * ||active upstream_g|| / ||x_g - mean_g||``
    (Frobenius norms over minibatch g's active and inactive entries), so the invariance
    gradient's norm is ``scale`` times the active gradient's and a descent step moves the
    inactive latents toward the mean. With ``c_g`` held constant this is the gradient of the
    penalty ``c_g/2 * sum_b ||x_b - mean||^2``; because deviations from a mean sum to zero it is
    the same whether or not the mean is treated as a function of x. The upstream gradient of the
    clamped value (which would have flowed to every row through the mean) is dropped on purpose:
    the paper *replaces* it (section 3.1, step 7), so a minibatch trains only its own latents by
    reconstruction.

    ``record`` receives, per backward, the (G, 2) float64 tensor of [invariance, active] gradient
    norms actually returned, so training can log the ratio it ran with.

    ``center`` (G, D) bool or None (not in the paper; ``train.center_extrinsic``): where True
    (active entries), the upstream gradient loses its mean over the minibatch's B rows, so that
    latent is trained only by what differs within the minibatch, i.e. by its own factor, and
    not as one more batch-level (identity) channel through its minibatch mean.
    """

    @staticmethod
    def forward(ctx: FunctionCtx, x: Tensor, active: Tensor, scale: float,
                record: list[Tensor] | None, center: Tensor | None = None) -> Tensor:
        mean = x.mean(dim=1, keepdim=True)  # (G, 1, D)
        keep = active.unsqueeze(1)  # (G, 1, D), broadcasts over the B rows
        deviation = torch.where(keep, 0.0, x - mean)  # (G, B, D), zero on active latents
        ctx.save_for_backward(deviation, keep)
        ctx.scale, ctx.record = scale, record
        ctx.center = None if center is None else (center & active).unsqueeze(1)  # (G, 1, D)
        return torch.where(keep, x, mean)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_out: Tensor) -> tuple[Tensor, None, None, None, None]:
        deviation, keep = ctx.saved_tensors
        if ctx.center is not None:
            grad_out = torch.where(ctx.center, grad_out - grad_out.mean(dim=1, keepdim=True),
                                   grad_out)
        norms = lambda t: t.double().flatten(1).norm(dim=1)  # noqa: E731, (G,) per minibatch
        active_norm = norms(torch.where(keep, grad_out, 0.0))
        dev_norm = norms(deviation)
        # A minibatch whose inactive latents already agree (dev_norm 0) gets no pull.
        coef = torch.where(dev_norm > 0, ctx.scale * active_norm / dev_norm.clamp_min(1e-300), 0.0)
        pull = coef.to(deviation.dtype).view(-1, 1, 1) * deviation
        grad_x = torch.where(keep, grad_out, pull)
        if ctx.record is not None:
            ctx.record.append(torch.stack([norms(pull), active_norm], dim=1).detach())
        return grad_x, None, None, None, None


def clamp_to_batch_mean(
    x: Tensor, active: Tensor, scale: float = DEFAULT_INVARIANCE_SCALE,
    record: list[Tensor] | None = None, center: Tensor | None = None,
) -> Tensor:
    """Validated entry point to :class:`ClampToBatchMean`; x (G, B, D), active (G, D) bool;
    ``record``: a list that receives each backward's [invariance, active] gradient norms;
    ``center``: None or a (G, D) bool mask of active entries trained by within-batch
    differences only."""
    if x.ndim != 3:
        raise ValueError(f"x must be (G, B, D), got shape {tuple(x.shape)}")
    if active.dtype != torch.bool or active.shape != (x.shape[0], x.shape[2]):
        raise ValueError(
            f"active must be a bool (G, D) = {(x.shape[0], x.shape[2])} mask, "
            f"got {active.dtype} {tuple(active.shape)}"
        )
    if center is not None and (center.dtype != torch.bool or center.shape != active.shape):
        raise ValueError(f"center must be a bool mask shaped like active {tuple(active.shape)}, "
                         f"got {center.dtype} {tuple(center.shape)}")
    if not math.isfinite(scale) or scale < 0:
        # A negative scale would push latents apart: the sign bug DESIGN.md section 4 warns of.
        raise ValueError(f"invariance scale must be finite and >= 0, got {scale}")
    return ClampToBatchMean.apply(x, active.to(x.device), float(scale), record,
                                  None if center is None else center.to(x.device))


def clamp_latents(
    mu: Tensor,
    logvar: Tensor,
    kinds: Sequence[str],
    assignment: LatentAssignment,
    scale: float = DEFAULT_INVARIANCE_SCALE,
    batch_size: int | None = None,
    record: list[Tensor] | None = None,
    center_extrinsic: bool = False,
) -> tuple[Tensor, Tensor]:
    """Clamp both encoder heads for a step of ``len(kinds)`` minibatches.

    Args:
        mu, logvar: (G*B, D) encoder outputs; rows ``g*B .. g*B+B-1`` are minibatch g.
        kinds: G kind names, one per minibatch.
        assignment: maps kinds to their active latents; D must equal ``assignment.latent_dim``.
        scale: invariance-gradient norm as a fraction of the active latents' gradient norm,
            per minibatch (paper: 1/100); 0 turns the invariance signal off.
        batch_size: B; if None it is ``rows // G``, which must divide exactly.
        record: if given, receives the mu head's (G, 2) [invariance, active] gradient norms at
            each backward (the log-variance head is clamped alike but not recorded).
        center_extrinsic: if True, an extrinsic minibatch's active latent (mu head) is trained
            by its within-minibatch differences only (:class:`ClampToBatchMean`'s ``center``);
            its log-variance and the intrinsic latents keep their whole gradient.

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
    center = None
    if center_extrinsic:
        extrinsic = torch.tensor([k != INTRINSIC for k in kinds], device=mu.device)
        center = active & extrinsic[:, None]  # (G, D)
    mu_c = clamp_to_batch_mean(mu.reshape(g, b, d), active, scale, record, center)  # (G, B, D)
    logvar_c = clamp_to_batch_mean(logvar.reshape(g, b, d), active, scale)  # (G, B, D)
    return mu_c.reshape(n, d), logvar_c.reshape(n, d)  # (G*B, D) each
