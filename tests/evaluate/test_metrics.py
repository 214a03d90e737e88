"""Known-answer tests for evaluate.metrics, in the spirit of disentanglement_lib's metric tests.

Factors are continuous angles in degrees, like the pipeline's; codes are built from them so the
right score is known in advance.
"""

from __future__ import annotations

import json
import math
from functools import partial

import numpy as np
import pytest
from scipy.stats import entropy
from sklearn.ensemble import GradientBoostingClassifier

from evaluate.metrics import (
    DCI_GBT_DEFAULTS,
    angle_difference,
    circular_equivariance,
    dci,
    detail,
    equivariance,
    factor_to_latent,
    fit_angle_readout,
    high_pass,
    interior,
    invariance_ratio,
    largest_variance_latent,
    latent_to_factor,
    linear_calibration,
    median_angle_error,
    mig,
    top1_retrieval,
)

N_TRAIN, N_TEST, K = 2000, 1000, 3
# The structural DCI tests below check how the scores are assembled, not the probe, so they use
# a small probe (5 stages of depth 2) for speed; the literature's probe has its own test.
fast_dci = partial(dci, n_estimators=5, max_depth=2)
RANGES = np.array([[-90.0, 90.0], [-30.0, 30.0], [-90.0, 90.0]])  # azimuth, elevation, light


def _factors(rng: np.random.Generator, n: int) -> np.ndarray:
    """(n, K) independent uniform factors in degrees."""
    return rng.uniform(RANGES[:, 0], RANGES[:, 1], size=(n, K))


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1234)
    return {
        "f_train": _factors(rng, N_TRAIN),
        "f_test": _factors(rng, N_TEST),
        "noise_train": rng.normal(size=(N_TRAIN, K)),
        "noise_test": rng.normal(size=(N_TEST, K)),
    }


@pytest.fixture(scope="module")
def dci_identity(data) -> dict:
    return fast_dci(data["f_train"], data["f_train"], data["f_test"], data["f_test"])


# --------------------------------------------------------------------------- MIG


def test_mig_identity_code_scores_near_one(data):
    result = mig(data["f_train"], data["f_train"])
    assert result["mig"] > 0.9
    assert len(result["mig_per_factor"]) == K
    assert all(g > 0.9 for g in result["mig_per_factor"])


def test_mig_random_code_scores_near_zero(data):
    result = mig(data["noise_train"], data["f_train"])
    assert 0.0 <= result["mig"] < 0.05


def test_mig_duplicated_latents_score_low(data):
    # Each factor is captured twice: the gap between the best and second-best latent vanishes.
    codes = np.hstack([data["f_train"], data["f_train"]])
    assert mig(codes, data["f_train"])["mig"] < 0.05


def test_mig_is_invariant_to_code_permutation_scale_and_shift(data):
    base = mig(data["f_train"], data["f_train"])["mig"]
    permuted = mig(data["f_train"][:, [2, 0, 1]], data["f_train"])["mig"]
    rescaled = mig(data["f_train"] * np.array([1e-3, 7.0, -2.0]) + 5.0, data["f_train"])["mig"]
    assert permuted == pytest.approx(base, abs=1e-12)
    # Negative scale flips bin order only; a rounding at a bin edge may move a sample or two.
    assert rescaled == pytest.approx(base, abs=2e-3)


def test_mig_constant_code_is_harmless(data):
    codes = np.hstack([data["f_train"], np.zeros((N_TRAIN, 1))])
    result = mig(codes, data["f_train"])
    assert result["mig"] == pytest.approx(mig(data["f_train"], data["f_train"])["mig"])


def test_mig_constant_factor_is_excluded(data):
    factors = np.hstack([data["f_train"][:, :2], np.full((N_TRAIN, 1), 15.0)])
    result = mig(data["f_train"], factors)
    two = mig(data["f_train"], data["f_train"][:, :2])
    assert result["mig_per_factor"][2] is None
    assert result["mig_per_factor"][:2] == two["mig_per_factor"]
    assert result["mig"] == pytest.approx(two["mig"])
    assert mig(data["f_train"], np.ones((N_TRAIN, 2))) == {
        "mig": 0.0,
        "mig_per_factor": [None, None],
    }


