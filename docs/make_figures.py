"""Contact sheets of the generated identities: docs/faces.png and docs/chairs.png.

    python docs/make_figures.py [--size 128]

Rendered by the project's own sources and default backend, with params.yaml's camera and light,
so the sheets show exactly what the render stage produces (here in colour, larger).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.params import load_params  # noqa: E402
from core.seeds import identity_rng  # noqa: E402
from render.datasets import make_source  # noqa: E402
from render.stage import ShardRenderer  # noqa: E402
from render.views import View  # noqa: E402


def sheet(tiles: list[np.ndarray], labels: list[str], cols: int) -> Image.Image:
    """tiles: uint8 (C, S, S); one caption under each."""
    s, cap = tiles[0].shape[-1], 12
    rows = -(-len(tiles) // cols)
    out = Image.new("RGB", (cols * s, rows * (s + cap)), "black")
    draw = ImageDraw.Draw(out)
    for i, (t, label) in enumerate(zip(tiles, labels)):
        x, y = (i % cols) * s, (i // cols) * (s + cap)
        arr = t[0] if t.shape[0] == 1 else t.transpose(1, 2, 0)
        out.paste(Image.fromarray(arr).convert("RGB"), (x, y))
        draw.text((x + 3, y + s), label, fill="white")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=128)
    a = ap.parse_args()
    params = load_params(REPO / "params.yaml",
                         (f"render.image_size={a.size}", "render.channels=3"))
    # Faces: 24 train identities facing the camera, then 8 of them at other poses and lights.
    r = ShardRenderer(params, "faces")
    views = [View(0, 0, 0)] * 24 + [View(az, el, la) for az, el, la in
                                    [(-60, 0, -45), (-30, 15, 0), (30, -15, 30), (60, 0, 60),
                                     (90, 10, 90), (-90, -10, -60), (45, 25, -30), (-45, -25, 45)]]
    ids = list(range(24)) + list(range(8))
    tiles = [r.backend.render(r.mesh("train", i), v) for i, v in zip(ids, views)]
    labels = [f"id {i}" if v == View(0, 0, 0) else f"id {i} az {v.azimuth:.0f}"
              for i, v in zip(ids, views)]
    sheet(tiles, labels, cols=8).save(REPO / "docs" / "faces.png")
    r.close()
    # Chairs: 48 train identities at a three-quarter view.
    r = ShardRenderer(params, "chairs")
    src = make_source(params, "chairs")
    tiles, labels = [], []
    for i in range(48):
        p = src.sample_identity(identity_rng(params.seed, "chairs", "train", i))
        tiles.append(r.backend.render(r.mesh("train", i), View(35, 20, 30)))
        labels.append(p.base.replace("four_leg_", "4-leg "))
    sheet(tiles, labels, cols=8).save(REPO / "docs" / "chairs.png")
    r.close()


if __name__ == "__main__":
    main()
