"""bench/supervised_ceiling.py: the scaling, the within-identity r, and a regression that learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.supervised_ceiling import regress, scaled, within_r
from evaluate.data import encode
from train.model import DCIGN, ModelConfig


def test_scaled_maps_each_range_onto_minus_one_to_one() -> None:
    deg = np.array([[-90.0, 0.0], [90.0, 360.0], [0.0, 90.0]], np.float32)
    out = scaled(deg, [(-90, 90), (0, 360)])
    np.testing.assert_allclose(out, [[-1, -1], [1, 1], [0, -0.5]])


def test_within_r_is_the_mean_of_per_identity_correlations() -> None:
    truth = np.tile(np.arange(5.0), (2, 1))
    pred = np.stack([truth[0] * 3 + 7, -truth[1]])  # +1 for the first identity, -1 the second
    assert within_r(pred, truth) == pytest.approx(0.0)
    assert within_r(pred[:1], truth[:1]) == pytest.approx(1.0)


def test_the_encoder_learns_a_factor_it_is_told() -> None:
    # The target is where a bright bar sits: an encoder that learns must read it back.
    rng = np.random.default_rng(0)
    rows = rng.integers(4, 30, size=200)
    x = np.zeros((200, 1, 36, 36), np.uint8)
    for i, r in enumerate(rows):
        x[i, 0, r:r + 3, 6:30] = 220
    y = ((rows - 17) / 13).astype(np.float32)[:, None]
    torch.manual_seed(0)
    model = DCIGN(ModelConfig(image_size=36, channels=1, latent_dim=1, enc_channels=(8, 8, 8),
                              dec_channels=(4, 4, 4)))
    cpu = torch.device("cpu")
    before = np.corrcoef(encode(model, x, cpu)[:, 0], y[:, 0])[0, 1]
    steps = regress(model.encoder, x, y, 300, batch=20, lr=3e-3, betas=(0.9, 0.99), every=100)
    assert list(steps) == [100, 200, 300]
    after = np.corrcoef(encode(model, x, cpu)[:, 0], y[:, 0])[0, 1]
    assert after > 0.9 > abs(before)