def test_mig_single_latent_uses_zero_as_second_best(data):
    result = mig(data["f_train"][:, :1], data["f_train"][:, :1])
    assert result["mig"] == pytest.approx(1.0)


def test_mig_discrete_factor_keeps_its_categories():
    # 7 unevenly spaced values (<= n_bins), so used as 7 categories. The code's equal-width bins
    # (width 5) merge 0..3, so it explains less than the full categorical entropy; forcing the
    # factor into the same equal-width bins hides that loss. Equal scores = categories ignored.
    rng = np.random.default_rng(0)
    values = np.array([0.0, 1.0, 2.0, 3.0, 50.0, 51.0, 100.0])
    factor = rng.choice(values, size=(3000, 1))
    code = np.hstack([factor, rng.normal(size=(3000, 1))])
    as_categories = mig(code, factor)
    as_bins = mig(code, factor, discrete_factors=[False])
    assert as_categories["mig"] < as_bins["mig"]
    assert as_bins["mig"] > 0.95


# --------------------------------------------------------------------------- DCI


def test_dci_identity_code_scores_near_one(dci_identity):
    assert dci_identity["disentanglement"] > 0.9
    assert dci_identity["completeness"] > 0.9
    assert dci_identity["informativeness"] > 0.8
    assert dci_identity["informativeness_train"] >= dci_identity["informativeness"] - 0.05
    assert np.asarray(dci_identity["importance"]).shape == (K, K)


def test_dci_random_code_scores_low(data):
    result = fast_dci(data["noise_train"], data["f_train"], data["noise_test"], data["f_test"])
    assert result["disentanglement"] < 0.2
    assert result["completeness"] < 0.2
    assert result["informativeness"] < 0.15  # chance is about 1/20


def test_dci_duplicated_latents_lose_completeness_only(data):
    codes_tr = np.hstack([data["f_train"], data["f_train"]])
    codes_te = np.hstack([data["f_test"], data["f_test"]])
    result = fast_dci(codes_tr, data["f_train"], codes_te, data["f_test"])
    assert result["disentanglement"] > 0.9
    # Importance split evenly over two of six codes: 1 - log 2 / log 6.
    assert result["completeness"] == pytest.approx(1 - math.log(2) / math.log(6), abs=0.1)


def test_permutation_keeps_scores_but_breaks_the_assignment(data, dci_identity):
    # DCI and MIG do not care which latent holds which factor; the paper's metrics read a fixed
    # assignment (z[0] = azimuth), so a permuted code fails there and only there.
    perm = [1, 2, 0]
    permuted = fast_dci(
        data["f_train"][:, perm], data["f_train"], data["f_test"][:, perm], data["f_test"]
    )
    assert permuted["informativeness"] == pytest.approx(dci_identity["informativeness"], abs=0.02)
    assert permuted["disentanglement"] == pytest.approx(dci_identity["disentanglement"], abs=0.02)
    assert permuted["disentanglement"] > 0.9
    assert equivariance(data["f_test"][:, 0], data["f_test"][:, 0]) > 0.99
    assert equivariance(data["f_test"][:, perm][:, 0], data["f_test"][:, 0]) < 0.1


def test_dci_is_invariant_to_code_scale(data, dci_identity):
    scale = np.array([1e3, 1e-2, 3.0])
    result = fast_dci(data["f_train"] * scale, data["f_train"], data["f_test"] * scale,
                      data["f_test"])
    for key in ("disentanglement", "completeness", "informativeness"):
        assert result[key] == pytest.approx(dci_identity[key], abs=1e-2)


def test_dci_is_deterministic_and_json_ready(data, dci_identity):
    args = (data["f_train"], data["f_train"], data["f_test"], data["f_test"])
    again = fast_dci(*args, random_state=0)
    assert again == dci_identity
    serial = fast_dci(*args, n_jobs=1)
    assert serial == dci_identity
    assert json.loads(json.dumps(again)) == again


