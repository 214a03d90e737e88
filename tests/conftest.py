"""Shared test fixtures: RNG isolation, GPU skips, tiny params files."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _isolate_rng():
    """Restore global RNG state after each test, so no test depends on another's draws."""
    py, npy = random.getstate(), np.random.get_state()
    try:
        import torch

        th = torch.get_rng_state()
    except ImportError:  # pragma: no cover
        th = None
    yield
    random.setstate(py)
    np.random.set_state(npy)
    if th is not None:
        torch.set_rng_state(th)


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        has_cuda = False
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "needs_cuda" in item.keywords and not has_cuda:
            item.add_marker(skip)


def tiny_params_dict() -> dict:
    """The repository's params.yaml shrunk to seconds of work (same keys, smaller numbers)."""
    data = yaml.safe_load((REPO / "params.yaml").read_text())
    r = data["render"]
    r.update(image_size=32, batch_size=4, batches_per_shard=3)
    r["faces"]["identities"] = {"train": 6, "test": 4}
    r["faces"]["batches"] = {
        "train": {"azimuth": 2, "elevation": 1, "light_azimuth": 1, "intrinsic": 3},
        "test": {"azimuth": 1, "elevation": 1, "light_azimuth": 1, "intrinsic": 1},
    }
    r["chairs"]["identities"] = {"train": 6, "test": 4}
    r["chairs"]["batches"] = {"train": {"azimuth": 2, "intrinsic": 2},
                              "test": {"azimuth": 1, "intrinsic": 1}}
    return data


@pytest.fixture
def tiny_params_file(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(tiny_params_dict(), sort_keys=False))
    return path
