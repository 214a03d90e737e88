"""Chairs (or any objects) from a folder of real meshes: OBJ/PLY/GLB/GLTF/STL files, turned to
the project's axes (y up, front +z), split into train/test by a hash of (seed, relative path), so
adding a file never moves another between splits."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from core.cache import LRU
from render.mesh import TriMesh
from render.sources import IdentitySource

MESH_SUFFIXES = (".obj", ".ply", ".glb", ".gltf", ".stl")
_AXES = {"x": 0, "y": 1, "z": 2}


def _axis(spec: str, key: str) -> np.ndarray:
    s = spec.strip().lower()
    sign = -1.0 if s.startswith("-") else 1.0
    name = s.lstrip("+-")
    if name not in _AXES or len(s) > 2:
        raise ValueError(f"{key} must be one of x, y, z with an optional sign (e.g. '-z'), "
                         f"got {spec!r}")
    v = np.zeros(3)
    v[_AXES[name]] = sign
    return v


def axes_rotation(up_axis: str, front_axis: str) -> np.ndarray:
    """float64 (3, 3) rotation taking a file's coordinates to object space (+y up, +z front):
    rows are the file's left, up and front directions."""
    up, front = _axis(up_axis, "up_axis"), _axis(front_axis, "front_axis")
    if abs(up @ front) > 0.5:
        raise ValueError(f"up_axis {up_axis!r} and front_axis {front_axis!r} must be "
                         "perpendicular")
    return np.stack([np.cross(up, front), up, front])


def split_of(seed: int, rel: str, test_fraction: float) -> str:
    # sha256 of (seed, path) only: a file's split ignores which other files exist.
    h = hashlib.sha256(f"{int(seed)}:{rel}".encode()).digest()
    return "test" if int.from_bytes(h[:8], "big") / 2.0**64 < test_fraction else "train"


def _geometry_colours(geom) -> np.ndarray:
    """float32 (V, 3) albedo of a trimesh.Trimesh: vertex colours, else a plain material
    colour, else a texture sampled at the vertices' UVs, else neutral grey."""
    grey = np.full((len(geom.vertices), 3), 0.6, dtype=np.float32)
    vis = geom.visual
    try:
        if vis.kind == "vertex":
            c = np.asarray(vis.vertex_colors)[:, :3]
        elif vis.kind == "face":  # spread face colours to their vertices
            fc = np.asarray(vis.face_colors)[:, :3].astype(np.float64)
            acc = np.zeros((len(geom.vertices), 3))
            cnt = np.zeros(len(geom.vertices))
            for corner in range(3):
                np.add.at(acc, geom.faces[:, corner], fc)
                np.add.at(cnt, geom.faces[:, corner], 1)
            c = acc / np.maximum(cnt, 1)[:, None]
        elif vis.kind == "texture":
            mat = vis.material
            image = getattr(mat, "image", None)
            if image is None:
                image = getattr(mat, "baseColorTexture", None)
            if image is not None and vis.uv is not None:
                c = np.asarray(vis.to_color().vertex_colors)[:, :3]
            else:
                base = getattr(mat, "baseColorFactor", None)
                if base is None:
                    base = getattr(mat, "diffuse", None)
                if base is None:
                    return grey
                c = np.broadcast_to(np.asarray(base)[:3], (len(geom.vertices), 3))
        else:
            return grey
    except Exception:  # exotic visuals: colour is a nicety, the shape is what matters
        return grey
    c = np.asarray(c, dtype=np.float32)
    if c.max() > 1.0:
        c = c / 255.0
    return np.clip(c, 0.0, 1.0).astype(np.float32)


def load_mesh_file(path: Path, rotation: np.ndarray) -> TriMesh:
    """Load one mesh file (scenes flattened with their node transforms), rotate it by
    `rotation` (3, 3) into object space and normalise it to the unit sphere."""
    import trimesh

    try:
        scene = trimesh.load(str(path), force="scene")
    except Exception as e:
        raise ValueError(f"cannot read mesh file {path}: {e}") from e
    verts, faces, cols, base = [], [], [], 0
    for geom in scene.dump(concatenate=False):
        if not isinstance(geom, trimesh.Trimesh) or len(geom.faces) == 0:
            continue  # paths, point clouds
        verts.append(np.asarray(geom.vertices, dtype=np.float64))
        faces.append(np.asarray(geom.faces, dtype=np.int64) + base)
        cols.append(_geometry_colours(geom))
        base += len(geom.vertices)
    if not verts:
        raise ValueError(f"mesh file {path} holds no triangles (expected a triangle mesh)")
    v = np.vstack(verts) @ rotation.T
    if not np.isfinite(v).all():
        raise ValueError(f"mesh file {path} has non-finite vertex coordinates")
    if np.ptp(v, axis=0).max() <= 0:
        raise ValueError(f"mesh file {path} is degenerate: all vertices coincide")
    return TriMesh(v.astype(np.float32), np.concatenate(faces).astype(np.int32),
                   np.vstack(cols).astype(np.float32)).normalized()


class MeshFolderChairs(IdentitySource):
    """Identities from a folder of mesh files (OBJ, PLY, GLB, GLTF, STL; searched recursively).

    A file is in the test split when sha256(f"{seed}:{relative posix path}") maps below
    `test_fraction`, so the split of a file never depends on the folder's other files.
    Identity i of a split is the i-th file of that split in sorted path order. Meshes are
    loaded on demand and the last `cache_size` are kept."""

    def __init__(
        self,
        folder: str | Path,
        *,
        seed: int = 0,
        test_fraction: float = 0.1,
        up_axis: str = "y",
        front_axis: str = "+z",
        cache_size: int = 32,
    ) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise FileNotFoundError(f"chair mesh folder {self.folder} does not exist "
                                    "(expected a folder of .obj/.ply/.glb/.gltf/.stl files)")
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must lie strictly between 0 and 1, got "
                             f"{test_fraction}")
        self.rotation = axes_rotation(up_axis, front_axis)
        files = sorted(
            (f for f in self.folder.rglob("*") if f.is_file()
             and f.suffix.lower() in MESH_SUFFIXES),
            key=lambda f: f.relative_to(self.folder).as_posix(),
        )
        if not files:
            raise ValueError(f"chair mesh folder {self.folder} holds no mesh files "
                             f"(expected files ending in {', '.join(MESH_SUFFIXES)})")
        self.files: dict[str, list[Path]] = {"train": [], "test": []}
        for f in files:
            rel = f.relative_to(self.folder).as_posix()
            self.files[split_of(seed, rel, test_fraction)].append(f)
        for split, chosen in self.files.items():
            if not chosen:
                raise ValueError(
                    f"chair mesh folder {self.folder}: none of its {len(files)} mesh files "
                    f"falls in the {split!r} split with seed={seed}, test_fraction="
                    f"{test_fraction}; add files or change test_fraction"
                )
        self.cache_size = cache_size
        self._cache: LRU[Path, TriMesh] = LRU(cache_size)

    def num_identities(self, split: str) -> int:
        return len(self._split(split))

    def path(self, split: str, identity: int) -> Path:
        """The file behind identity `identity` of `split`."""
        files = self._split(split)
        if not 0 <= identity < len(files):
            raise IndexError(f"identity {identity} out of range: split {split!r} of "
                             f"{self.folder} holds {len(files)} meshes")
        return files[identity]

    def mesh(self, split: str, identity: int) -> TriMesh:
        f = self.path(split, identity)
        return self._cache.get(f, lambda: load_mesh_file(f, self.rotation))

    def _split(self, split: str) -> list[Path]:
        if split not in self.files:
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        return self.files[split]
