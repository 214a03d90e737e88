"""The model-free references of bench/retrieval_floor.py on small random grids."""

from __future__ import annotations

import numpy as np
import pytest

from bench.retrieval_floor import blurred, fine_structure, grid_score, shrunk
from evaluate.stage import Detail, leave_one_out_mean

DETAIL = Detail(sigma=1.0, margin=0)  # random images have no outline


def _grid(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((6, 3, 1, 12, 12)).astype(np.float32)


def test_the_truth_scores_zero_error_and_full_retrieval() -> None:
    t = _grid()
    assert grid_score(t, t, DETAIL) == (0.0, 1.0, 1.0)


def test_keeping_none_of_the_identity_is_the_identity_free_oracle() -> None:
    t = _grid()
    np.testing.assert_allclose(shrunk(t, 1.0), t, atol=1e-6)
    oracle = shrunk(t, 0.0)
    for b in range(t.shape[1]):
        np.testing.assert_allclose(oracle[:, b], leave_one_out_mean(t[:, b]), atol=1e-6)
    # each row is the mean of the others: never nearest its own identity on random images
    assert grid_score(oracle, t, DETAIL)[1] == 0.0


def test_error_grows_with_blur_and_with_identity_lost() -> None:
    t = _grid(1)
    blur = [grid_score(blurred(t, s), t, DETAIL) for s in (0.5, 1.0, 2.0)]
    keep = [grid_score(shrunk(t, k), t, DETAIL)[0] for k in (0.9, 0.5, 0.0)]
    assert [m for m, _, _ in blur] == sorted(m for m, _, _ in blur) and blur[0][0] > 0
    assert keep == sorted(keep) and keep[0] > 0
    # ... and detail falls with blur: the more blur, the less fine structure is left.
    assert [d for _, _, d in blur] == sorted((d for _, _, d in blur), reverse=True)
    assert blur[0][2] < 1.0
    assert blurred(t, 1.0).shape == t.shape  # blurs each image, not across identities or views
    np.testing.assert_allclose(blurred(t, 1.0)[2, 1], blurred(t[2:3, 1:2], 1.0)[0, 0], atol=1e-6)


def test_fine_structure_tells_a_flat_output_from_misplaced_structure() -> None:
    t = _grid(2)
    assert fine_structure(t, t, DETAIL) == pytest.approx((1.0, 1.0))
    # Flat: no fine structure at all (a strong blur). Misplaced: the truth's fine structure at
    # another identity's place, the same energy, uncorrelated. Both score detail ~0 or below.
    flat, _ = fine_structure(blurred(t, 3.0), t, DETAIL)
    moved, r_moved = fine_structure(np.roll(t, 1, axis=0), t, DETAIL)
    assert flat < 0.1 and moved == pytest.approx(1.0, abs=0.2) and abs(r_moved) < 0.2
    half = fine_structure(0.5 * t, t, DETAIL)
    assert half[0] < 1.0  # half contrast: less energy ...
    # ... and detail = 2 c sqrt(E) - E holds exactly.
    for pred in (blurred(t, 0.7), np.roll(t, 1, axis=0), 0.5 * t + 0.25):
        e, r = fine_structure(pred, t, DETAIL)
        assert grid_score(pred, t, DETAIL)[2] == pytest.approx(2 * r * np.sqrt(e) - e, abs=1e-9)
