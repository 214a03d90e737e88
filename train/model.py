"""The DC-IGN network (Kulkarni et al. 2015, section 3) and its variational loss.

Reads top to bottom: config and size arithmetic -> Encoder -> Decoder -> DCIGN -> loss -> helpers.

Architecture, from the original code's ``init_network2_150_mv`` (DESIGN.md section 4), at 1x150x150:

    encoder  3 x [conv 5x5 valid -> maxpool 2x2 -> ReLU], 96/48/24 maps
             150 -> 146 -> 73 -> 69 -> 34 -> 30 -> 15, flatten 24*15*15 = 5400,
             two linear heads 5400 -> 200 (mu, log-variance)
    decoder  linear 200 -> 5400, ReLU, reshape 24x15x15,
             4 x [nearest upsample x2 -> conv 7x7 valid], 24 -> 48 -> 96 -> 96 -> C, ReLU between
             15 -> 24 -> 42 -> 78 -> 150 (each stage: s -> 2s - 6)

Other image sizes use the same layers. The decoder's output side is ``16*s0 - 90`` for a start side
s0, so we take the smallest s0 with ``16*s0 - 90 >= H`` (``s0 = ceil((H + 90) / 16)``) and
centre-crop the output to H. At 150 this gives s0 = 15 and no crop, i.e. exactly the paper; at 64,
s0 = 10, the decoder makes 70x70 and drops 3 pixels per side. The decoder's start side is thus not
tied to the encoder's final side (which is 4 at 64), only its channel count is.

The decoder returns logits; ``decode`` applies the sigmoid. The loss uses BCE-with-logits, which
stays finite where a sigmoid followed by log would underflow (notably under bf16 autocast).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.vocab import INITS, NORMS, NormKind
from train.clamp import DEFAULT_INVARIANCE_SCALE, LatentAssignment, clamp_latents

ENC_KERNEL = 5
POOL = 2
DEC_KERNEL = 7
NUM_ENC_STAGES = 3
NUM_DEC_STAGES = 4
GROUPS = 8  # GroupNorm's groups (fewer where a layer has fewer channels); Wu & He use 32
# Fewest values a GroupNorm group normalises (channels per group x pixels): on the small maps
# of small images the groups merge until they hold this many (at 64 px nothing merges).
MIN_GROUP_VALUES = 16
# Each decoder stage maps s -> 2s - (k - 1); after 4 stages s0 -> 16*s0 - 6*(1 + 2 + 4 + 8).
_DEC_GROWTH = 2**NUM_DEC_STAGES  # 16
_DEC_SHRINK = (DEC_KERNEL - 1) * (2**NUM_DEC_STAGES - 1)  # 90


def encoder_sizes(image_size: int) -> list[int]:
    """Spatial side after each encoder conv and each pool; at 150: [146, 73, 69, 34, 30, 15]."""
    sizes, s = [], image_size
    for _ in range(NUM_ENC_STAGES):
        s -= ENC_KERNEL - 1  # valid conv
        sizes.append(s)
        s //= POOL  # maxpool floors odd sides (69 -> 34), as torch and Torch7 do
        sizes.append(s)
    return sizes


def _min_image_size() -> int:
    s = 1  # invert encoder_sizes: the smallest input whose last stage is still >= 1 pixel
    for _ in range(NUM_ENC_STAGES):
        s = s * POOL + ENC_KERNEL - 1
    return s


MIN_IMAGE_SIZE = _min_image_size()  # 36: 36 -> 32 -> 16 -> 12 -> 6 -> 2 -> 1


def decoder_start_size(image_size: int) -> int:
    """Side s0 of the decoder's first feature map: smallest with 16*s0 - 90 >= image_size."""
    return math.ceil((image_size + _DEC_SHRINK) / _DEC_GROWTH)


def decoder_sizes(image_size: int) -> list[int]:
    """Decoder sides from s0 to the uncropped output; at 150: [15, 24, 42, 78, 150]."""
    sizes = [decoder_start_size(image_size)]
    for _ in range(NUM_DEC_STAGES):
        sizes.append(2 * sizes[-1] - (DEC_KERNEL - 1))
    return sizes


def _check_channels(name: str, value: Sequence[int]) -> tuple[int, int, int]:
    if isinstance(value, str) or not isinstance(value, Sequence) or len(value) != 3:
        raise ValueError(f"{name} must be three channel counts, got {value!r}")
    if any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in value):
        raise ValueError(f"{name} must be three positive ints, got {value!r}")
    return (value[0], value[1], value[2])