def test_dci_constant_factor_is_excluded(data):
    f_tr = np.hstack([data["f_train"][:, :2], np.zeros((N_TRAIN, 1))])
    f_te = np.hstack([data["f_test"][:, :2], np.zeros((N_TEST, 1))])
    result = fast_dci(data["f_train"], f_tr, data["f_test"], f_te)
    two = fast_dci(data["f_train"], f_tr[:, :2], data["f_test"], f_te[:, :2])
    assert np.all(np.asarray(result["importance"])[:, 2] == 0.0)
    for key in ("disentanglement", "completeness", "informativeness", "informativeness_train"):
        assert result[key] == pytest.approx(two[key]), key


def test_dci_single_code_and_factor_has_no_nan(data):
    f_tr, f_te = data["f_train"][:, :1], data["f_test"][:, :1]
    result = fast_dci(f_tr, f_tr, f_te, f_te)
    assert result["disentanglement"] == 1.0
    assert result["completeness"] == 1.0


def test_dci_gbt_kwargs_reach_the_classifier(data, dci_identity):
    args = (data["f_train"], data["f_train"], data["f_test"], data["f_test"])
    assert fast_dci(*args, n_estimators=1)["importance"] != dci_identity["importance"]
    with pytest.raises(TypeError):
        dci(*args, no_such_arg=1)


def _disentanglement_lib_dci(x_tr, y_tr, x_te, y_te) -> dict:
    """DCI as disentanglement_lib defines it (dci.py), written out here independently:
    sklearn's default GradientBoostingClassifier per factor, importances |feature_importances_|,
    1 - entropy of each code's (factor's) normalised row (column), weighted by its share."""
    n_codes, n_factors = x_tr.shape[1], y_tr.shape[1]
    importance, accuracy = np.zeros((n_codes, n_factors)), []
    for k in range(n_factors):
        model = GradientBoostingClassifier(random_state=0).fit(x_tr, y_tr[:, k])
        importance[:, k] = np.abs(model.feature_importances_)
        accuracy.append(np.mean(model.predict(x_te) == y_te[:, k]))
    per_code = 1 - entropy(importance.T + 1e-11, base=n_factors)
    per_factor = 1 - entropy(importance + 1e-11, base=n_codes)
    return {"disentanglement": float(per_code @ (importance.sum(1) / importance.sum())),
            "completeness": float(per_factor @ (importance.sum(0) / importance.sum())),
            "informativeness": float(np.mean(accuracy))}


def test_dci_default_probe_is_disentanglement_libs():
    assert DCI_GBT_DEFAULTS == {"n_estimators": 100, "max_depth": 3}  # sklearn's defaults
    rng = np.random.default_rng(7)
    n_tr, n_te = 600, 300
    y = rng.integers(0, 5, size=(n_tr + n_te, 2)).astype(np.float64)  # discrete factors
    # A noisy code: factor 0 in two latents, factor 1 in one, plus a pure-noise latent.
    x = np.stack([y[:, 0] + rng.normal(0, 0.6, len(y)), y[:, 0] + y[:, 1] * 0.3,
                  y[:, 1] + rng.normal(0, 0.4, len(y)), rng.normal(size=len(y))], 1)
    ours = dci(x[:n_tr], y[:n_tr], x[n_tr:], y[n_tr:], random_state=0)
    theirs = _disentanglement_lib_dci(x[:n_tr], y[:n_tr], x[n_tr:], y[n_tr:])
    for key, value in theirs.items():
        assert ours[key] == pytest.approx(value, abs=1e-6), key
    assert 0.2 < ours["disentanglement"] < 0.95  # a code this mixed is far from 1


def test_inputs_are_validated(data):
    bad = data["f_train"].copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="codes"):
        mig(bad, data["f_train"])
    with pytest.raises(ValueError, match="same number of rows"):
        mig(data["f_train"][:10], data["f_train"])
    with pytest.raises(ValueError, match="widths"):
        dci(data["f_train"], data["f_train"], data["f_test"][:, :2], data["f_test"])
    with pytest.raises(ValueError, match="discrete_factors"):
        mig(data["f_train"], data["f_train"], discrete_factors=[True])


# --------------------------------------------------------------------------- equivariance


