"""Shared by the training tests: tiny params and tiny faces shards, rendered once a session."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from core.config import build
from core.params import Params
from render.stage import make_shards
from tests.conftest import tiny_params_dict

# 38 px is the smallest side the decoder makes without cropping (16*8 - 90); the encoder needs 36.
TINY_TRAIN = dict(latent_dim=8, enc_channels=[4, 4, 4], dec_channels=[4, 4, 4], lr=2e-3,
                  log_every=5, eval_every=10, eval_batches=2, checkpoint_every=1000,
                  loader_workers=0, threads=1, device="cpu")


def make_params(data: dict[str, Any], **train: Any) -> Params:
    d = copy.deepcopy(data)
    d["train"].update(TINY_TRAIN)
    d["train"].update(train)
    return build(Params, d)


def tiny_faces_dict() -> dict[str, Any]:
    d = tiny_params_dict()
    d["render"]["image_size"] = 38  # tiny_params' 32 px is below the encoder's minimum
    return d


@pytest.fixture(scope="session")
def faces(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """Tiny faces shards (7 train minibatches of 4 images in 3 shards), rendered once."""
    data = tiny_faces_dict()
    out = tmp_path_factory.mktemp("faces")
    make_shards(build(Params, data), "faces", out, progress=False)
    return data, out
