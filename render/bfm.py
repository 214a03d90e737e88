"""Faces from a user-provided Basel Face Model 2017 (.h5, the statismo/scalismo layout).

Datasets read (N vertices, M triangles, K components):
  shape/model/mean         float (3N,)   x1, y1, z1, x2, ... (millimetres in BFM 2017)
  shape/model/pcaBasis     float (3N, K) orthonormal columns
  shape/model/pcaVariance  float (K,)    variance of each component
  color/model/{mean, pcaBasis, pcaVariance}  the same for per-vertex RGB in [0, 1]
  shape/representer/points float (3, N)  the reference mesh (only its size is checked)
  shape/representer/cells  int (3, M)    0-based triangles ((M, 3) is accepted too)
An instance is mean + pcaBasis @ (sqrt(pcaVariance) * coefficients). Expressions stay neutral,
so the expression model is not read.

Frame (assumed, following the BFM 2017 / scalismo-faces convention): right-handed, y up, the
face looking down +z towards the viewer, x to the viewer's right, which is the face's own left:
the object space of render.mesh, so only a translation and a uniform scale are applied. The cell
winding is made counter-clockwise seen from outside (checked from the geometry). Colours are used
as they are, as linear albedo.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from render.mesh import TriMesh
from render.sources import GenerativeSource

_EXPECTED = "expected a Basel Face Model 2017 .h5"
# Coefficients are drawn from N(0, 1) truncated here (in standard deviations).
MAX_SIGMA = 3.0
# The frame leaves room for every vertex to move this many of its own standard deviations
# outwards from the mean before an identity would touch the unit sphere.
_FRAME_SIGMAS = 3.0


@dataclass(frozen=True)
class BfmIdentity:
    """shape, color: float64 (K,) PCA coefficients in standard deviations (|c| <= MAX_SIGMA)."""

    shape: np.ndarray
    color: np.ndarray


class BaselFaces(GenerativeSource):
    """Identities sampled from the shape and colour PCA models of a Basel Face Model 2017 file.

    path: the .h5 file. components: how many leading components of shape and of colour are
    sampled (the rest stay at the mean); BFM 2017 has 199.
    """

    def __init__(
        self, seed: int, dataset: str = "faces", *, path: str | Path, components: int = 50
    ) -> None:
        super().__init__(seed, dataset)
        if (isinstance(components, bool) or not isinstance(components, int | np.integer)
                or components < 1):
            raise ValueError(f"BaselFaces.components must be a positive integer, got {components}")
        self.path = Path(path)
        self.components = int(components)
        shape_mean, shape_basis, color_mean, color_basis, faces = _load(self.path, components)
        n = len(shape_mean) // 3

        mean = shape_mean.reshape(n, 3)
        faces = _oriented(mean, faces)
        # Fixed frame from the model statistics, never from an identity: centre of the mean's
        # bounding box; scale so the mean plus _FRAME_SIGMAS per-vertex standard deviations fits.
        self.centre = (mean.min(0) + mean.max(0)) / 2
        vertex_std = np.sqrt((shape_basis.reshape(n, 3, -1) ** 2).sum(axis=(1, 2)))  # (N,)
        reach = np.linalg.norm(mean - self.centre, axis=1) + _FRAME_SIGMAS * vertex_std
        self.scale = float(1.0 / reach.max())  # object units per file unit (mm)

        self._mean = ((mean - self.centre) * self.scale).reshape(-1).astype(np.float32)
        self._shape_basis = (shape_basis * self.scale).astype(np.float32)  # (3N, K)
        self._color_mean = color_mean.astype(np.float32)
        self._color_basis = color_basis.astype(np.float32)
        self._faces = faces

    @property
    def num_vertices(self) -> int:
        return len(self._mean) // 3

    @property
    def num_faces(self) -> int:
        return len(self._faces)

    def sample_identity(self, rng: np.random.Generator) -> BfmIdentity:
        """Shape and colour coefficients ~ N(0, 1), truncated at MAX_SIGMA, all from `rng`.
        In the rare case where a shape would leave the unit sphere, its coefficients are shrunk
        towards the mean (a deterministic function of the draws) until it fits."""
        k = self.components
        z = np.clip(rng.standard_normal(2 * k), -MAX_SIGMA, MAX_SIGMA)
        shape, color = z[:k], z[k:]
        radius = self._radius(shape)
        if radius > 1.0:
            # |mean + t*d| is convex in t: bisect the largest t in [0, 1] that stays inside.
            lo, hi = 0.0, 1.0
            for _ in range(30):
                mid = (lo + hi) / 2
                lo, hi = (mid, hi) if self._radius(mid * shape) <= 1.0 else (lo, mid)
            shape = lo * shape
        return BfmIdentity(shape=shape, color=color)

    def _radius(self, shape: np.ndarray) -> float:
        v = self._mean + self._shape_basis @ shape.astype(np.float32)
        return float(np.sqrt((v.reshape(-1, 3) ** 2).sum(1).max()))

    def build(self, identity_params: BfmIdentity) -> TriMesh:
        """float32 vertices in object space, int32 faces, float32 colours clipped to [0, 1]."""
        p = identity_params
        if len(p.shape) != self.components or len(p.color) != self.components:
            raise ValueError(
                f"BaselFaces.build: expected {self.components} shape and colour coefficients, "
                f"got {len(p.shape)} and {len(p.color)}"
            )
        v = (self._mean + self._shape_basis @ np.asarray(p.shape, np.float32)).reshape(-1, 3)
        radius = float(np.sqrt((v * v).sum(1).max()))
        if radius > 1.0:
            raise ValueError(
                f"{self.path}: identity leaves the unit sphere (radius {radius:.3f}); its shape "
                f"coefficients are too large for the fixed frame (sample_identity keeps them in)"
            )
        c = self._color_mean + self._color_basis @ np.asarray(p.color, np.float32)
        colors = np.clip(c.reshape(-1, 3), 0.0, 1.0)
        return TriMesh(v, self._faces, colors)


def _load(
    path: Path, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(shape mean (3N,), shape basis scaled by the std (3N, k), colour mean, colour basis,
    faces int32 (M, 3)), float64, validated; errors name the file and the dataset."""
    import h5py  # a project dependency; imported here so `render` imports stay light

    if not path.is_file():
        raise FileNotFoundError(f"{path}: Basel Face Model file not found ({_EXPECTED})")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path}: not a readable HDF5 file ({_EXPECTED}): {e}") from None
    with f:

        def dataset(name: str) -> h5py.Dataset:
            obj = f.get(name)
            if not isinstance(obj, h5py.Dataset):
                raise ValueError(f"{path}: missing dataset '{name}' ({_EXPECTED})")
            return obj

        out = []
        n3 = None
        for model in ("shape", "color"):
            mean = dataset(f"{model}/model/mean")
            basis = dataset(f"{model}/model/pcaBasis")
            var = dataset(f"{model}/model/pcaVariance")
            if mean.ndim != 1 or mean.shape[0] % 3 or mean.shape[0] == 0:
                raise ValueError(
                    f"{path}: dataset '{model}/model/mean' has shape {mean.shape}, expected a "
                    f"flat (3N,) vector ({_EXPECTED})"
                )
            n3 = mean.shape[0] if n3 is None else n3
            if mean.shape[0] != n3:
                raise ValueError(
                    f"{path}: dataset '{model}/model/mean' has {mean.shape[0]} values but "
                    f"'shape/model/mean' has {n3} ({_EXPECTED})"
                )
            if basis.ndim != 2 or basis.shape[0] != n3:
                raise ValueError(
                    f"{path}: dataset '{model}/model/pcaBasis' has shape {basis.shape}, expected "
                    f"({n3}, K) ({_EXPECTED})"
                )
            if var.ndim != 1 or var.shape[0] != basis.shape[1]:
                raise ValueError(
                    f"{path}: dataset '{model}/model/pcaVariance' has shape {var.shape}, expected "
                    f"({basis.shape[1]},) to match '{model}/model/pcaBasis' ({_EXPECTED})"
                )
            if k > basis.shape[1]:
                raise ValueError(
                    f"{path}: components={k} but dataset '{model}/model/pcaBasis' has only "
                    f"{basis.shape[1]} components"
                )
            m = np.asarray(mean[()], float)
            v = np.asarray(var[:k], float)
            b = np.asarray(basis[:, :k], float) * np.sqrt(np.maximum(v, 0.0))
            if not (np.isfinite(m).all() and np.isfinite(b).all()) or (v < 0).any():
                raise ValueError(
                    f"{path}: '{model}/model' holds non-finite values or negative variances"
                )
            out += [m, b]

        points = dataset("shape/representer/points")
        if sorted(points.shape) != sorted((3, n3 // 3)) or points.ndim != 2:
            raise ValueError(
                f"{path}: dataset 'shape/representer/points' has shape {points.shape}, expected "
                f"(3, {n3 // 3}) to match 'shape/model/mean' ({_EXPECTED})"
            )
        cells = np.asarray(dataset("shape/representer/cells")[()])
        if cells.ndim != 2 or 3 not in cells.shape or not np.issubdtype(cells.dtype, np.integer):
            raise ValueError(
                f"{path}: dataset 'shape/representer/cells' has shape {cells.shape} and dtype "
                f"{cells.dtype}, expected integer (3, M) triangles ({_EXPECTED})"
            )
        faces = cells.T if cells.shape[0] == 3 and cells.shape[1] != 3 else cells
        n = n3 // 3
        if len(faces) == 0 or faces.min() < 0 or faces.max() >= n:
            raise ValueError(
                f"{path}: dataset 'shape/representer/cells' indexes outside the {n} vertices of "
                f"'shape/model/mean' (expected 0-based indices, {_EXPECTED})"
            )
    return out[0], out[1], out[2], out[3], np.ascontiguousarray(faces, dtype=np.int32)


def _oriented(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """`faces` wound counter-clockwise seen from outside. Outward normals point away from the
    bounding-box centre on a closed head and on an open face mask alike, so the area-weighted
    sum of normal . (triangle centre - box centre) must be positive; else flip every triangle."""
    v = vertices[faces]
    centre = (vertices.min(0) + vertices.max(0)) / 2
    normals = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    outward = float((normals * (v.mean(1) - centre)).sum())
    return faces if outward >= 0 else np.ascontiguousarray(faces[:, [0, 2, 1]])