def test_equivariance_known_answers():
    rng = np.random.default_rng(0)
    f = rng.uniform(-90, 90, size=500)
    z = 0.02 * f + 0.05 * rng.normal(size=500)
    assert equivariance(z, f) > 0.95
    assert equivariance(-3.0 * z + 1.0, f) == pytest.approx(equivariance(z, f), abs=1e-12)
    assert equivariance(rng.normal(size=500), f) < 0.15
    assert equivariance(np.full(500, 2.0), f) == 0.0
    assert equivariance(z, np.zeros(500)) == 0.0


# --------------------------------------------------------------------------- invariance


def _batches(n_batches: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Batch ids (n_batches*size,) and varies flags: even batches vary the factor, odd don't."""
    ids = np.repeat(np.arange(n_batches), size)
    return ids, ids % 2 == 0


def test_invariance_ratio_zero_when_latent_ignores_fixed_batches():
    rng = np.random.default_rng(0)
    ids, varies = _batches(20, 20)
    # Constant within fixed batches (a different constant per batch is allowed), moving elsewhere.
    z = np.where(varies, rng.normal(size=ids.shape), ids * 0.37)
    # Not exactly 0: a batch mean of 20 equal floats can be off by an ulp.
    assert invariance_ratio(z, ids, varies) == pytest.approx(0.0, abs=1e-20)


def test_invariance_ratio_near_one_for_unrelated_latent():
    rng = np.random.default_rng(0)
    ids, varies = _batches(200, 20)
    assert invariance_ratio(rng.normal(size=ids.shape), ids, varies) == pytest.approx(1.0, abs=0.1)


def test_invariance_ratio_orders_latents_by_leakage():
    rng = np.random.default_rng(0)
    ids, varies = _batches(200, 20)
    noise = rng.normal(size=ids.shape)
    good = np.where(varies, noise, 0.1 * noise)
    bad = np.where(varies, noise, 0.5 * noise)
    assert invariance_ratio(good, ids, varies) == pytest.approx(0.01, rel=0.2)
    assert invariance_ratio(good, ids, varies) < invariance_ratio(bad, ids, varies)


def test_invariance_ratio_degenerate_cases():
    ids, varies = _batches(4, 5)
    assert invariance_ratio(np.zeros(20), ids, varies) == 1.0  # dead latent: 0 / 0
    assert invariance_ratio(np.where(varies, 0.0, np.arange(20.0)), ids, varies) == math.inf
    with pytest.raises(ValueError, match="fixed and"):
        invariance_ratio(np.arange(20.0), ids, np.ones(20, dtype=bool))
    mixed = varies.copy()
    mixed[0] = not mixed[0]
    with pytest.raises(ValueError, match="constant within"):
        invariance_ratio(np.arange(20.0), ids, mixed)


# --------------------------------------------------------------------------- baseline rule


def test_largest_variance_latent_uses_within_batch_variance():
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(10), 20)
    codes = 0.1 * rng.normal(size=(200, 8))
    codes[:, 5] = 100.0 * ids  # huge variance overall, none inside a batch: a decoy
    codes[:, 3] = rng.normal(size=200)  # the latent that moves within batches
    assert largest_variance_latent(codes, ids) == 3
    # Shuffling batch membership turns the decoy's between-batch spread into within-batch spread.
    assert largest_variance_latent(codes, rng.permutation(ids)) == 5


# --------------------------------------------------------------------------- calibration


def test_linear_calibration_recovers_planted_line():
    rng = np.random.default_rng(0)
    f = rng.uniform(-90, 90, size=1000)
    z = -0.015 * f + 0.4 + 0.01 * rng.normal(size=1000)
    slope, intercept = linear_calibration(z, f)
    assert slope == pytest.approx(-0.015, rel=0.01)
    assert intercept == pytest.approx(0.4, abs=0.005)
    assert factor_to_latent(30.0, slope, intercept) == pytest.approx(-0.015 * 30 + 0.4, abs=0.01)
    targets = np.array([-60.0, 0.0, 45.0])
    roundtrip = latent_to_factor(factor_to_latent(targets, slope, intercept), slope, intercept)
    np.testing.assert_allclose(roundtrip, targets, atol=1e-9)


