"""bench/decoder_finetune.py on a small model and synthetic minibatches."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from bench.decoder_finetune import finetune, redraw_decoder
from train.model import DCIGN, ModelConfig


def _setup() -> tuple[DCIGN, np.ndarray]:
    torch.manual_seed(0)
    cfg = ModelConfig(image_size=36, channels=1, latent_dim=4, enc_channels=(4, 4, 4),
                      dec_channels=(4, 4, 4))
    rng = np.random.default_rng(0)
    x = np.zeros((3, 4, 1, 36, 36), np.uint8)
    x[..., 8:28, 8:28] = rng.integers(50, 230, size=(3, 4, 1, 20, 20))
    return DCIGN(cfg), x


def _loss(model: DCIGN, x: np.ndarray) -> float:
    t = torch.from_numpy(x.reshape(-1, 1, 36, 36).astype(np.float32) / 255)
    with torch.no_grad():
        mu, _ = model.encode(t)
        return F.binary_cross_entropy_with_logits(model.decode_logits(mu), t).item()


def test_only_the_decoder_learns_and_it_reports_four_times() -> None:
    model, x = _setup()
    enc = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    dec = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    before = _loss(model, x)
    assert list(finetune(model, x, 40, lr=1e-2, betas=(0.9, 0.99))) == [10, 20, 30, 40]
    assert not model.training  # left ready to score
    for k, v in model.encoder.state_dict().items():
        assert torch.equal(v, enc[k]), k
    assert any(not torch.equal(v, dec[k]) for k, v in model.decoder.state_dict().items())
    assert _loss(model, x) < before


def test_sampled_codes_train_a_different_decoder() -> None:
    means, x = _setup()
    list(finetune(means, x, 8, lr=1e-2, betas=(0.9, 0.99)))
    sampled, _ = _setup()
    list(finetune(sampled, x, 8, lr=1e-2, betas=(0.9, 0.99), sample=True))
    w = "body.1.weight"
    assert not torch.equal(means.decoder.state_dict()[w], sampled.decoder.state_dict()[w])


def test_a_fresh_decoder_is_redrawn_and_the_encoder_kept() -> None:
    model, _ = _setup()
    enc = {k: v.clone() for k, v in model.encoder.state_dict().items()}
    dec = {k: v.clone() for k, v in model.decoder.state_dict().items()}
    redraw_decoder(model, "kaiming", seed=1)
    for k, v in model.encoder.state_dict().items():
        assert torch.equal(v, enc[k]), k
    assert all(not torch.equal(v, dec[k]) for k, v in model.decoder.state_dict().items()
               if k.endswith("weight"))
    again, _ = _setup()
    redraw_decoder(again, "kaiming", seed=1)  # the same draw for the same seed
    for k, v in again.decoder.state_dict().items():
        assert torch.equal(v, model.decoder.state_dict()[k]), k
