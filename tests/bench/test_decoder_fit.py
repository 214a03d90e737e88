"""bench/decoder_fit.py's fit on a few synthetic images: it reports, and it learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.decoder_fit import detail_loss, fit, high_pass
from evaluate import metrics as M
from evaluate.stage import Detail
from train.model import ModelConfig


def test_a_decoder_fit_lowers_the_error_and_reports_five_times() -> None:
    rng = np.random.default_rng(0)
    x = np.zeros((4, 1, 36, 36), np.float32)
    x[:, :, 8:28, 8:28] = rng.uniform(0.2, 0.9, size=(4, 1, 20, 20))  # objects with texture
    cfg = ModelConfig(image_size=36, channels=1, latent_dim=4, enc_channels=(4, 4, 4),
                      dec_channels=(4, 4, 4))
    rows = list(fit(torch.from_numpy(x), cfg, 50, Detail(sigma=1.0, margin=1)))
    assert [r[0] for r in rows] == [10, 20, 30, 40, 50]
    mse = [r[1] for r in rows]
    assert mse[-1] < mse[0] and all(np.isfinite([r[2] for r in rows]))


def test_torch_high_pass_is_the_evaluate_stages_and_rejects_a_bad_sigma() -> None:
    x = torch.rand(3, 2, 20, 17, dtype=torch.float64)
    for sigma in (0.5, 1.0, 2.5):
        assert high_pass(x, sigma).numpy() == pytest.approx(M.high_pass(x.numpy(), sigma),
                                                            abs=1e-12)
    # A constant image has no fine structure, not even at the border (edges replicated).
    assert float(high_pass(torch.full((1, 1, 9, 9), 0.3), 1.0).abs().max()) < 1e-6
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="sigma"):
            high_pass(x, bad)


def test_detail_loss_weighs_only_fine_structure() -> None:
    x = torch.rand(2, 1, 24, 24).clamp(0.05, 0.95)
    assert float(detail_loss(torch.logit(x), x, 1.0)) < 1e-8
    # A uniform brightening costs (almost) nothing here; a flat output loses all the target's
    # fine structure, exactly its high-pass energy.
    brighter = torch.logit((x + 0.04).clamp(max=0.99))
    flat = torch.zeros_like(x)
    assert float(detail_loss(brighter, x, 1.0)) < 0.05 * float(detail_loss(flat, x, 1.0))
    assert float(detail_loss(flat, x, 1.0)) == pytest.approx(
        float(high_pass(x, 1.0).square().sum()), rel=1e-5)


def test_options_reach_the_fit() -> None:
    # --detail-weight, --noise and --lr change what is fitted: same seed, different weights.
    x = torch.rand(4, 1, 36, 36)
    cfg = ModelConfig(image_size=36, channels=1, latent_dim=4, enc_channels=(4, 4, 4),
                      dec_channels=(4, 4, 4))
    d = Detail(sigma=1.0, margin=1)
    plain = [r[1] for r in fit(x, cfg, 10, d)]
    assert [r[1] for r in fit(x, cfg, 10, d)] == plain  # deterministic
    assert [r[1] for r in fit(x, cfg, 10, d, detail_weight=50.0)] != plain
    assert [r[1] for r in fit(x, cfg, 10, d, noise=0.5)] != plain
    assert [r[1] for r in fit(x, cfg, 10, d, lr=1e-2)] != plain