@dataclass(frozen=True)
class ModelConfig:
    """Network shape. Defaults are the paper's; only image size and channels vary by dataset.

    Attributes:
        image_size: side H = W of the square input, pixels; at least ``MIN_IMAGE_SIZE`` (36).
        channels: 1 (grayscale, the paper) or 3 (RGB).
        latent_dim: D, the size of the graphics code (paper: 200).
        enc_channels: feature maps of the three encoder convs (paper: 96, 48, 24).
        dec_channels: feature maps of the first three decoder convs (paper: 48, 96, 96); the
            fourth outputs ``channels``.
        odd_latents: latents the encoder makes odd under a horizontal flip of the image (not in
            the paper, which has none): mu_i(x) = (m_i(x) - m_i(flip x)) / 2. For factors that
            a mirror image negates (azimuth and light azimuth of mirror-symmetric objects), this
            stops the latent from taking the turned-vs-frontal change, which is the same for
            both signs and would fold the code (see README, "The azimuth fold").
        norm: "none" (the paper) or "group": GroupNorm before every ReLU that follows a conv
            (not after the decoder's fc or its output conv). It normalises each image on its
            own, so the clamp's minibatch statistics stay the only coupling between images.
    """

    image_size: int
    channels: int
    latent_dim: int = 200
    enc_channels: tuple[int, int, int] = (96, 48, 24)
    dec_channels: tuple[int, int, int] = (48, 96, 96)
    odd_latents: tuple[int, ...] = ()
    norm: NormKind = "none"

    def __post_init__(self) -> None:
        if isinstance(self.image_size, bool) or not isinstance(self.image_size, int):
            raise ValueError(f"image_size must be an int, got {self.image_size!r}")
        if self.image_size < MIN_IMAGE_SIZE:
            raise ValueError(
                f"image_size {self.image_size} is too small for three valid 5x5 conv + 2x2 pool "
                f"stages; the minimum is {MIN_IMAGE_SIZE}"
            )
        if self.channels not in (1, 3) or isinstance(self.channels, bool):
            raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {self.channels!r}")
        if isinstance(self.latent_dim, bool) or not isinstance(self.latent_dim, int):
            raise ValueError(f"latent_dim must be an int, got {self.latent_dim!r}")
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        # Lists (from YAML/JSON checkpoints) become tuples so the config stays hashable.
        object.__setattr__(self, "enc_channels", _check_channels("enc_channels", self.enc_channels))
        object.__setattr__(self, "dec_channels", _check_channels("dec_channels", self.dec_channels))
        odd = tuple(self.odd_latents)
        if any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < self.latent_dim
               for i in odd) or len(set(odd)) != len(odd):
            raise ValueError(f"odd_latents must be distinct latent indices in "
                             f"[0, {self.latent_dim}), got {self.odd_latents!r}")
        object.__setattr__(self, "odd_latents", odd)
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")


def _norm_layers(norm: NormKind, channels: int, side: int) -> list[nn.Module]:
    """The layers a (channels, side, side) conv output passes before its ReLU: none, or one
    GroupNorm of up to GROUPS groups, each holding at least MIN_GROUP_VALUES values where the
    map allows; none where the map is a single value (nothing to normalise)."""
    if norm == "none" or channels * side * side < 2:
        return []
    groups = math.gcd(GROUPS, channels)  # a power of two: halving keeps it a divisor
    while groups > 1 and channels // groups * side * side < MIN_GROUP_VALUES:
        groups //= 2
    return [nn.GroupNorm(groups, channels)]


# ----------------------------------------------------------------------------------------------
# Encoder: x -> (mu, logvar)


