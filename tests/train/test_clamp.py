"""Clamped training (paper sections 3.1, 3.2) against numbers worked out by hand."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import pytest
import torch

from train.clamp import (
    DEFAULT_INVARIANCE_SCALE,
    LatentAssignment,
    clamp_latents,
    clamp_to_batch_mean,
)
from train.model import DCIGN, ModelConfig, vae_loss

FACES = ("azimuth", "elevation", "light_azimuth")


@pytest.fixture(autouse=True)
def _seeded() -> Iterator[None]:
    # Seed without leaking the global RNG state into other tests.
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


# ------------------------------------------------------------------ latent assignment


def test_assignment_maps_faces_kinds_to_paper_latents() -> None:
    a = LatentAssignment(FACES, latent_dim=8)
    assert list(a.active_indices("azimuth")) == [0]
    assert list(a.active_indices("elevation")) == [1]
    assert list(a.active_indices("light_azimuth")) == [2]
    assert list(a.active_indices("intrinsic")) == [3, 4, 5, 6, 7]
    assert a.kinds == ("azimuth", "elevation", "light_azimuth", "intrinsic")
    mask = a.active_mask(["elevation", "intrinsic"])
    expected = torch.tensor(
        [
            [False, True, False, False, False, False, False, False],
            [False, False, False, True, True, True, True, True],
        ]
    )
    assert mask.dtype == torch.bool
    assert torch.equal(mask, expected)


def test_assignment_chairs_has_one_extrinsic() -> None:
    a = LatentAssignment(["azimuth"], latent_dim=4)  # a list, as from YAML
    assert a.factors == ("azimuth",)
    assert list(a.active_indices("azimuth")) == [0]
    assert list(a.active_indices("intrinsic")) == [1, 2, 3]


def test_assignment_unknown_kind_is_named() -> None:
    a = LatentAssignment(FACES, latent_dim=8)
    with pytest.raises(ValueError, match="'light_elevation'"):
        a.active_indices("light_elevation")
    with pytest.raises(ValueError, match="'pitch'"):
        a.active_mask(["azimuth", "pitch"])


@pytest.mark.parametrize(
    ("factors", "latent_dim", "message"),
    [
        (FACES, 3, "latent_dim"),
        (FACES, 2, "latent_dim"),
        (("azimuth", "azimuth"), 5, "unique"),
        (("azimuth", "intrinsic"), 5, "reserved"),
        ("azimuth", 5, "sequence"),
        (("azimuth", ""), 5, "non-empty"),
        (FACES, 8.0, "int"),
    ],
)
def test_assignment_validation(factors: object, latent_dim: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LatentAssignment(factors, latent_dim)  # type: ignore[arg-type]


def test_assignment_round_trips_through_json() -> None:
    a = LatentAssignment(FACES, latent_dim=200)
    b = LatentAssignment.from_dict(json.loads(json.dumps(a.to_dict())))
    assert b == a
    assert b.factors == FACES
    with pytest.raises(ValueError, match="keys"):
        LatentAssignment.from_dict({**a.to_dict(), "scale": 0.01})


# ------------------------------------------------------------------ the autograd clamp

# Two minibatches (G=2) of three rows (B=3) over two latents (D=2).
# Minibatch 0 trains latent 0 and clamps latent 1: column 1 is 4, 5, 9 -> mean 6, deviations
# -2, -1, +3. Minibatch 1 trains latent 1 and clamps latent 0: column 0 is 0, 10, 2 -> mean 4,
# deviations -4, +6, -2.
X = [
    [[1.0, 4.0], [2.0, 5.0], [6.0, 9.0]],
    [[0.0, 7.0], [10.0, 8.0], [2.0, 1.0]],
]
ACTIVE = [[True, False], [False, True]]
CLAMPED = [
    [[1.0, 6.0], [2.0, 6.0], [6.0, 6.0]],
    [[4.0, 7.0], [4.0, 8.0], [4.0, 1.0]],
]
UPSTREAM = [
    [[10.0, 20.0], [30.0, 40.0], [50.0, 60.0]],
    [[-1.0, -2.0], [-3.0, -4.0], [-5.0, -6.0]],
]


def _clamp_grad(upstream: list, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    out = clamp_to_batch_mean(x, torch.tensor(ACTIVE), scale)
    out.backward(torch.tensor(upstream, dtype=torch.float64))
    return out.detach(), x.grad


def test_forward_replaces_inactive_by_minibatch_mean() -> None:
    out, _ = _clamp_grad(UPSTREAM, 0.5)
    assert torch.equal(out, torch.tensor(CLAMPED, dtype=torch.float64))


# Per minibatch, the invariance gradient is c * deviation with c = scale * ||active upstream|| /
# ||deviation||. Minibatch 0: active upstream (10, 30, 50), deviations (-2, -1, 3): c = 0.5 *
# sqrt(3500 / 14). Minibatch 1: active upstream (-2, -4, -6), deviations (-4, 6, -2): c = 0.5 *
# sqrt(56 / 56) = 0.5.
C0 = 0.5 * math.sqrt(3500 / 14)


def test_backward_active_passes_clamped_replaced() -> None:
    _, grad = _clamp_grad(UPSTREAM, 0.5)
    expected = torch.tensor(
        [
            # active latent 0 keeps 10, 30, 50; clamped latent 1 gets c0 * (-2, -1, 3)
            [[10.0, -2 * C0], [30.0, -C0], [50.0, 3 * C0]],
            # clamped latent 0 gets 0.5 * (-4, 6, -2); active latent 1 keeps -2, -4, -6
            [[-2.0, -2.0], [3.0, -4.0], [-1.0, -6.0]],
        ],
        dtype=torch.float64,
    )
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("scale", [0.0, 0.01, 0.5, 3.0])
def test_invariance_gradient_norm_is_scale_times_the_active_one(scale: float) -> None:
    record: list[torch.Tensor] = []
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    out = clamp_to_batch_mean(x, torch.tensor(ACTIVE), scale, record)
    out.backward(torch.tensor(UPSTREAM, dtype=torch.float64))
    keep = torch.tensor(ACTIVE).unsqueeze(1).expand(2, 3, 2)
    for g in range(2):
        inv = x.grad[g][~keep[g]].norm()
        act = torch.tensor(UPSTREAM, dtype=torch.float64)[g][keep[g]].norm()
        assert float(inv) == pytest.approx(scale * float(act), rel=1e-12, abs=1e-15)
    (norms,) = record  # one backward, one (G, 2) row of [invariance, active] norms
    assert norms.shape == (2, 2)
    torch.testing.assert_close(norms[:, 0], scale * norms[:, 1], rtol=1e-12, atol=1e-15)


def test_gradient_scales_with_the_loss_like_the_reconstruction_one() -> None:
    # Multiplying the loss by W (as DDP training does before averaging over W ranks) multiplies
    # the invariance gradient by W too, so the ratio to the training signal is kept.
    _, g1 = _clamp_grad(UPSTREAM, 0.5)
    _, g2 = _clamp_grad([[[2 * v for v in row] for row in mb] for mb in UPSTREAM], 0.5)
    torch.testing.assert_close(g2, 2 * g1, rtol=1e-12, atol=1e-12)


def test_agreeing_inactive_latents_get_no_pull() -> None:
    x = torch.tensor([[[1.0, 5.0], [2.0, 5.0], [3.0, 5.0]]], dtype=torch.float64,
                     requires_grad=True)
    clamp_to_batch_mean(x, torch.tensor([[True, False]]), 0.5).sum().backward()
    assert x.grad[0, :, 1].tolist() == [0.0, 0.0, 0.0]
    assert x.grad[0, :, 0].tolist() == [1.0, 1.0, 1.0]


def test_default_scale_is_one_hundredth() -> None:
    assert DEFAULT_INVARIANCE_SCALE == 0.01
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    clamp_to_batch_mean(x, torch.tensor(ACTIVE)).sum().backward()
    # Upstream ones: active norm sqrt(3) in both minibatches.
    torch.testing.assert_close(
        x.grad[0, :, 1],
        0.01 * math.sqrt(3 / 14) * torch.tensor([-2.0, -1.0, 3.0], dtype=torch.float64),
    )
    torch.testing.assert_close(
        x.grad[1, :, 0],
        0.01 * math.sqrt(3 / 56) * torch.tensor([-4.0, 6.0, -2.0], dtype=torch.float64),
    )


def test_clamped_gradient_ignores_upstream_there() -> None:
    # The inactive entries' own upstream values are dropped: only the active entries' norm
    # (here kept the same) sets the pull.
    other = [[list(row) for row in mb] for mb in UPSTREAM]
    other[0][0][1], other[0][2][1], other[1][1][0] = 1e6, -3.0, 42.0  # inactive entries only
    _, g1 = _clamp_grad(UPSTREAM, 0.5)
    _, g2 = _clamp_grad(other, 0.5)
    torch.testing.assert_close(g1, g2, rtol=0, atol=0)


def test_sgd_step_pulls_clamped_latents_toward_batch_mean() -> None:
    # One plain SGD step x <- x - lr * grad on the clamped inputs, with an upstream gradient that
    # would push them apart if it got through. With lr = 0.5 / c deviations shrink by half.
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    out = clamp_to_batch_mean(x, torch.tensor(ACTIVE), 0.5)
    out.backward(torch.tensor(UPSTREAM, dtype=torch.float64))
    with torch.no_grad():
        after_col1 = x[0, :, 1] - (0.5 / C0) * x.grad[0, :, 1]
        after_col0 = x[1, :, 0] - (0.5 / 0.5) * x.grad[1, :, 0]
    # Spread of the clamped columns: sum of squared deviations from the minibatch mean.
    before = (4 + 1 + 9, 16 + 36 + 4)  # (-2, -1, 3) and (-4, 6, -2)
    spread1 = float(((after_col1 - after_col1.mean()) ** 2).sum())
    spread0 = float(((after_col0 - after_col0.mean()) ** 2).sum())
    assert spread1 == pytest.approx(before[0] * 0.25)
    assert spread0 == pytest.approx(before[1] * 0.25)
    # The mean itself does not move: deviations sum to zero.
    assert float(after_col1.mean()) == pytest.approx(6.0)
    assert float(after_col0.mean()) == pytest.approx(4.0)


def test_clamp_validates_inputs() -> None:
    x = torch.tensor(X)
    with pytest.raises(ValueError, match=">= 0"):
        clamp_to_batch_mean(x, torch.tensor(ACTIVE), -0.01)
    with pytest.raises(ValueError, match="bool"):
        clamp_to_batch_mean(x, torch.tensor(ACTIVE).float(), 0.01)
    with pytest.raises(ValueError, match=r"\(G, B, D\)"):
        clamp_to_batch_mean(x[0], torch.tensor(ACTIVE), 0.01)


# ------------------------------------------------------------------ both heads, flat rows


def test_clamp_latents_acts_on_both_heads() -> None:
    a = LatentAssignment(["azimuth"], latent_dim=2)
    kinds = ["azimuth", "intrinsic"]  # same active pattern as ACTIVE above
    mu = torch.tensor(X, dtype=torch.float64).reshape(6, 2).requires_grad_()  # (G*B, D)
    logvar = (torch.tensor(X, dtype=torch.float64) * 10).reshape(6, 2).requires_grad_()
    mu_c, lv_c = clamp_latents(mu, logvar, kinds, a, scale=0.5, batch_size=3)
    assert mu_c.shape == lv_c.shape == (6, 2)
    assert mu_c[:, 1][:3].tolist() == [6.0, 6.0, 6.0]
    assert mu_c[:, 0][3:].tolist() == [4.0, 4.0, 4.0]
    assert lv_c[:, 1][:3].tolist() == [60.0, 60.0, 60.0]
    assert lv_c[:, 0][3:].tolist() == [40.0, 40.0, 40.0]
    assert lv_c[:, 0][:3].tolist() == [10.0, 20.0, 60.0]  # active, untouched
    (mu_c.sum() + 3 * lv_c.sum()).backward()
    # Clamped: deviations scaled to 0.5 x the active upstream's norm (sqrt(3) for mu, 3 sqrt(3)
    # for logvar, whose deviations are 10x); active: the upstream 1 and 3.
    dev0, dev1 = torch.tensor([-2.0, -1.0, 3.0]), torch.tensor([-4.0, 6.0, -2.0])
    c0, c1 = 0.5 * math.sqrt(3 / 14), 0.5 * math.sqrt(3 / 56)
    torch.testing.assert_close(mu.grad[:3, 1].float(), c0 * dev0)
    torch.testing.assert_close(logvar.grad[:3, 1].float(), 3 * c0 * dev0)
    torch.testing.assert_close(logvar.grad[3:, 0].float(), 3 * c1 * dev1)
    assert mu.grad[:3, 0].tolist() == [1.0, 1.0, 1.0]
    assert logvar.grad[3:, 1].tolist() == [3.0, 3.0, 3.0]


def test_clamp_latents_checks_rows_and_width() -> None:
    a = LatentAssignment(["azimuth"], latent_dim=2)
    mu = torch.zeros(7, 2)
    with pytest.raises(ValueError, match="minibatches"):
        clamp_latents(mu, mu, ["azimuth", "intrinsic"], a)
    with pytest.raises(ValueError, match="minibatches"):
        clamp_latents(mu[:6], mu[:6], ["azimuth", "intrinsic"], a, batch_size=2)
    with pytest.raises(ValueError, match="latent_dim=2"):
        clamp_latents(torch.zeros(6, 3), torch.zeros(6, 3), ["azimuth"], a)


# ------------------------------------------------------------------ through the model

SMALL = ModelConfig(
    image_size=36, channels=1, latent_dim=6, enc_channels=(4, 4, 4), dec_channels=(4, 4, 4)
)


def _grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.detach().clone() for n, p in model.named_parameters()}


def test_step_of_g_minibatches_is_sum_of_single_minibatch_steps() -> None:
    a = LatentAssignment(["azimuth", "elevation"], latent_dim=6)
    model = DCIGN(SMALL).double().train()
    g, b = 3, 4
    kinds = ["azimuth", "intrinsic", "elevation"]
    x = torch.rand(g * b, 1, 36, 36, dtype=torch.float64)
    noise = torch.randn(g * b, 6, dtype=torch.float64)

    model.zero_grad()
    out = model(x, kinds, assignment=a, clamp_scale=0.01, noise=noise)
    step_loss = vae_loss(out.logits, x, out.mu, out.logvar).total
    step_loss.backward()
    step_grads = _grads(model)

    model.zero_grad()
    single_total = 0.0
    for i in range(g):
        rows = slice(i * b, (i + 1) * b)
        out = model(x[rows], [kinds[i]], assignment=a, clamp_scale=0.01, noise=noise[rows])
        loss = vae_loss(out.logits, x[rows], out.mu, out.logvar).total
        loss.backward()  # accumulates: sum of the three single-minibatch gradients
        single_total += float(loss.detach())
    summed_grads = _grads(model)

    assert float(step_loss.detach()) == pytest.approx(single_total, rel=1e-12)
    for name, grad in step_grads.items():
        torch.testing.assert_close(grad, summed_grads[name], rtol=1e-9, atol=1e-12, msg=name)


def test_clamped_heads_get_only_the_invariance_gradient() -> None:
    # With scale 0 a clamped latent gets no gradient at all, so the encoder head rows that produce
    # it stay untouched by an azimuth minibatch; with the paper's scale they get the pull.
    a = LatentAssignment(["azimuth"], latent_dim=6)
    model = DCIGN(SMALL).double().train()
    x = torch.rand(5, 1, 36, 36, dtype=torch.float64)
    noise = torch.randn(5, 6, dtype=torch.float64)
    for scale in (0.0, 0.01):
        model.zero_grad()
        out = model(x, ["azimuth"], assignment=a, clamp_scale=scale, noise=noise)
        assert torch.allclose(out.mu[:, 1:], out.mu[:1, 1:].expand(5, 5))  # clamped to one value
        assert torch.allclose(out.logvar[:, 1:], out.logvar[:1, 1:].expand(5, 5))
        assert not torch.allclose(out.mu[:, 0], out.mu[:1, 0].expand(5))  # active varies
        vae_loss(out.logits, x, out.mu, out.logvar).total.backward()
        for head in (model.encoder.mu, model.encoder.logvar):
            assert head.weight.grad[0].abs().sum() > 0  # active row: reconstruction + KL
            clamped = head.weight.grad[1:].abs().sum()
            if scale == 0.0:
                assert clamped == 0
            else:
                assert clamped > 0


def test_center_extrinsic_trains_an_extrinsic_latent_by_within_batch_differences_only() -> None:
    a = LatentAssignment(["azimuth"], latent_dim=3)
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(8, 3, generator=g, requires_grad=True)
    logvar = torch.randn(8, 3, generator=g, requires_grad=True)
    weights = torch.randn(8, 3, generator=g)  # a loss whose gradient has a non-zero batch mean
    kinds = ["azimuth", "intrinsic"]
    grads = {}
    for centered in (False, True):
        mu.grad = logvar.grad = None
        mu_c, lv_c = clamp_latents(mu, logvar, kinds, a, scale=0.0, batch_size=4,
                                   center_extrinsic=centered)
        ((mu_c + lv_c) * weights).sum().backward()
        grads[centered] = (mu.grad.clone(), logvar.grad.clone())
    plain, cent = grads[False][0], grads[True][0]
    # The azimuth minibatch's active latent (rows 0-3, latent 0) loses its batch-mean gradient.
    assert torch.allclose(cent[:4, 0], plain[:4, 0] - plain[:4, 0].mean())
    assert abs(float(cent[:4, 0].sum())) < 1e-6 and abs(float(plain[:4, 0].sum())) > 1e-3
    # The intrinsic minibatch's active latents, and every log-variance, keep their gradient.
    assert torch.equal(cent[4:], plain[4:])
    assert torch.equal(grads[True][1], grads[False][1])
    with pytest.raises(ValueError, match="center must be a bool mask"):
        clamp_to_batch_mean(mu.detach().reshape(2, 4, 3), torch.ones(2, 3, dtype=torch.bool),
                            center=torch.ones(2, 2, dtype=torch.bool))
