"""bench/seeded_features.py: the conv stack is copied, the heads and decoder are not."""

from __future__ import annotations

import torch

from bench.seeded_features import seed_features
from train.model import DCIGN, ModelConfig


def test_only_the_convs_are_seeded() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(image_size=36, channels=1, latent_dim=5, enc_channels=(4, 4, 4),
                      dec_channels=(4, 4, 4), norm="group")
    model, told = DCIGN(cfg), DCIGN(ModelConfig(image_size=36, channels=1, latent_dim=3,
                                                enc_channels=(4, 4, 4), norm="group"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seed_features(model, told.encoder)
    for k, v in model.state_dict().items():
        if k.startswith("encoder.features."):
            assert torch.equal(v, told.state_dict()[k]), k
        else:
            assert torch.equal(v, before[k]), k
    assert any(not torch.equal(model.state_dict()[k], before[k]) for k in before
               if k.startswith("encoder.features.") and k.endswith("weight"))
