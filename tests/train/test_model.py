"""DC-IGN network shapes (paper / original code), config validation and the summed VAE loss."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from train.clamp import LatentAssignment
from train.model import (
    DCIGN,
    MIN_IMAGE_SIZE,
    ModelConfig,
    center_crop,
    decoder_sizes,
    encoder_sizes,
    init_weights,
    param_count,
    vae_loss,
)

SMALL = dict(latent_dim=6, enc_channels=(4, 4, 4), dec_channels=(4, 4, 4))


@pytest.fixture(autouse=True)
def _seeded() -> Iterator[None]:
    # Seed without leaking the global RNG state into other tests.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


# ------------------------------------------------------------------ shapes


def test_paper_shapes_at_150() -> None:
    model = DCIGN(ModelConfig(image_size=150, channels=1)).eval()
    sides: dict[str, int] = {}

    def record(name: str):
        def hook(_m: nn.Module, _i: object, out: torch.Tensor) -> None:
            sides[name] = out.shape[-1]
            sides[name + ".channels"] = out.shape[1]

        return hook

    for prefix, seq in (("enc", model.encoder.features), ("dec", model.decoder.body)):
        for name, layer in seq.named_children():
            if isinstance(layer, (nn.Conv2d, nn.MaxPool2d)):
                layer.register_forward_hook(record(f"{prefix}{name}"))
    with torch.no_grad():
        logits = model(torch.rand(1, 1, 150, 150)).logits

    # Encoder: conv 150->146, pool ->73, conv ->69, pool ->34, conv ->30, pool ->15.
    enc = [sides[f"enc{i}"] for i in range(9) if f"enc{i}" in sides]
    assert enc == [146, 73, 69, 34, 30, 15]
    assert [sides[f"enc{i}.channels"] for i in (0, 3, 6)] == [96, 48, 24]
    assert model.encoder.flat_dim == 5400
    assert model.encoder.mu.in_features == model.encoder.logvar.in_features == 5400
    assert model.encoder.mu.out_features == 200
    # Decoder: 200 -> 5400 = 24x15x15, then (upsample, valid 7x7): 30-6, 48-6, 84-6, 156-6.
    assert model.decoder.fc.out_features == 5400
    assert (model.decoder.start_channels, model.decoder.start_size) == (24, 15)
    dec = [
        sides[k] for k in sorted(sides, key=_layer_index) if k.startswith("dec") and "." not in k
    ]
    assert dec == [24, 42, 78, 150]
    assert [sides[f"dec{i}.channels"] for i in (1, 4, 7, 10)] == [48, 96, 96, 1]
    assert logits.shape == (1, 1, 150, 150)
    # The helpers the summary and validation rely on agree.
    assert encoder_sizes(150) == [146, 73, 69, 34, 30, 15]
    assert decoder_sizes(150) == [15, 24, 42, 78, 150]  # no crop at the paper's size


def _layer_index(key: str) -> int:
    return int(key[3:].split(".")[0])


def test_param_count_at_150_matches_hand_count() -> None:
    model = DCIGN(ModelConfig(image_size=150, channels=1))
    by_hand = (
        (1 * 96 * 25 + 96)  # conv 1->96 5x5
        + (96 * 48 * 25 + 48)  # conv 96->48
        + (48 * 24 * 25 + 24)  # conv 48->24
        + 2 * (5400 * 200 + 200)  # mu and log-var heads
        + (200 * 5400 + 5400)  # decoder linear
        + (24 * 48 * 49 + 48)  # conv 24->48 7x7
        + (48 * 96 * 49 + 96)
        + (96 * 96 * 49 + 96)
        + (96 * 1 * 49 + 1)
    )
    assert param_count(model) == by_hand == 4_131_137


@pytest.mark.parametrize(("size", "channels"), [(64, 1), (100, 1), (100, 3), (37, 3)])
def test_output_shape_equals_input_shape(size: int, channels: int) -> None:
    model = DCIGN(ModelConfig(image_size=size, channels=channels, **SMALL)).eval()
    x = torch.rand(2, channels, size, size)
    with torch.no_grad():
        out = model(x)
        probs = model.decode(out.mu)
    assert out.logits.shape == x.shape
    assert out.mu.shape == out.logvar.shape == out.z.shape == (2, 6)
    assert probs.shape == x.shape
    assert float(probs.min()) >= 0.0
    assert float(probs.max()) <= 1.0
    # Decoder covers the image before the crop, with less than one 16-pixel step to spare.
    full = decoder_sizes(size)[-1]
    assert size <= full < size + 16


def test_center_crop_takes_the_middle() -> None:
    x = torch.arange(25.0).reshape(1, 1, 5, 5)  # (B, C, H, W)
    # (5 - 2) // 2 = 1: rows 1-2 and columns 1-2.
    assert center_crop(x, 2).flatten().tolist() == [6.0, 7.0, 11.0, 12.0]
    assert center_crop(x, 5).flatten().tolist() == list(range(25))


def test_summary_lists_each_layer_shape() -> None:
    summary = DCIGN(ModelConfig(image_size=150, channels=1)).architecture_summary()
    assert "4,131,137 parameters" in summary
    for shape in ["(96, 146, 146)", "(24, 15, 15)", "(5400,)", "(48, 24, 24)", "(1, 150, 150)"]:
        assert shape in summary
    assert summary.count("Conv2d") == 7


def test_minimum_image_size_is_36() -> None:
    assert MIN_IMAGE_SIZE == 36
    assert encoder_sizes(36)[-1] == 1
    assert encoder_sizes(35)[-1] == 0
    ModelConfig(image_size=36, channels=1)  # accepted


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(image_size=35, channels=1), "minimum is 36"),
        (dict(image_size=64.0, channels=1), "image_size must be an int"),
        (dict(image_size=64, channels=2), "channels must be 1"),
        (dict(image_size=64, channels=True), "channels must be 1"),
        (dict(image_size=64, channels=1, latent_dim=0), "latent_dim"),
        (dict(image_size=64, channels=1, enc_channels=(96, 48)), "enc_channels"),
        (dict(image_size=64, channels=1, dec_channels=(48, 0, 96)), "dec_channels"),
        (dict(image_size=64, channels=1, latent_dim=4, odd_latents=(4,)), "odd_latents"),
        (dict(image_size=64, channels=1, odd_latents=(0, 0)), "odd_latents"),
    ],
)
def test_config_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_config_accepts_lists_from_yaml() -> None:
    cfg = ModelConfig(image_size=64, channels=1, enc_channels=[8, 8, 8], dec_channels=[8, 8, 8])
    assert cfg.enc_channels == (8, 8, 8)
    assert isinstance(cfg.dec_channels, tuple)
    hash(cfg)  # frozen and hashable


def test_odd_latents_flip_sign_under_a_mirror_image_and_the_rest_are_untouched() -> None:
    x = torch.rand(3, 1, 40, 40)
    mirror = torch.flip(x, dims=(-1,))
    plain = DCIGN(ModelConfig(image_size=40, channels=1, **SMALL))
    odd = DCIGN(ModelConfig(image_size=40, channels=1, odd_latents=(0, 2), **SMALL))
    odd.load_state_dict(plain.state_dict())  # same weights; the flag is not a parameter
    mu, logvar = odd.encode(x)
    mu_m, logvar_m = odd.encode(mirror)
    torch.testing.assert_close(mu_m[:, [0, 2]], -mu[:, [0, 2]])
    torch.testing.assert_close(logvar_m[:, [0, 2]], logvar[:, [0, 2]])
    assert mu[:, [0, 2]].abs().min() > 0  # odd, not zero
    # Latents not listed are the plain encoder's, and are not symmetrised.
    mu_p, logvar_p = plain.encode(x)
    torch.testing.assert_close(mu[:, [1, 3, 4, 5]], mu_p[:, [1, 3, 4, 5]])
    torch.testing.assert_close(logvar[:, [1, 3, 4, 5]], logvar_p[:, [1, 3, 4, 5]])
    assert not torch.allclose(mu_m[:, 1], -mu[:, 1])


def test_norm_none_is_the_papers_layers_and_group_norms_each_image_on_its_own() -> None:
    torch.manual_seed(0)
    plain = DCIGN(ModelConfig(image_size=40, channels=1, **SMALL))
    # "none" adds nothing, so checkpoints from before train.norm keep their weight names.
    assert not any(isinstance(m, nn.GroupNorm) for m in plain.modules())
    assert {"encoder.features.6.weight", "decoder.body.10.weight"} <= set(plain.state_dict())
    normed = DCIGN(ModelConfig(image_size=40, channels=1, odd_latents=(0,), norm="group",
                               **SMALL)).eval()
    groups = [m for m in normed.modules() if isinstance(m, nn.GroupNorm)]
    assert len(groups) == 6  # three encoder stages, the decoder's three inner convs
    # gcd(8, 4 channels) groups, but the encoder's last map is 1x1 at 40 px: its 4 values form
    # one group (4 groups of one value each would normalise every value to 0).
    assert [m.num_groups for m in groups] == [4, 4, 1, 4, 4, 4]
    # At the default size every norm keeps 8 groups of at least 16 values.
    default = DCIGN(ModelConfig(64, 1, 32, (32, 32, 16), (32, 32, 32), norm="group"))
    assert {m.num_groups for m in default.modules() if isinstance(m, nn.GroupNorm)} == {8}
    # The smallest image trains: one image, a 1x1 last map.
    tiny = DCIGN(ModelConfig(image_size=36, channels=1, norm="group", **SMALL)).train()
    out = tiny(torch.rand(1, 1, 36, 36))
    vae_loss(out.logits, torch.rand(1, 1, 36, 36), out.mu, out.logvar).total.backward()
    with torch.no_grad():
        # The decoder's inner maps come out normalised per image: mean 0, variance 1 per group.
        d = normed.decoder
        h = torch.relu(d.fc(torch.randn(3, 6) * 5))
        h = d.body[:3](h.view(3, d.start_channels, d.start_size, d.start_size))
        assert h.flatten(1).mean(1).abs().max() < 1e-5
        assert (h.flatten(1).var(1, unbiased=False) - 1).abs().max() < 1e-3
        # Each image is normalised alone: changing one image leaves the others' codes and
        # renders as they were (BatchNorm would not), so only the clamp couples a minibatch.
        x = torch.rand(4, 1, 40, 40)
        y = x.clone()
        y[0] = torch.rand(1, 40, 40)
        (mu_x, _), (mu_y, _) = normed.encode(x), normed.encode(y)
        torch.testing.assert_close(mu_x[1:], mu_y[1:])
        assert not torch.allclose(mu_x[0], mu_y[0])
        # The flip-odd latent stays odd through the normalised encoder.
        mu_m, _ = normed.encode(torch.flip(x, dims=(-1,)))
        torch.testing.assert_close(mu_m[:, 0], -mu_x[:, 0])
    with pytest.raises(ValueError, match="norm must be one of"):
        ModelConfig(image_size=40, channels=1, norm="batch")


def test_forward_rejects_bad_inputs() -> None:
    model = DCIGN(ModelConfig(image_size=36, channels=1, **SMALL))
    with pytest.raises(ValueError, match=r"\(N, 1, 36, 36\)"):
        model(torch.rand(2, 3, 36, 36))
    with pytest.raises(ValueError, match="LatentAssignment"):
        model(torch.rand(2, 1, 36, 36), ["azimuth"])
    with pytest.raises(ValueError, match="without kinds"):
        model(torch.rand(2, 1, 36, 36), assignment=LatentAssignment(["azimuth"], 6))


def test_eval_uses_mu_and_training_samples() -> None:
    model = DCIGN(ModelConfig(image_size=36, channels=1, **SMALL))
    x = torch.rand(3, 1, 36, 36)
    noise = torch.randn(3, 6)
    model.train()
    out = model(x, noise=noise)
    expected = out.mu + torch.exp(0.5 * out.logvar) * noise
    torch.testing.assert_close(out.z, expected)
    assert not torch.allclose(out.z, out.mu)
    model.eval()
    out = model(x, noise=noise)
    assert torch.equal(out.z, out.mu)


# ------------------------------------------------------------------ loss


def test_vae_loss_known_values() -> None:
    # Logits 0 -> p = 1/2 -> BCE = log 2 per pixel whatever the target.
    # KL per latent = -1/2 (1 + logvar - mu^2 - exp(logvar)):
    # 0 at mu = 0, logvar = 0 and 1/2 at mu = 1, logvar = 0.
    logits = torch.zeros(2, 1, 3, 3)
    x = torch.rand(2, 1, 3, 3)
    mu = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
    logvar = torch.zeros(2, 2)
    total, recon, kl = vae_loss(logits, x, mu, logvar)
    assert float(recon) == pytest.approx(18 * math.log(2))
    assert float(kl) == pytest.approx(1.5)
    assert float(total) == pytest.approx(18 * math.log(2) + 1.5)
    # logvar = log 2, mu = 0: -1/2 (1 + log 2 - 2) = (1 - log 2) / 2 per latent.
    kl2 = vae_loss(logits, x, torch.zeros(1, 1), torch.full((1, 1), math.log(2))).kl
    assert float(kl2) == pytest.approx((1 - math.log(2)) / 2)
    # A KL weight scales only the KL term of the minimised total; recon and kl stay the ELBO's.
    total_b, recon_b, kl_b = vae_loss(logits, x, mu, logvar, kl_weight=0.1)
    assert (float(recon_b), float(kl_b)) == (float(recon), float(kl))
    assert float(total_b) == pytest.approx(18 * math.log(2) + 0.15)


def test_loss_of_g_minibatches_is_sum_of_singles() -> None:
    model = DCIGN(ModelConfig(image_size=36, channels=1, **SMALL)).double().train()
    x = torch.rand(12, 1, 36, 36, dtype=torch.float64)
    noise = torch.randn(12, 6, dtype=torch.float64)
    with torch.no_grad():
        out = model(x, noise=noise)
        whole = vae_loss(out.logits, x, out.mu, out.logvar)
        parts = [
            vae_loss(out.logits[i : i + 4], x[i : i + 4], out.mu[i : i + 4], out.logvar[i : i + 4])
            for i in (0, 4, 8)
        ]
    for k in range(3):  # total, recon, kl
        assert float(whole[k]) == pytest.approx(sum(float(p[k]) for p in parts), rel=1e-12)
    # And it is a sum, not a mean: a quarter of the batch has about a quarter of the loss.
    assert float(whole.total) > 2 * float(parts[0].total)


def test_loss_finite_under_bf16_autocast() -> None:
    model = DCIGN(ModelConfig(image_size=36, channels=1, **SMALL)).train()
    x = torch.rand(4, 1, 36, 36)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(x)
        total, recon, kl = vae_loss(out.logits, x, out.mu, out.logvar)
    assert out.logits.dtype == torch.bfloat16  # autocast really ran the convs in bf16
    assert total.dtype == recon.dtype == kl.dtype == torch.float32
    assert bool(torch.isfinite(total))
    total.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_loss_decreases_with_adam_on_a_fixed_batch() -> None:
    cfg = ModelConfig(36, 1, latent_dim=8, enc_channels=(8, 8, 8), dec_channels=(8, 8, 8))
    model = DCIGN(cfg).train()
    a = LatentAssignment(["azimuth"], latent_dim=8)
    # Smooth blobs, so there is something learnable to reconstruct.
    grid = torch.linspace(-1, 1, 36)
    yy, xx = torch.meshgrid(grid, grid, indexing="ij")
    centres = torch.linspace(-0.5, 0.5, 4)
    x = torch.exp(-((xx - centres[:, None, None]) ** 2 + yy**2) / 0.1).unsqueeze(1)  # (4,1,36,36)
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.99))
    losses = []
    for _ in range(20):
        out = model(x, ["azimuth"], assignment=a)
        loss = vae_loss(out.logits, x, out.mu, out.logvar).total
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    # Seeds 0-3 all end near 0.4x the starting loss; 0.7x leaves room without being vacuous.
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3


def test_kaiming_init_keeps_relu_layers_at_2_over_fan_in_and_heads_at_1() -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(64, 1, latent_dim=32, enc_channels=(32, 32, 16), dec_channels=(32, 32, 32))
    model = DCIGN(cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    init_weights(model, "torch")  # PyTorch's default stays as it was drawn
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    init_weights(model, "kaiming")
    heads = {"encoder.mu", "encoder.logvar", f"decoder.body.{len(model.decoder.body) - 1}"}
    for name, layer in model.named_modules():
        if not isinstance(layer, nn.Conv2d | nn.Linear):
            continue
        fan_in = layer.weight[0].numel()
        want = (1.0 if name in heads else 2.0) / fan_in
        assert float(layer.weight.detach().var()) == pytest.approx(want, rel=0.25), name
        assert not layer.bias.any(), name
    # What it is for: the decoder's output follows the code at init (torch's: ~1e-2 logits).
    with torch.no_grad():
        spread = model.decode_logits(torch.randn(64, 32)).std(dim=0).mean()
    assert float(spread) > 0.2
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        init_weights(model, "xavier")