class Encoder(nn.Module):
    """(N, C, H, W) images in [0, 1] -> (mu, logvar), each (N, D)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = cfg.channels
        sizes = encoder_sizes(cfg.image_size)
        for c_out, side in zip(cfg.enc_channels, sizes[1::2], strict=True):  # sides after pools
            # Pool before ReLU, as in the original; the two commute, so this is only bookkeeping.
            # The norm after the pool: the same statistics up to the pool's choice, 4x cheaper.
            layers += [nn.Conv2d(c_in, c_out, ENC_KERNEL), nn.MaxPool2d(POOL),
                       *_norm_layers(cfg.norm, c_out, side), nn.ReLU()]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        side = sizes[-1]
        self.flat_dim = cfg.enc_channels[-1] * side * side  # 5400 at 150
        self.mu = nn.Linear(self.flat_dim, cfg.latent_dim)
        self.logvar = nn.Linear(self.flat_dim, cfg.latent_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.features(x)  # (N, C3, s3, s3)
        h = h.flatten(1)  # (N, C3*s3*s3)
        return self.mu(h), self.logvar(h)


# ----------------------------------------------------------------------------------------------
# Decoder: z -> logits


class Decoder(nn.Module):
    """(N, D) latents -> (N, C, H, W) logits (pre-sigmoid)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.start_channels = cfg.enc_channels[-1]
        self.start_size = decoder_start_size(cfg.image_size)
        self.image_size = cfg.image_size
        self.fc = nn.Linear(cfg.latent_dim, self.start_channels * self.start_size**2)
        chans = (self.start_channels, *cfg.dec_channels, cfg.channels)
        layers: list[nn.Module] = []
        sides = decoder_sizes(cfg.image_size)  # sides[i]: the input side of stage i
        for i, (c_in, c_out) in enumerate(itertools.pairwise(chans)):
            if i > 0:  # between stages only: the last conv emits logits
                layers += [*_norm_layers(cfg.norm, c_in, sides[i]), nn.ReLU()]
            layers += [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(c_in, c_out, DEC_KERNEL),
            ]
        self.body = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        h = F.relu(self.fc(z))  # (N, C0*s0*s0)
        h = h.view(-1, self.start_channels, self.start_size, self.start_size)  # (N, C0, s0, s0)
        h = self.body(h)  # (N, C, S, S), S = 16*s0 - 90 >= H
        return center_crop(h, self.image_size)  # (N, C, H, W)


def center_crop(x: Tensor, size: int) -> Tensor:
    """Crop the last two dims of x (..., S, S) to (..., size, size); extra odd pixel goes last."""
    top = (x.shape[-2] - size) // 2
    left = (x.shape[-1] - size) // 2
    return x[..., top : top + size, left : left + size]


# ----------------------------------------------------------------------------------------------
# The whole network


class VAEOutput(NamedTuple):
    """What one forward pass hands to :func:`vae_loss` and to logging."""

    logits: Tensor  # (N, C, H, W) decoder output before the sigmoid
    mu: Tensor  # (N, D) posterior means, after clamping when clamped
    logvar: Tensor  # (N, D) posterior log-variances, after clamping when clamped
    z: Tensor  # (N, D) the decoder's input: a sample when training, mu in eval mode


