"""bench/variant_render.py: a factor's minibatches span their window, and nothing else moves;
the scene light stays put when the camera tilts."""

from __future__ import annotations

import numpy as np
import pytest

from bench import variant_render
from bench.variant_render import parse_windows, scene_light, windowed
from core.config import build
from core.params import Params
from core.seeds import stream
from core.vocab import FACTORS
from render import batches, views
from tests.conftest import tiny_params_dict


def _plan(kind: str, windows: dict[str, float], i: int = 0) -> batches.BatchPlan:
    ds = build(Params, tiny_params_dict()).render.faces
    return windowed(kind, stream(0, "batch", "faces", "train", i), ds=ds, batch_size=4,
                    num_identities=ds.identities.train, windows=windows)


@pytest.mark.parametrize("i", range(5))
def test_a_windowed_minibatch_spans_its_window_inside_the_range(i: int) -> None:
    ds = build(Params, tiny_params_dict()).render.faces
    lo, hi = ds.factor_range("elevation")
    whole, part = _plan("elevation", {}, i), _plan("elevation", {"elevation": 0.25}, i)
    j = FACTORS.index("elevation")
    v = part.factors[:, j]
    assert lo <= v.min() and v.max() <= hi
    assert np.ptp(v) <= 0.25 * (hi - lo) + 1e-4
    # The window is the whole range's draw scaled: a spread, a quarter of the range's.
    np.testing.assert_allclose(np.ptp(v), 0.25 * np.ptp(whole.factors[:, j]), rtol=1e-5)
    # The images keep their order along the factor, identity and the held factors.
    np.testing.assert_array_equal(np.argsort(v), np.argsort(whole.factors[:, j]))
    np.testing.assert_array_equal(part.identity, whole.identity)
    others = [k for k in range(len(FACTORS)) if k != j]
    np.testing.assert_array_equal(part.factors[:, others], whole.factors[:, others])


def test_other_kinds_are_drawn_as_the_render_stage_draws_them() -> None:
    for kind in ("azimuth", "light_azimuth", "intrinsic"):
        a, b = _plan(kind, {"elevation": 0.5}), _plan(kind, {})
        np.testing.assert_array_equal(a.factors, b.factors)
        np.testing.assert_array_equal(a.identity, b.identity)


def test_the_plan_is_restored_after_use_and_bad_windows_are_refused() -> None:
    assert batches.plan_batch is variant_render._plan_batch
    assert views.light_direction is variant_render._light_direction
    ds = build(Params, tiny_params_dict()).render.faces
    assert parse_windows(["elevation=0.5"], ds) == {"elevation": 0.5}
    for bad in ("elevation=0", "elevation=1.5", "elevation=x", "identity=0.5"):
        with pytest.raises(SystemExit, match="--window"):
            parse_windows([bad], ds)


def test_the_scene_light_stays_put_when_the_camera_tilts() -> None:
    light = scene_light(0.0)
    level, up = views.View(0.0, 0.0, 30.0), views.View(0.0, 25.0, 30.0)
    np.testing.assert_allclose(light(level), light(up))  # the camera's tilt moves no light
    np.testing.assert_allclose(light(level), views.light_direction(level))  # level: as before
    assert not np.allclose(views.light_direction(up), views.light_direction(level))
    assert light(up)[1] == pytest.approx(0.0)  # on the horizon
    np.testing.assert_allclose(np.linalg.norm(scene_light(40.0)(up)), 1.0)
    assert scene_light(40.0)(up)[1] == pytest.approx(np.sin(np.radians(40.0)))
