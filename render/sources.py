"""Identity sources: where the meshes of a dataset come from.

A source turns (split, identity id) into a TriMesh, deterministically. Generative sources
(morphable heads, parametric chairs) draw the identity's parameters from a seeded stream first and
then build the mesh from those parameters alone (sample first, then build), so a mesh can be
rebuilt from the stored (seed, split, id) without replaying anything else.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from core.seeds import identity_rng
from render.mesh import TriMesh


class IdentitySource(ABC):
    """Maps (split, identity) to a mesh in the object-space convention of render.mesh."""

    @abstractmethod
    def mesh(self, split: str, identity: int) -> TriMesh:
        """The mesh of identity `identity` (0-based) of `split` ("train" or "test")."""

    def num_identities(self, split: str) -> int | None:
        """How many identities `split` holds, or None when the source is unlimited."""
        return None


class GenerativeSource(IdentitySource):
    """A source that samples identity parameters from a seeded stream, then builds the mesh."""

    def __init__(self, seed: int, dataset: str) -> None:
        self.seed = int(seed)
        self.dataset = dataset

    @abstractmethod
    def sample_identity(self, rng: np.random.Generator) -> Any:
        """Draw one identity's parameters (all randomness happens here)."""

    @abstractmethod
    def build(self, identity_params: Any) -> TriMesh:
        """Build the mesh from identity parameters (deterministic, no randomness)."""

    def mesh(self, split: str, identity: int) -> TriMesh:
        rng = identity_rng(self.seed, self.dataset, split, identity)
        return self.build(self.sample_identity(rng))
