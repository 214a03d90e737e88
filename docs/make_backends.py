"""docs/backends.png: the same faces and chairs, at the same views, from both renderer backends.

    python docs/make_backends.py [--size 128] [--samples 16] [--channels 3] [--out PATH]

Top row: pyrender (OpenGL rasteriser, per-vertex Lambertian). Bottom row: Blender Cycles (path
traced: cast shadows, interreflection, sampling noise). Needs bpy (pip install 'dcign[blender]').
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a file from anywhere

import matplotlib  # noqa: E402

matplotlib.use("Agg")  # headless
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from core.params import RenderConfig, load_params  # noqa: E402
from render.backends import make_backend  # noqa: E402
from render.mesh import TriMesh  # noqa: E402
from render.views import View  # noqa: E402

# (dataset, identity in the test split, view in degrees: azimuth, elevation, light_azimuth)
SHOTS: list[tuple[str, int, View]] = [
    ("faces", 0, View(0.0, 0.0, 0.0)),
    ("faces", 1, View(-35.0, 10.0, 60.0)),
    ("faces", 2, View(50.0, -15.0, -70.0)),
    ("faces", 3, View(80.0, 20.0, 90.0)),
    ("chairs", 0, View(30.0, 25.0, 30.0)),
    ("chairs", 1, View(150.0, 20.0, -40.0)),
    ("chairs", 2, View(250.0, 30.0, 0.0)),
    ("chairs", 3, View(330.0, 20.0, 45.0)),
]


def meshes() -> list[TriMesh]:
    from render.chairs import ParametricChairs
    from render.faces import AnnyHeads

    sources = {"faces": AnnyHeads(seed=0), "chairs": ParametricChairs(seed=0, dataset="chairs")}
    return [sources[ds].mesh("test", i) for ds, i, _ in SHOTS]


def render_rows(cfg: RenderConfig) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(pyrender images, blender images), each a list of uint8 (H, W, C)."""
    rows = []
    for backend in ("pyrender", "blender"):
        with make_backend(replace(cfg, backend=backend)) as b:
            rows.append([b.render(m, view).transpose(1, 2, 0)
                         for m, (_, _, view) in zip(meshes(), SHOTS)])
    return rows[0], rows[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--size", type=int, default=128, help="image size in pixels")
    ap.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel")
    ap.add_argument("--channels", type=int, default=3, choices=[1, 3])
    ap.add_argument("--out", default=str(REPO / "docs" / "backends.png"))
    a = ap.parse_args()
    params = load_params(REPO / "params.yaml", (
        f"render.image_size={a.size}", f"render.channels={a.channels}",
        f"render.blender.samples={a.samples}"))
    cfg = params.render
    gl, bl = render_rows(cfg)
    bc = cfg.blender
    labels = ["pyrender\n(OpenGL)",
              f"Blender Cycles\n{bc.samples} samples,\n{bc.bounces} bounces"
              + (", denoised" if bc.denoise else "")]
    n = len(SHOTS)
    fig, axes = plt.subplots(2, n, figsize=(1.6 * n + 1.2, 3.6), dpi=100,
                             gridspec_kw={"wspace": 0.03, "hspace": 0.03})
    for row, (images, label) in enumerate(zip((gl, bl), labels)):
        for col, (img, (ds, _, v)) in enumerate(zip(images, SHOTS)):
            ax = axes[row, col]
            ax.imshow(img.squeeze(), cmap="gray" if img.shape[2] == 1 else None,
                      vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"{ds}\naz {v.azimuth:g}, el {v.elevation:g}, "
                             f"light {v.light_azimuth:g}", fontsize=7)
        axes[row, 0].set_ylabel(label, fontsize=8)
    fig.suptitle(f"Same meshes and views from both backends ({a.size} px, light: diffuse "
                 f"{cfg.light.diffuse:g}, ambient {cfg.light.ambient:g})", fontsize=9, y=1.04)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(a.out, bbox_inches="tight", facecolor="white")
    print(a.out)


if __name__ == "__main__":
    main()
