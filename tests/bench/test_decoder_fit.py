"""bench/decoder_fit.py's fit on a few synthetic images: it reports, and it learns."""

from __future__ import annotations

import numpy as np
import torch

from bench.decoder_fit import fit
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