def test_linear_calibration_degenerate_cases():
    with pytest.raises(ValueError, match="constant factor"):
        linear_calibration(np.arange(5.0), np.ones(5))
    with pytest.raises(ValueError, match="slope is 0"):
        latent_to_factor(1.0, 0.0, 0.0)


# --------------------------------------------------------------------------- angles


def _circle(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.uniform(0.0, 360.0, n)


def test_angle_difference_wraps():
    assert angle_difference(350.0, 10.0) == pytest.approx(-20.0)
    assert angle_difference(10.0, 350.0) == pytest.approx(20.0)
    assert angle_difference(0.0, 360.0) == pytest.approx(0.0)
    assert angle_difference(-90.0, 90.0) == pytest.approx(-180.0)


def _score(code_tr, f_tr, code_te, f_te):
    readout = fit_angle_readout(code_tr, f_tr, circular=True, lo=0.0)
    read = readout.degrees(code_te)
    return (circular_equivariance(f_te, read),
            median_angle_error(f_te, read, circular=True), read)


def test_a_circular_code_reads_back_its_angle():
    rng = np.random.default_rng(3)
    f_tr, f_te = _circle(rng, 2000), _circle(rng, 1000)

    def cos_sin(f):
        r = np.radians(f)
        return np.stack([np.cos(r), np.sin(r)], 1) + rng.normal(0, 0.01, (len(f), 2))

    eq, err, read = _score(cos_sin(f_tr), f_tr, cos_sin(f_te), f_te)
    assert eq > 0.99 and err < 1.0
    assert np.all((read >= 0) & (read < 360))
    # One latent sweeping the circle once, with its seam anywhere (here at 100 degrees), is
    # read back exactly by the wrapping line; a Pearson r would punish the seam.
    def seam(f):
        return ((f - 100.0) % 360.0)[:, None] * -0.01 + 3.0

    eq, err, _ = _score(seam(f_tr), f_tr, seam(f_te), f_te)
    assert eq > 0.999 and err < 0.1
    assert equivariance(seam(f_te)[:, 0], f_te) < 0.9


def test_a_folded_code_does_not_read_back_its_angle():
    rng = np.random.default_rng(4)
    f_tr, f_te = _circle(rng, 2000), _circle(rng, 1000)
    # |angle from 180|: both sides of the fold give one value, as a folded latent does.
    def fold(f):
        return np.abs(angle_difference(f, 180.0))[:, None]

    eq, err, _ = _score(fold(f_tr), f_tr, fold(f_te), f_te)
    assert eq < 0.8 and err > 20.0

    def cos_abs_sin(f):
        r = np.radians(f)
        return np.stack([np.cos(r), np.abs(np.sin(r))], 1)

    eq, err, _ = _score(cos_abs_sin(f_tr), f_tr, cos_abs_sin(f_te), f_te)
    assert eq < 0.8 and err > 20.0


def test_unrelated_code_scores_near_zero_on_a_circle():
    rng = np.random.default_rng(5)
    f_tr, f_te = _circle(rng, 2000), _circle(rng, 1000)
    eq, err, _ = _score(rng.normal(size=(2000, 1)), f_tr, rng.normal(size=(1000, 1)), f_te)
    assert eq < 0.15 and err > 60.0


def test_a_linear_readout_inverts_a_line():
    f = np.linspace(-90, 90, 50)
    readout = fit_angle_readout((0.02 * f - 1.0)[:, None], f, circular=False)
    assert np.allclose(readout.degrees((0.02 * f - 1.0)[:, None]), f)
    assert median_angle_error(f, f + 3.0, circular=False) == pytest.approx(3.0)


def test_top1_retrieval_known_answers():
    rng = np.random.default_rng(6)
    gallery = rng.normal(size=(10, 50))
    labels = np.arange(10)
    assert top1_retrieval(gallery + rng.normal(0, 0.01, gallery.shape), gallery, labels) == 1.0
    # Every query equal to one gallery row: exactly one of ten is right.
    assert top1_retrieval(np.repeat(gallery[:1], 10, 0), gallery, labels) == pytest.approx(0.1)
    with pytest.raises(ValueError, match="labels"):
        top1_retrieval(gallery, gallery, labels[:5])


def _dots(rng: np.random.Generator, n: int = 6, size: int = 32, disc: bool = True) -> np.ndarray:
    """(n, size, size) images: a disc (or a flat field) with a few 2-pixel dark dots (eyes, a
    mouth)."""
    yy, xx = np.mgrid[:size, :size]
    r2 = (yy - size / 2) ** 2 + (xx - size / 2) ** 2
    disc = 0.6 * (r2 < (size / 3) ** 2) if disc else np.full((size, size), 0.6)
    out = np.repeat(disc[None], n, axis=0).astype(np.float64)
    for img in out:
        for y, x in rng.integers(size // 3, 2 * size // 3, size=(3, 2)):
            img[y : y + 2, x : x + 2] = 0.1
    return out


def test_detail_known_answers():
    from scipy.ndimage import gaussian_filter

    truth = _dots(np.random.default_rng(0))
    assert detail(truth, truth, 1.0) == 1.0
    assert detail(np.full_like(truth, 0.4), truth, 1.0) == pytest.approx(0.0, abs=1e-12)
    # A blur of the truth has a low MSE and little detail. A rendering with the right fine
    # structure under the wrong shading (0.15 brighter everywhere) has a higher MSE, and all of
    # the detail: MSE ranks the blur above it, detail does not.
    blur = gaussian_filter(truth, (0, 2, 2))
    shaded = truth + 0.15
    assert np.mean((blur - truth) ** 2) < np.mean((shaded - truth) ** 2)
    assert detail(blur, truth, 1.0) < 0.2 and detail(shaded, truth, 1.0) == pytest.approx(1.0)
    # Fine structure in the wrong places scores below none, as in MSE: dots one pixel off, or
    # another image's dots. Structure all images share (the disc's edge) counts as detail.
    assert detail(np.roll(truth, 1, axis=2), truth, 1.0) < 0.0
    assert detail(truth[::-1], truth, 1.0) > 0.0
    flat = _dots(np.random.default_rng(0), disc=False)
    assert detail(flat[::-1], flat, 1.0) < 0.0
    # Half the contrast keeps half the fine structure's amplitude: 1 - (1/2)^2.
    assert detail(0.5 * truth + 0.2, truth, 1.0) == pytest.approx(0.75)


def test_interior_leaves_the_outline_out():
    img = np.zeros((2, 16, 16))
    img[:, 3:13, 4:12] = 0.5  # a 10 x 8 object
    assert interior(img, 0).all()
    inner = interior(img, 2)
    assert inner.shape == img.shape and inner.sum() == 2 * 6 * 4
    assert inner[0, 5:11, 6:10].all()


def test_detail_inside_the_outline_scores_a_blur_zero():
    from scipy.ndimage import gaussian_filter

    truth = _dots(np.random.default_rng(0))
    blur = gaussian_filter(truth, (0, 2, 2))
    inside = interior(truth, 3)
    # Over the whole image the blur keeps part of the disc's edge; inside, it keeps almost none
    # of the dots, while the truth's own dots still score 1 there.
    assert detail(blur, truth, 1.0, inside) < 0.05
    assert detail(blur, truth, 1.0, inside) < 0.5 * detail(blur, truth, 1.0)
    assert detail(truth, truth, 1.0, inside) == 1.0
    with pytest.raises(ValueError, match="mask"):
        detail(truth, truth, 1.0, inside[:2])


def test_detail_rejects_bad_input():
    truth = _dots(np.random.default_rng(1))
    with pytest.raises(ValueError, match="differ in shape"):
        detail(truth[:2], truth, 1.0)
    with pytest.raises(ValueError, match="no fine structure"):
        detail(truth, np.zeros_like(truth), 1.0)
    with pytest.raises(ValueError, match="sigma must be a positive"):
        high_pass(truth, 0.0)
    with pytest.raises(ValueError, match="at least 2 dims"):
        high_pass(np.ones(5), 1.0)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="margin must be an int"):
            interior(truth, bad)
