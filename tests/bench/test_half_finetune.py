"""bench/half_finetune.py: only the chosen half of the model trains; what it scores."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from bench.half_finetune import scores, trainable
from evaluate.data import decode, encode
from evaluate.stage import Detail
from train.clamp import LatentAssignment
from train.model import DCIGN, ModelConfig
from train.step import backward_step


def _step(half: str) -> tuple[bool, bool]:
    """(encoder moved, decoder moved) after one DC-IGN step training `half`."""
    torch.manual_seed(0)
    model = DCIGN(ModelConfig(image_size=36, channels=1, latent_dim=5, enc_channels=(4, 4, 4),
                              dec_channels=(4, 4, 4)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.Adam(trainable(model, half), lr=1e-2)
    x = torch.rand(6, 1, 36, 36)
    backward_step(model, x, ["elevation"], torch.randn(6, 5), model_kind="dcign",
                  assignment=LatentAssignment(("azimuth", "elevation", "light_azimuth"), 5),
                  clamp_scale=0.01, kl_weight=0.1, center_extrinsic=True)
    opt.step()
    moved = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    return (any(k.startswith("encoder.") for k in moved),
            any(k.startswith("decoder.") for k in moved))


@pytest.mark.parametrize("half, moves", [("encoder", (True, False)), ("decoder", (False, True)),
                                         ("both", (True, True))])
def test_only_the_chosen_half_moves(half: str, moves: tuple[bool, bool]) -> None:
    assert _step(half) == moves


def test_an_unknown_half_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown half 'head'"):
        trainable(DCIGN(ModelConfig(image_size=36, channels=1, latent_dim=2)), "head")


def test_scores_detail_is_the_first_grids_reconstruction_detail() -> None:
    torch.manual_seed(0)
    model = DCIGN(ModelConfig(image_size=36, channels=1, latent_dim=3, enc_channels=(4, 4, 4),
                              dec_channels=(4, 4, 4))).eval()
    rng = np.random.default_rng(0)
    grids = {}
    for f in ("azimuth", "elevation"):
        img = np.zeros((2, 4, 1, 36, 36), np.uint8)
        img[..., 6:30, 6:30] = rng.integers(40, 220, size=(2, 4, 1, 24, 24))
        grids[f] = SimpleNamespace(images=img, values=np.linspace(-30, 30, 4))
    detail = Detail(sigma=1.0, margin=2)
    plain = scores(model, grids, ("azimuth", "elevation"))
    with_detail = scores(model, grids, ("azimuth", "elevation"), detail)
    assert "detail" not in plain
    assert {k: v for k, v in with_detail.items() if k != "detail"} == plain
    x = grids["azimuth"].images.reshape(8, 1, 36, 36)
    cpu = torch.device("cpu")
    expect = detail.score(decode(model, encode(model, x, cpu), cpu), x.astype(np.float32) / 255)
    assert with_detail["detail"] == expect
