"""One conversion from an image file to model input, for imported training data and users' images.

`dcign import-chairs` (render.aubry) and `dcign manipulate` both call `load_image`, so a picture
given to a trained model is converted exactly as the imported training images were:

1. Decode the first frame; apply the EXIF orientation tag (a phone photo stored sideways is
   turned upright).
2. To RGB in 0..255 (float32): 1-bit, grey, palette, RGB, CMYK and YCbCr by Pillow; 16-bit grey
   scaled by 255/65535 (Pillow's own conversion clips it at 255); transparency composited over
   white. 32-bit float images (no agreed range) are refused.
3. A non-square image is padded with white to a square, so resizing keeps its aspect ratio.
4. background "black": every pixel whose R, G and B are all >= white_threshold becomes 0 (our
   renders' black background); "keep" leaves it.
5. Rec. 709 luma of the encoded values (LUMA, as render.shading's grey renders) for one
   channel, or RGB; resized with Lanczos in float32; rounded and clipped to uint8 (C, H, W).

Anything else (not an image, an unknown mode, more than MAX_PIXELS after padding) is refused
with a ValueError naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

LUMA = np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)  # Rec. 709 luminance weights

# Padded square images above this many pixels are refused: the float32 working copy of one at
# the limit takes ~0.5 GB, and Pillow warns of decompression bombs from 89 M on.
MAX_PIXELS = 40_000_000
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def to_rgb(im, path: Path) -> np.ndarray:
    """A decoded PIL image as float32 (H, W, 3) in 0..255; see the module docstring, step 2."""
    from PIL import Image

    if im.mode in _SIXTEEN_BIT or im.mode == "I":
        grey = np.asarray(im, dtype=np.float64)
        if grey.size and (grey.min() < 0 or grey.max() > 65535):
            raise ValueError(f"{path}: 32-bit integer pixels outside 0..65535; save it with 8 "
                             f"or 16 bits per channel")
        return np.repeat((grey * (255.0 / 65535.0)).astype(np.float32)[..., None], 3, axis=2)
    if im.mode == "F":
        raise ValueError(f"{path}: floating-point pixels have no agreed range; save it with 8 "
                         f"or 16 bits per channel")
    try:
        if im.mode in _ALPHA_MODES or "transparency" in im.info:
            rgba = im.convert("RGBA")
            im = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
        rgb = im.convert("RGB")
    except ValueError as e:
        raise ValueError(f"{path}: cannot convert its colour mode {im.mode!r} to RGB ({e})") \
            from None
    return np.asarray(rgb, dtype=np.float32)


def to_array(rgb: np.ndarray, *, image_size: int, channels: int, background: str,
             white_threshold: int) -> np.ndarray:
    """float32 (H, W, 3) in 0..255 -> uint8 (channels, image_size, image_size); steps 3-5."""
    from PIL import Image

    if background not in ("keep", "black"):
        raise ValueError(f"background must be 'keep' or 'black', got {background!r}")
    a = rgb
    h, w = a.shape[:2]
    if h != w:
        s = max(h, w)
        square = np.full((s, s, 3), 255.0, dtype=np.float32)
        square[(s - h) // 2:(s - h) // 2 + h, (s - w) // 2:(s - w) // 2 + w] = a
        a = square
    elif background == "black":
        a = a.copy()  # the caller's array stays as it was
    if background == "black":
        a[a.min(axis=2) >= white_threshold] = 0.0
    planes = [a @ LUMA] if channels == 1 else [a[..., c] for c in range(3)]
    size = (image_size, image_size)
    out = np.stack([
        np.asarray(Image.fromarray(np.ascontiguousarray(p, dtype=np.float32), "F").resize(
            size, Image.Resampling.LANCZOS))
        for p in planes
    ])
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def load_image(path: str | Path, *, image_size: int, channels: int, background: str = "black",
               white_threshold: int = 250) -> np.ndarray:
    """An image file as uint8 (channels, image_size, image_size); see the module docstring."""
    from PIL import Image, ImageOps

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    try:
        with Image.open(path) as im:
            w, h = im.size
            if max(w, h) ** 2 > MAX_PIXELS:
                raise ValueError(f"{path}: {w}x{h} pixels is too large (padded to a square, "
                                 f"over {MAX_PIXELS:,} pixels); scale it down first")
            im.seek(0)  # the first frame of an animation or a multi-page file
            im.load()
            im = ImageOps.exif_transpose(im)
            rgb = to_rgb(im, path)
    except ValueError:
        raise
    except Exception as e:  # Pillow raises OSError, SyntaxError, zlib.error, DecompressionBomb..
        raise ValueError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None
    return to_array(rgb, image_size=image_size, channels=channels, background=background,
                    white_threshold=white_threshold)
