"""The default backend: pyrender (OpenGL) headless, EGL first, OSMesa as the fallback.

Shading is computed per vertex in numpy (render.shading, exact Lambertian) and drawn unlit, so
the GL pipeline only rasterises, interpolates and anti-aliases (pyrender's 4x MSAA).
"""

from __future__ import annotations

import ctypes.util
import math
import os

import numpy as np

from core.cache import LRU
from core.params import RenderConfig
from render.backends import Backend
from render.mesh import TriMesh
from render.shading import shade, vertex_normals
from render.views import View, camera_distance, camera_pose, light_direction_in_object, object_pose

NORMALS_CACHE_BYTES = 256 << 20  # (mesh, normals) pairs, like render.stage's meshes


def choose_gl_platform() -> str:
    """Pick PyOpenGL's platform before OpenGL is imported: the user's choice, else EGL when
    libEGL is present (Mesa llvmpipe works headless), else OSMesa."""
    if "PYOPENGL_PLATFORM" not in os.environ:
        if ctypes.util.find_library("EGL"):
            os.environ["PYOPENGL_PLATFORM"] = "egl"
        elif ctypes.util.find_library("OSMesa"):
            os.environ["PYOPENGL_PLATFORM"] = "osmesa"
        else:
            raise RuntimeError(
                "no headless OpenGL found: install Mesa's EGL (Debian: libegl1 libgl1-mesa-dri) "
                "or OSMesa (Debian: libosmesa6, with PyOpenGL>=3.1.7), or set PYOPENGL_PLATFORM"
            )
    # One rasteriser thread per process: parallelism comes from render workers instead.
    os.environ.setdefault("LP_NUM_THREADS", "1")
    return os.environ["PYOPENGL_PLATFORM"]


class PyrenderBackend(Backend):
    name = "pyrender"

    def __init__(self, cfg: RenderConfig) -> None:
        super().__init__(cfg)
        self.platform = choose_gl_platform()
        import pyrender  # after the platform is chosen

        self._pyrender = pyrender
        self.distance = camera_distance(cfg.camera.fov_deg, cfg.camera.margin)
        self._camera = pyrender.PerspectiveCamera(
            yfov=math.radians(cfg.camera.fov_deg), aspectRatio=1.0,
            # Objects live in the unit sphere: a tight depth range keeps depth precision.
            znear=max(self.distance - 1.5, 0.05), zfar=self.distance + 1.5,
        )
        self._scene = pyrender.Scene(bg_color=[0.0, 0.0, 0.0, 1.0], ambient_light=[0.0] * 3)
        self._camera_node = self._scene.add(self._camera)
        self._mesh_node = None
        # Normals per mesh object (the mesh is held too, so its id cannot be reused meanwhile).
        self._normals: LRU[int, tuple[TriMesh, np.ndarray]] = LRU(
            weigh=lambda e: e[0].nbytes + e[1].nbytes, max_weight=NORMALS_CACHE_BYTES)
        try:
            self._renderer = pyrender.OffscreenRenderer(cfg.image_size, cfg.image_size)
        except Exception as e:  # PyOpenGL raises a zoo of types here
            raise RuntimeError(
                f"could not create a headless OpenGL context with PYOPENGL_PLATFORM="
                f"{self.platform}: {e}. Try PYOPENGL_PLATFORM=osmesa (needs libosmesa6)."
            ) from e
        self._flags = pyrender.RenderFlags.FLAT | pyrender.RenderFlags.SKIP_CULL_FACES

    def version(self) -> str:
        return f"pyrender {self._pyrender.__version__} ({self.platform})"

    def normals(self, mesh: TriMesh) -> np.ndarray:
        """Vertex normals of `mesh`, computed once per mesh object."""
        held, n = self._normals.get(id(mesh), lambda: (mesh, vertex_normals(mesh)))
        assert held is mesh  # the cache holds the mesh, so its id is not reused meanwhile
        return n

    def render(self, mesh: TriMesh, view: View) -> np.ndarray:
        pr = self._pyrender
        light = self.cfg.light
        to_light = light_direction_in_object(view, light.elevation)
        colors = shade(mesh.colors, self.normals(mesh), to_light, diffuse=light.diffuse,
                       ambient=light.ambient, channels=self.cfg.channels)
        rgba = np.concatenate([colors, np.ones((len(colors), 1), np.float32)], axis=1)
        prim = pr.Primitive(positions=mesh.vertices, indices=mesh.faces, color_0=rgba, mode=4)
        if self._mesh_node is not None:
            self._scene.remove_node(self._mesh_node)
        self._mesh_node = self._scene.add(pr.Mesh([prim]), pose=object_pose(view))
        self._scene.set_pose(self._camera_node, camera_pose(view, self.distance))
        color, _ = self._renderer.render(self._scene, flags=self._flags)  # (H, W, 3) uint8
        image = np.ascontiguousarray(color.transpose(2, 0, 1))  # (3, H, W)
        return image[:1].copy() if self.cfg.channels == 1 else image

    def close(self) -> None:
        if getattr(self, "_renderer", None) is not None:
            self._renderer.delete()
            self._renderer = None
