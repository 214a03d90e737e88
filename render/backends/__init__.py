"""Renderer backends behind one small protocol.

Every backend renders a TriMesh under a View (render.views) with the same camera intrinsics and
light semantics, and returns uint8 (C, H, W) on a black background. Heavy backends are imported
lazily, so a missing optional package is an error only when that backend is chosen.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType

import numpy as np

from core.params import RenderConfig
from render.mesh import TriMesh
from render.views import View


class Backend(ABC):
    """Renders meshes. Subclasses keep their GL/Blender state between calls."""

    name: str = "backend"

    def __init__(self, cfg: RenderConfig) -> None:
        self.cfg = cfg

    @abstractmethod
    def render(self, mesh: TriMesh, view: View) -> np.ndarray:
        """uint8 (C, H, W): C = cfg.channels, H = W = cfg.image_size, background 0."""

    def version(self) -> str:
        """The renderer and its version, recorded in every shard."""
        return self.name

    def close(self) -> None:
        """Release contexts and memory; the backend is unusable afterwards."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def make_backend(cfg: RenderConfig) -> Backend:
    """The backend named by render.backend."""
    if cfg.backend == "pyrender":
        from render.backends.gl import PyrenderBackend

        return PyrenderBackend(cfg)
    if cfg.backend == "blender":
        from render.backends.blender import BlenderBackend

        return BlenderBackend(cfg)
    raise ValueError(f"params key 'render.backend': unknown backend {cfg.backend!r}")
