from __future__ import annotations

import numpy as np
import pytest

from core.config import build
from core.params import Params
from core.vocab import FACTORS, INTRINSIC
from render.batches import kind_sequence, plan_split
from tests.conftest import tiny_params_dict


def _params(**faces_overrides) -> Params:
    d = tiny_params_dict()
    d["render"]["faces"].update(faces_overrides)
    return build(Params, d)


def _plans(p: Params, split="train", dataset="faces"):
    ds = p.render.dataset(dataset)
    return plan_split(ds, seed=p.seed, dataset=dataset, split=split,
                      batch_size=p.render.batch_size, num_identities=ds.identities.get(split))


@pytest.mark.parametrize("dataset", ["faces", "chairs"])
def test_each_kind_varies_only_its_own_factor(dataset):
    p = _params()
    ds = p.render.dataset(dataset)
    plans = _plans(p, dataset=dataset)
    assert {pl.kind for pl in plans} == set(ds.kinds)
    for pl in plans:
        varies = {name for j, name in enumerate(FACTORS) if np.ptp(pl.factors[:, j]) > 0}
        if pl.kind == INTRINSIC:
            assert len(set(pl.identity.tolist())) == len(pl.identity)  # all distinct
            assert varies == set(ds.other_factors)  # non-disentangled factors are intrinsic
        else:
            assert len(set(pl.identity.tolist())) == 1  # one identity
            assert varies == {pl.kind}


def test_counts_per_kind_follow_params():
    p = _params()
    seq = kind_sequence(p.render.faces, p.seed, "faces", "train")
    for kind, n in p.render.faces.batches["train"].items():
        assert seq.count(kind) == n


def test_factor_values_respect_and_follow_the_ranges():
    p = _params(factors={"azimuth": [10, 20], "elevation": [-5, 5], "light_azimuth": [30, 31]})
    f = np.concatenate([pl.factors for pl in _plans(p)])
    assert f.dtype == np.float32
    for j, (lo, hi) in enumerate([(10, 20), (-5, 5), (30, 31)]):
        assert f[:, j].min() >= lo and f[:, j].max() <= hi
    q = _params(factors={"azimuth": [-60, -50], "elevation": [-5, 5], "light_azimuth": [30, 31]})
    g = np.concatenate([pl.factors for pl in _plans(q)])
    assert g[:, 0].max() <= -50 and not np.array_equal(f, g)


def test_identities_stay_within_the_split():
    p = _params()
    for split in ("train", "test"):
        ids = np.concatenate([pl.identity for pl in _plans(p, split)])
        assert ids.min() >= 0 and ids.max() < p.render.faces.identities.get(split)


def test_plans_are_deterministic_and_seeded():
    a, b = _plans(_params()), _plans(_params())
    for x, y in zip(a, b, strict=True):
        assert x.kind == y.kind
        assert np.array_equal(x.identity, y.identity) and np.array_equal(x.factors, y.factors)
    d = tiny_params_dict()
    d["seed"] = 1
    c = _plans(build(Params, d))
    assert any(not np.array_equal(x.factors, z.factors) for x, z in zip(a, c, strict=True))


def test_a_slice_of_the_plan_equals_the_whole_plan_sliced():
    p = _params()
    ds = p.render.faces
    whole = _plans(p)
    part = plan_split(ds, seed=0, dataset="faces", split="train", batch_size=4,
                      num_identities=6, start=2, stop=5)
    for x, y in zip(whole[2:5], part, strict=True):
        assert np.array_equal(x.factors, y.factors) and x.kind == y.kind


@pytest.mark.parametrize("dataset", ["faces", "chairs"])
def test_test_batches_put_every_identity_on_one_grid_of_views(dataset):
    d = tiny_params_dict()
    ds_d = d["render"][dataset]
    n_ids = ds_d["identities"]["test"]
    ds_d["batches"]["test"] = {**{k: n_ids + 1 for k in ds_d["factors"]}, "intrinsic": 1}
    p = build(Params, d)
    ds = p.render.dataset(dataset)
    plans = _plans(p, split="test", dataset=dataset)
    for kind in ds.factors:
        grid = [pl for pl in plans if pl.kind == kind]
        # The n-th batch shows identity n (wrapping), all at exactly the same views.
        assert [int(pl.identity[0]) for pl in grid] == [*range(n_ids), 0]
        assert all(np.array_equal(pl.factors, grid[0].factors) for pl in grid)
        j = FACTORS.index(kind)
        lo, hi = ds.factor_range(kind)
        values = grid[0].factors[:, j].astype(np.float64)
        if hi - lo >= 360:  # a circle: evenly spaced, the end (= the start) left out
            assert np.allclose(np.diff(values), (hi - lo) / len(values), atol=1e-4)
            assert len(np.unique(np.round(values % 360, 3))) == len(values)
        else:
            assert values[0] == lo and values[-1] == hi and np.all(np.diff(values) > 0)
        for k, name in enumerate(FACTORS):  # every other factor at the middle of its range
            if name != kind:
                assert np.all(grid[0].factors[:, k] == np.float32(sum(ds.factor_range(name)) / 2))
    # The training split is still drawn at random.
    train = [pl for pl in _plans(p, dataset=dataset) if pl.kind != INTRINSIC]
    assert not all(np.array_equal(pl.factors, train[0].factors) for pl in train)