class DCIGN(nn.Module):
    """Deep Convolutional Inverse Graphics Network: a convolutional VAE.

    Disentangling lives entirely in how :meth:`forward` is called: pass ``kinds`` and an
    ``assignment`` to clamp each minibatch's inactive latents (DC-IGN training); pass neither for
    the plain-VAE baseline. Evaluation uses :meth:`encode` / :meth:`decode` directly.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        odd = torch.zeros(cfg.latent_dim, dtype=torch.bool)
        odd[list(cfg.odd_latents)] = True
        self.register_buffer("odd", odd, persistent=False)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (N, C, H, W) float in [0, 1] -> (mu, logvar), each (N, D)."""
        want = (self.cfg.channels, self.cfg.image_size, self.cfg.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(
                f"expected images of shape (N, {', '.join(map(str, want))}), got {tuple(x.shape)}"
            )
        if not self.cfg.odd_latents:
            return self.encoder(x)
        # One encoder pass over the images and their mirror images (W is the last axis).
        mu2, logvar2 = self.encoder(torch.cat([x, torch.flip(x, dims=(-1,))]))
        (mu, mu_f), (logvar, logvar_f) = mu2.chunk(2), logvar2.chunk(2)
        # Odd mean; the log-variance is made even, so a mirror image is exactly as certain.
        mu = torch.where(self.odd, (mu - mu_f) / 2, mu)
        logvar = torch.where(self.odd, (logvar + logvar_f) / 2, logvar)
        return mu, logvar

    def decode_logits(self, z: Tensor) -> Tensor:
        """z (N, D) -> (N, C, H, W) logits."""
        return self.decoder(z)

    def decode(self, z: Tensor) -> Tensor:
        """z (N, D) -> (N, C, H, W) pixel probabilities in [0, 1]: the rendered images."""
        return torch.sigmoid(self.decode_logits(z))

    @staticmethod
    def reparameterize(mu: Tensor, logvar: Tensor, noise: Tensor | None = None) -> Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I); ``noise`` (N, D) fixes eps (tests, replays)."""
        eps = torch.randn_like(mu) if noise is None else noise
        if eps.shape != mu.shape:
            raise ValueError(f"noise must have shape {tuple(mu.shape)}, got {tuple(eps.shape)}")
        return mu + torch.exp(0.5 * logvar) * eps

    def forward(
        self,
        x: Tensor,
        kinds: Sequence[str] | None = None,
        *,
        assignment: LatentAssignment | None = None,
        clamp_scale: float = DEFAULT_INVARIANCE_SCALE,
        noise: Tensor | None = None,
        clamp_record: list[Tensor] | None = None,
        center_extrinsic: bool = False,
    ) -> VAEOutput:
        """Encode, clamp (optional), sample, decode.

        Args:
            x: (N, C, H, W) float images in [0, 1]; N = G*B rows, minibatch g being rows
                ``g*B .. g*B+B-1``.
            kinds: None for the plain VAE, else G kind names, one per minibatch (B = N // G).
            assignment: required with ``kinds``: which latents each kind trains.
            clamp_scale: invariance-gradient norm / active-gradient norm per minibatch (paper:
                1/100; train/clamp.py).
            noise: (N, D) standard-normal draw for the sample; default draws from torch's RNG.
                Ignored in eval mode, where z = mu.
            clamp_record: a list that receives the mu head's [invariance, active] gradient norms
                at backward (:func:`train.clamp.clamp_latents`).
            center_extrinsic: train an extrinsic minibatch's active latent by within-minibatch
                differences only (:func:`train.clamp.clamp_latents`; not in the paper).

        Returns:
            :class:`VAEOutput` (logits, mu, logvar, z), mu and logvar clamped when ``kinds`` is
            given; feed ``logits, x, mu, logvar`` to :func:`vae_loss`.
        """
        mu, logvar = self.encode(x)
        if kinds is not None:
            if assignment is None:
                raise ValueError("clamped training needs a LatentAssignment alongside kinds")
            # Clamp both heads before sampling (DESIGN.md section 4), so the clamped units enter
            # the decoder as one shared distribution per minibatch.
            mu, logvar = clamp_latents(mu, logvar, kinds, assignment, clamp_scale,
                                       record=clamp_record, center_extrinsic=center_extrinsic)
        elif assignment is not None:
            raise ValueError("an assignment was given without kinds; pass kinds to clamp")
        z = self.reparameterize(mu, logvar, noise) if self.training else mu
        return VAEOutput(self.decode_logits(z), mu, logvar, z)

    def architecture_summary(self) -> str:
        """One line per layer with its output shape, (C, H, W) or (features,), for one image."""
        p = next(self.parameters())
        cfg = self.cfg
        h = torch.zeros(
            1, cfg.channels, cfg.image_size, cfg.image_size, dtype=p.dtype, device=p.device
        )
        lines = [
            f"DCIGN(image_size={cfg.image_size}, channels={cfg.channels}, "
            f"latent_dim={cfg.latent_dim})  {param_count(self):,} parameters",
            _summary_line("input", h),
        ]

        def walk(prefix: str, seq: nn.Sequential, t: Tensor) -> Tensor:
            for name, layer in seq.named_children():
                t = layer(t)
                lines.append(_summary_line(f"{prefix}.{name} {_describe(layer)}", t))
            return t

        with torch.no_grad():
            h = walk("encoder.features", self.encoder.features, h)
            h = h.flatten(1)  # (1, C3*s3*s3)
            lines.append(_summary_line("encoder flatten", h))
            mu = self.encoder.mu(h)
            lines.append(_summary_line(f"encoder.mu {_describe(self.encoder.mu)}", mu))
            logvar = self.encoder.logvar(h)
            lines.append(_summary_line(f"encoder.logvar {_describe(self.encoder.logvar)}", logvar))
            h = F.relu(self.decoder.fc(mu))
            lines.append(_summary_line(f"decoder.fc {_describe(self.decoder.fc)} + ReLU", h))
            d = self.decoder
            h = h.view(1, d.start_channels, d.start_size, d.start_size)  # (1, C0, s0, s0)
            lines.append(_summary_line("decoder reshape", h))
            h = walk("decoder.body", d.body, h)
            lines.append(
                _summary_line(
                    f"decoder centre crop to {cfg.image_size}", center_crop(h, cfg.image_size)
                )
            )
        return "\n".join(lines)


def _describe(layer: nn.Module) -> str:
    if isinstance(layer, nn.Conv2d):
        k = layer.kernel_size
        return f"Conv2d {layer.in_channels}->{layer.out_channels} {k[0]}x{k[1]}"
    if isinstance(layer, nn.Linear):
        return f"Linear {layer.in_features}->{layer.out_features}"
    if isinstance(layer, nn.MaxPool2d):
        return f"MaxPool2d {layer.kernel_size}x{layer.kernel_size}"
    if isinstance(layer, nn.GroupNorm):
        return f"GroupNorm {layer.num_groups} groups"
    if isinstance(layer, nn.Upsample):
        return f"Upsample x{layer.scale_factor:g} {layer.mode}"
    return type(layer).__name__


def _summary_line(label: str, t: Tensor) -> str:
    return f"{label:<44} {tuple(t.shape[1:])}"


# ----------------------------------------------------------------------------------------------
# Initialisation

def init_weights(model: DCIGN, scheme: str) -> None:
    """Draw the weights again, from torch's global RNG, under ``scheme`` (train.init).

    "torch" keeps PyTorch's default, uniform in +-1/sqrt(fan_in) with weight variance
    1/(3 fan_in), as Torch7's (the original code's) was: through a ReLU that halves the second
    moment, every layer shrinks the signal by about 2.4x, so at 64 px the decoder's output moves
    by 1e-2 logits across codes and the encoder's mu by 5e-3 across images, and training sits
    on a plateau (README "Method notes"). "kaiming" is He et al. (2015): normal with variance
    2/fan_in where a ReLU follows (encoder convs, decoder fc and inner convs) and 1/fan_in
    where none does (the mu and log-variance heads, the output conv), biases 0, so the
    signal keeps its scale through the depth.
    """
    if scheme not in INITS:
        raise ValueError(f"unknown init {scheme!r}; expected one of {INITS}")
    if scheme == "torch":
        return
    linear_out = {model.encoder.mu, model.encoder.logvar, model.decoder.body[-1]}
    for layer in model.modules():
        if isinstance(layer, nn.Conv2d | nn.Linear):
            relu = layer not in linear_out
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu" if relu else "linear")
            nn.init.zeros_(layer.bias)


# ----------------------------------------------------------------------------------------------
# Loss


class VAELoss(NamedTuple):
    """Scalar sums over every image of the step (divide by N for per-image values)."""

    total: Tensor  # recon + kl_weight * kl: what training minimises
    recon: Tensor  # Bernoulli negative log-likelihood, nats
    kl: Tensor  # KL(q(z|x) || N(0, I)), nats


def vae_loss(logits: Tensor, x: Tensor, mu: Tensor, logvar: Tensor,
             kl_weight: float = 1.0) -> VAELoss:
    """Negative ELBO summed over pixels, latents and images (KL weighted by ``kl_weight``).

    Summed, not averaged, like the original code's unaveraged criterion: a step of G minibatches
    has exactly the sum of the G minibatch losses, and the gradient scale does not depend on the
    image size through a mean. Half-precision inputs are lifted to float32 so bf16 autocast cannot
    lose the big sums; float64 stays float64.

    Args:
        logits: (N, C, H, W) decoder logits.
        x: (N, C, H, W) target images in [0, 1].
        mu, logvar: (N, D) posterior parameters (after clamping, when clamped).
        kl_weight: beta of a beta-VAE; 1 is the ELBO (the paper). Below 1 the code may carry
            more nats than the prior would pay for (train.kl_weight in params.yaml).

    Returns:
        :class:`VAELoss` (total, recon, kl), scalars of at least float32 precision; ``recon +
        kl`` is the negative ELBO whatever ``kl_weight`` is.
    """
    if logits.shape != x.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and images {tuple(x.shape)} differ")
    logits, x, mu, logvar = (_at_least_fp32(t) for t in (logits, x, mu, logvar))
    recon = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
    kl = -0.5 * torch.sum(1.0 + logvar - mu.square() - logvar.exp())
    return VAELoss(recon + kl_weight * kl, recon, kl)


# ----------------------------------------------------------------------------------------------
# Helpers


def _at_least_fp32(t: Tensor) -> Tensor:
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def param_count(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters in ``module``."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)
