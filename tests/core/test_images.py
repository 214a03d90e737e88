"""Any image a user may hold is converted exactly as training images are, or refused in one line:
bit depths, colour modes, palettes, transparency, orientation tags, sizes from 1 px to huge."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.images import LUMA, MAX_PIXELS, load_image, to_array

KW = dict(image_size=16, channels=1, background="keep", white_threshold=250)


def _rgb_picture() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 250, (24, 24, 3), dtype=np.uint8)  # no pure white: "black" no-op


def _expected(rgb: np.ndarray, **kw) -> np.ndarray:
    return to_array(rgb.astype(np.float32), **{**KW, **kw})


def test_rgb_grey_and_palette_give_the_pixels_they_show(tmp_path: Path) -> None:
    rgb = _rgb_picture()
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    np.testing.assert_array_equal(load_image(tmp_path / "rgb.png", **KW), _expected(rgb))
    grey = (rgb.astype(np.float32) @ LUMA).round().astype(np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    np.testing.assert_array_equal(load_image(tmp_path / "grey.png", **KW),
                                  _expected(np.repeat(grey[..., None], 3, axis=2)))
    pal = Image.fromarray(rgb).quantize(16)
    pal.save(tmp_path / "pal.png")
    shown = np.asarray(pal.convert("RGB"))
    np.testing.assert_array_equal(load_image(tmp_path / "pal.png", **KW), _expected(shown))
    on = rgb[..., 0] > 128
    Image.fromarray(on).save(tmp_path / "bw.png")  # 1 bit per pixel: on = white
    np.testing.assert_array_equal(
        load_image(tmp_path / "bw.png", **KW),
        _expected(np.repeat(np.where(on, 255, 0).astype(np.uint8)[..., None], 3, axis=2)))
    cmyk = Image.fromarray(rgb).convert("CMYK")
    cmyk.save(tmp_path / "cmyk.jpg", quality=100)
    with Image.open(tmp_path / "cmyk.jpg") as im:
        want = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(load_image(tmp_path / "cmyk.jpg", **KW), _expected(want))


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path: Path) -> None:
    # Pillow's own conversion of a 16-bit image clips at 255: every pixel here would be white.
    a = np.full((8, 8), 32896, dtype=np.uint16)  # 0x8080: 128/255 of full scale
    a[:4] = 65535
    Image.fromarray(a).save(tmp_path / "g16.png")
    out = load_image(tmp_path / "g16.png", image_size=8, channels=1, background="keep",
                     white_threshold=250)
    assert out[0, :4].min() == 255 and out[0, 4:].max() == 128


def test_transparency_is_composited_over_white_then_the_background_rule(tmp_path: Path) -> None:
    rgba = np.zeros((10, 10, 4), dtype=np.uint8)
    rgba[..., :3] = 60
    rgba[:, :5, 3] = 255  # left half opaque grey, right half fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    keep = load_image(tmp_path / "a.png", image_size=10, channels=1, background="keep",
                      white_threshold=250)
    black = load_image(tmp_path / "a.png", image_size=10, channels=1, background="black",
                       white_threshold=250)
    assert keep[0, :, -1].min() == 255 and black[0, :, -1].max() == 0
    assert abs(int(keep[0, 5, 0]) - 60) <= 1 and abs(int(black[0, 5, 0]) - 60) <= 1


def test_the_exif_orientation_tag_is_applied(tmp_path: Path) -> None:
    rgb = _rgb_picture()[:, :12]  # 24 x 12, portrait
    upright = Image.fromarray(rgb)
    upright.save(tmp_path / "upright.png")
    # Stored turned 90 degrees with Orientation = 6 ("rotate 90 CW to display"), as phones do.
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(tmp_path / "phone.png", exif=exif)
    np.testing.assert_array_equal(load_image(tmp_path / "phone.png", **KW),
                                  load_image(tmp_path / "upright.png", **KW))


def test_the_first_frame_of_an_animation(tmp_path: Path) -> None:
    frames = [Image.fromarray(np.full((8, 8), v, dtype=np.uint8)) for v in (40, 200)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    out = load_image(tmp_path / "anim.gif", image_size=8, channels=1, background="keep",
                     white_threshold=250)
    assert abs(int(out.mean()) - 40) <= 1


@pytest.mark.parametrize("size", [(1, 1), (1, 300), (300, 2), (7, 5)])
def test_tiny_and_thin_images_are_converted(tmp_path: Path, size: tuple[int, int]) -> None:
    Image.fromarray(np.full(size[::-1], 90, dtype=np.uint8)).save(tmp_path / "t.png")
    out = load_image(tmp_path / "t.png", image_size=16, channels=3, background="keep",
                     white_threshold=250)
    assert out.shape == (3, 16, 16) and out.dtype == np.uint8


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda p: p.write_bytes(b"not an image"), "not a readable image"),
        (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40), "not a readable image"),
        (lambda p: Image.fromarray(np.zeros((4, 4), np.float32)).save(p.with_suffix(".tif"))
         or p.with_suffix(".tif").rename(p), "floating-point pixels"),
        (lambda p: Image.new("1", (7000, 7000)).save(p, format="PNG"), "too large"),
    ],
)
def test_unusable_images_are_refused_in_one_line(tmp_path: Path, make, words) -> None:
    path = tmp_path / "bad.img"
    make(path)
    with pytest.raises(ValueError, match=words) as info:
        load_image(path, **KW)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert MAX_PIXELS < 7000**2


def test_a_truncated_file_is_refused(tmp_path: Path) -> None:
    Image.fromarray(_rgb_picture()).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.png: not a readable image"):
        load_image(tmp_path / "cut.png", **KW)
