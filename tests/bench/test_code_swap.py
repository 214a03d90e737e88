"""bench/code_swap.py: the four versions of a latent, and the errors they are scored by."""

from __future__ import annotations

import numpy as np
import torch

from bench.code_swap import VERSIONS, errors, swapped
from train.model import DCIGN, ModelConfig


def test_the_versions_keep_what_they_claim() -> None:
    rng = np.random.default_rng(0)
    values = np.linspace(-30, 30, 7)
    latent = 0.1 * values**2 / 30 + rng.normal(size=(3, 1)) + 0.05 * rng.normal(size=(3, 7))
    v = swapped(latent, values)
    assert tuple(v) == VERSIONS
    np.testing.assert_array_equal(v["encoder"], latent)
    slope, icept = np.polyfit(np.tile(values, 3), latent.ravel(), 1)
    np.testing.assert_allclose(v["linear"], np.tile(icept + slope * values, (3, 1)))
    # The offset version is the same line, at each identity's own level.
    np.testing.assert_allclose(v["linear + identity offset"].mean(1), latent.mean(1))
    np.testing.assert_allclose(np.diff(v["linear + identity offset"], axis=1),
                               np.diff(v["linear"], axis=1))
    # The constant says nothing of the factor: one value per identity, its mean.
    np.testing.assert_allclose(v["constant"], np.repeat(latent.mean(1, keepdims=True), 7, 1))


def test_errors_of_the_encoders_own_latent_are_its_reconstruction_error() -> None:
    torch.manual_seed(0)
    model = DCIGN(ModelConfig(image_size=36, channels=1, latent_dim=4, enc_channels=(4, 4, 4),
                              dec_channels=(4, 4, 4))).eval()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(2, 6, 1, 36, 36), dtype=np.uint8)
    values = np.linspace(-30, 30, 6)
    out, own = errors(model, images, values, latent=1)
    with torch.no_grad():
        x = torch.from_numpy(images.reshape(12, 1, 36, 36)).float() / 255
        rec = model.decode(model.encode(x)[0])
    torch.testing.assert_close(torch.from_numpy(own.reshape(12, 1, 36, 36)), rec)
    per = ((rec - x) ** 2).mean(dim=(1, 2, 3)).view(2, 6).numpy()
    all_, low, high = out["encoder"]
    assert np.isclose(all_, per.mean(), rtol=1e-5)
    assert np.isclose(low, per[:, :3].mean(), rtol=1e-5)
    assert np.isclose(high, per[:, 3:].mean(), rtol=1e-5)
    assert set(out) == set(VERSIONS)
