"""The triangle mesh every source hands to every backend.

Object space (one convention for the whole project; render.views places the camera):
  +y is up, +z points out of the object's front (towards the camera at azimuth 0),
  +x is the object's left. The mesh is centred at the origin and scaled so that it fits
  inside the unit sphere (max vertex norm <= 1), so one camera distance frames every identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TriMesh:
    """vertices: float32 (V, 3); faces: int32 (M, 3), counter-clockwise seen from outside;
    colors: float32 (V, 3) linear albedo in [0, 1] per vertex."""

    vertices: np.ndarray
    faces: np.ndarray
    colors: np.ndarray

    def __post_init__(self) -> None:
        v, f, c = self.vertices, self.faces, self.colors
        if v.ndim != 2 or v.shape[1] != 3 or v.dtype != np.float32:
            raise ValueError(f"TriMesh.vertices must be float32 (V, 3), got {v.dtype} {v.shape}")
        if f.ndim != 2 or f.shape[1] != 3 or f.dtype != np.int32:
            raise ValueError(f"TriMesh.faces must be int32 (M, 3), got {f.dtype} {f.shape}")
        if c.shape != v.shape or c.dtype != np.float32:
            raise ValueError(f"TriMesh.colors must be float32 {v.shape}, got {c.dtype} {c.shape}")
        if len(f) and (f.min() < 0 or f.max() >= len(v)):
            raise ValueError("TriMesh.faces index outside the vertex array")

    @property
    def nbytes(self) -> int:
        return self.vertices.nbytes + self.faces.nbytes + self.colors.nbytes

    def normalized(self) -> TriMesh:
        """Centre on the bounding-box centre and scale to fit the unit sphere."""
        lo, hi = self.vertices.min(0), self.vertices.max(0)
        v = self.vertices - (lo + hi) / 2
        v = v / np.linalg.norm(v, axis=1).max()
        return TriMesh(v.astype(np.float32), self.faces, self.colors)
