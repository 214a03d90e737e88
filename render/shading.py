"""Per-vertex Lambertian shading shared by the rasterising backend.

radiance = albedo * (ambient + diffuse * max(0, n . l)), clipped to [0, 1], then encoded with a
1/2.2 display gamma. Shading per vertex and interpolating (Gouraud) is exact Lambertian at the
vertices and indistinguishable from per-pixel shading at the mesh densities we render.
"""

from __future__ import annotations

import numpy as np

from core.images import LUMA
from render.mesh import TriMesh

GAMMA = 2.2


def vertex_normals(mesh: TriMesh) -> np.ndarray:
    """Area-weighted unit vertex normals, float32 (V, 3)."""
    v, f = mesh.vertices.astype(np.float64), mesh.faces
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])  # length = 2 * area
    n = np.zeros_like(v)
    for corner in range(3):
        for axis in range(3):
            n[:, axis] += np.bincount(f[:, corner], weights=fn[:, axis], minlength=len(v))
    norm = np.linalg.norm(n, axis=1, keepdims=True)
    return (n / np.where(norm > 0, norm, 1.0)).astype(np.float32)


def shade(
    colors: np.ndarray,
    normals: np.ndarray,
    light_dir: np.ndarray,
    *,
    diffuse: float,
    ambient: float,
    channels: int,
) -> np.ndarray:
    """Display-encoded vertex colours, float32 (V, 3) in [0, 1]; grey in all three channels
    (Rec. 709 luminance of the encoded colour) when `channels` is 1."""
    lambert = np.maximum(normals @ light_dir.astype(np.float32), 0.0)
    radiance = colors * (ambient + diffuse * lambert)[:, None]
    encoded = np.clip(radiance, 0.0, 1.0) ** (1.0 / GAMMA)
    if channels == 1:
        encoded = np.repeat((encoded @ LUMA)[:, None], 3, axis=1)
    return encoded.astype(np.float32)
