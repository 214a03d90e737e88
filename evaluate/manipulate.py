"""`dcign manipulate`: the decoder used as a graphics engine on a user's own image.

Encode the image, set one factor's latent to the calibrated value of each requested angle,
decode. The calibration (degrees -> latent value) is the one `dcign evaluate` stored.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from core.atomic import atomic_path
from core.images import load_image as convert
from core.params import AubryConfig
from evaluate.data import decode, encode
from evaluate.stage import CALIBRATION, FactorLatent, load_calibration
from train import checkpoint

log = logging.getLogger(__name__)


def load_image(path: str | Path, size: int, channels: int) -> np.ndarray:
    """Any image file -> uint8 (C, size, size), converted exactly as imported training images
    are (core.images.load_image, with the default render.chairs.aubry settings: white
    background to black, as in our renders)."""
    a = AubryConfig()
    return convert(path, image_size=size, channels=channels, background=a.background,
                   white_threshold=a.white_threshold)


def parse_values(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(
            f"--values must be comma-separated degrees, e.g. -60,0,60; got {text!r}") from None
    if not values:
        raise ValueError("--values is empty: give comma-separated degrees, e.g. -60,0,60")
    bad = [v for v in values if not math.isfinite(v) or abs(v) > 3600]
    if bad:
        raise ValueError(f"--values must be finite degrees within +-3600, got {bad}")
    return values


def find_calibration(ckpt_path: Path, ckpt: dict, calibration_path: Path | None) -> dict:
    """The calibration entry of this checkpoint's model (matched by its path: another
    model's calibration would put the factor on the wrong latent or scale)."""
    path = calibration_path or Path("eval") / ckpt["dataset"] / CALIBRATION
    cal = load_calibration(path)
    models = cal.get("models", {})
    for entry in models.values():
        if Path(entry["checkpoint"]).resolve() == ckpt_path.resolve():
            if entry.get("checkpoint_sha256") != checkpoint.digest(ckpt_path):
                raise ValueError(f"{path}: its calibration of {ckpt_path} is for another model "
                                 f"once at that path (retrained since); run `dcign evaluate` "
                                 f"again")
            return entry["factors"]
    known = ", ".join(sorted(e["checkpoint"] for e in models.values())) or "none"
    raise ValueError(f"{path}: no calibration for {ckpt_path} (it has: {known}); run "
                     f"`dcign evaluate` with this checkpoint or pass --calibration")


def manipulate(checkpoint_path: str | Path, image_path: str | Path, factor: str,
               values: list[float], out: str | Path,
               calibration_path: str | Path | None = None) -> Path:
    """Write a PNG: the input (converted), then the re-rendering at each value (degrees)."""
    checkpoint_path = Path(checkpoint_path)
    model, ckpt = checkpoint.load_model(checkpoint_path)
    cfg = model.cfg
    factors = find_calibration(checkpoint_path, ckpt,
                               Path(calibration_path) if calibration_path else None)
    if factor not in factors:
        raise ValueError(f"unknown factor {factor!r} for this checkpoint "
                         f"(it disentangles: {', '.join(factors)})")
    fl = FactorLatent(**factors[factor])
    outside = [] if fl.circular else [v for v in values if not fl.lo <= v <= fl.hi]
    if outside:
        log.warning("values %s lie outside the trained %s range [%g, %g]: expect extrapolation",
                    outside, factor, fl.lo, fl.hi)
    image = load_image(image_path, cfg.image_size, cfg.channels)
    import torch

    device = torch.device("cpu")
    code = encode(model, image[None], device)[0]
    sweep = np.repeat(code[None], len(values), axis=0)
    sweep[:, fl.latent] = fl.latent_value(np.array(values))
    frames = (decode(model, sweep, device) * 255).round().astype(np.uint8)  # (V, C, H, W)
    return _sheet(image, frames, factor, values, Path(out))


def _sheet(image: np.ndarray, frames: np.ndarray, factor: str, values: list[float],
           out: Path) -> Path:
    s, pad, top = image.shape[-1], 4, 14
    tiles = [image, *frames]
    sheet = Image.new("RGB", (len(tiles) * (s + pad), s + top), "white")
    draw = ImageDraw.Draw(sheet)
    for i, t in enumerate(tiles):
        arr = t[0] if t.shape[0] == 1 else t.transpose(1, 2, 0)
        sheet.paste(Image.fromarray(arr).convert("RGB"), (i * (s + pad), top))
        label = "input" if i == 0 else f"{factor} {values[i - 1]:g}°"
        draw.text((i * (s + pad) + 2, 1), label, fill="black")
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        sheet.save(tmp, format="PNG")
    return out
