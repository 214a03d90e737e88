"""Checkpoints: rebuilt from the file alone, refusing the wrong architecture or a foreign file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tests.train.conftest import make_params
from train import checkpoint
from train.checkpoint import CheckpointError
from train.fit import FINAL, fit
from train.model import ModelConfig


@pytest.fixture(scope="module")
def trained(faces, tmp_path_factory: pytest.TempPathFactory) -> Path:
    data, shards = faces
    out = tmp_path_factory.mktemp("trained")
    fit(make_params(data, steps=2), "faces", shards, out, model_kind="dcign", progress=False)
    return out / FINAL


def test_resume_with_another_architecture_fails_clearly(faces, trained: Path,
                                                        tmp_path: Path) -> None:
    data, shards = faces
    shutil.copy(trained, tmp_path / FINAL)
    with pytest.raises(CheckpointError, match=r"architecture differs.*'enc_channels': "
                                              r"\(\(4, 4, 4\), \(4, 4, 8\)\)"):
        fit(make_params(data, steps=4, enc_channels=[4, 4, 8]), "faces", shards, tmp_path,
            model_kind="dcign", progress=False, resume=True)


def test_load_model_checks_the_architecture(trained: Path, tmp_path: Path) -> None:
    model, ckpt = checkpoint.load_model(trained, expect=ModelConfig(38, 1, 8, (4, 4, 4),
                                                                     (4, 4, 4), (0, 2), "group"))
    assert not model.training and ckpt["step"] == 2
    convs = [m.weight for m in model.modules() if isinstance(m, torch.nn.Conv2d)
             and m.in_channels > 1]  # (with 1 channel both layouts are the same strides)
    assert convs and all(w.is_contiguous(memory_format=torch.channels_last)
                         and not w.is_contiguous() for w in convs)  # as fit trains on a CPU
    with pytest.raises(CheckpointError, match=r"'latent_dim': \(8, 16\)"):
        checkpoint.load_model(trained, expect=ModelConfig(38, 1, 16, (4, 4, 4), (4, 4, 4),
                                                          (0, 2), "group"))
    # The flip symmetry is part of the architecture: a resume must not silently drop it.
    with pytest.raises(CheckpointError, match=r"'odd_latents': \(\(0, 2\), \(\)\)"):
        checkpoint.load_model(trained, expect=ModelConfig(38, 1, 8, (4, 4, 4), (4, 4, 4),
                                                          norm="group"))
    # So is the norm (train.norm: group, the default).
    with pytest.raises(CheckpointError, match=r"'norm': \('group', 'none'\)"):
        checkpoint.load_model(trained, expect=ModelConfig(38, 1, 8, (4, 4, 4), (4, 4, 4),
                                                          (0, 2)))

    # Weights that do not fit the architecture the checkpoint claims.
    ckpt = checkpoint.read(trained)
    ckpt["model_config"]["dec_channels"] = [4, 8, 4]
    bad = tmp_path / "bad.pt"
    torch.save(ckpt, bad)
    with pytest.raises(CheckpointError, match=r"bad\.pt: weights do not fit the architecture"):
        checkpoint.load_model(bad)

    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk\.pt: not a readable checkpoint"):
        checkpoint.load_model(junk)
    torch.save({"format": 99}, junk)
    with pytest.raises(CheckpointError, match="not a dcign checkpoint of format 1"):
        checkpoint.load_model(junk)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        checkpoint.load_model(tmp_path / "missing.pt")
