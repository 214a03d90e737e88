"""BaselFaces on tiny synthetic files written in the exact BFM 2017 .h5 schema."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import trimesh

from core.seeds import identity_rng
from render.bfm import MAX_SIGMA, BaselFaces, BfmIdentity

K = 6  # components in the synthetic file
RADIUS_MM = 90.0


def _orthonormal(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((rows, cols)))
    return q


def write_bfm(path: Path, *, drop: str | None = None, flip: bool = False,
              cells_mx3: bool = False, **replace: np.ndarray) -> Path:
    """An icosphere 'face' (mm, off-centre like a real scan) with K random orthonormal shape and
    colour components; `drop` leaves one dataset out, `replace` swaps one in by name."""
    rng = np.random.default_rng(7)
    sphere = trimesh.creation.icosphere(subdivisions=2)  # 162 vertices, outward CCW faces
    mean = sphere.vertices * RADIUS_MM + [3.0, 20.0, -5.0]
    n = len(mean)
    cells = sphere.faces[:, [0, 2, 1]] if flip else sphere.faces
    data = {
        "shape/model/mean": mean.reshape(-1).astype(np.float32),
        "shape/model/pcaBasis": _orthonormal(rng, 3 * n, K).astype(np.float32),
        "shape/model/pcaVariance": (np.array([40.0, 20, 10, 5, 2, 1]) ** 2).astype(np.float32),
        "shape/model/noiseVariance": np.float32(0.1),
        "shape/representer/points": mean.T.astype(np.float32),
        "shape/representer/cells": (cells if cells_mx3 else cells.T).astype(np.uint32),
        "color/model/mean": np.full(3 * n, 0.5, np.float32),
        "color/model/pcaBasis": _orthonormal(rng, 3 * n, K).astype(np.float32),
        "color/model/pcaVariance": np.full(K, 4.0, np.float32),
        "color/representer/points": mean.T.astype(np.float32),
        "expression/model/mean": np.zeros(3 * n, np.float32),
        "expression/model/pcaBasis": _orthonormal(rng, 3 * n, 3).astype(np.float32),
        "expression/model/pcaVariance": np.ones(3, np.float32),
    }
    data.update({k.replace("__", "/"): v for k, v in replace.items()})
    with h5py.File(path, "w") as f:
        for name, value in data.items():
            if name != drop:
                f.create_dataset(name, data=value)
    return path


@pytest.fixture
def bfm_file(tmp_path: Path) -> Path:
    return write_bfm(tmp_path / "model2017-1_bfm_nomouth.h5")


def test_loads_and_samples_valid_meshes(bfm_file: Path) -> None:
    faces = BaselFaces(0, "faces", path=bfm_file, components=4)
    assert faces.num_vertices == 162 and faces.num_faces == 320
    for i in range(20):
        m = faces.mesh("train", i)
        assert m.vertices.shape == (162, 3) and m.faces.shape == (320, 3)
        assert np.isfinite(m.vertices).all()
        assert np.linalg.norm(m.vertices, axis=1).max() <= 1.0
        assert m.colors.min() >= 0.0 and m.colors.max() <= 1.0


def test_frame_is_fixed_from_the_mean(bfm_file: Path) -> None:
    faces = BaselFaces(0, "faces", path=bfm_file, components=4)
    # Zero coefficients give the mean, centred and scaled by the one fixed transform.
    m = faces.build(BfmIdentity(shape=np.zeros(4), color=np.zeros(4)))
    np.testing.assert_allclose((m.vertices.max(0) + m.vertices.min(0)) / 2, 0, atol=1e-5)
    radius = np.linalg.norm(m.vertices, axis=1).max()
    assert 0.5 < radius < 1.0  # margin left for identities, but not a tiny head
    np.testing.assert_allclose(m.colors, 0.5, atol=1e-6)
    # Identities are not re-normalised: their sizes differ in the fixed frame.
    radii = [np.linalg.norm(faces.mesh("train", i).vertices, axis=1).max() for i in range(10)]
    assert np.ptp(radii) > 0.01


def test_coefficients_scale_with_sqrt_variance(bfm_file: Path) -> None:
    faces = BaselFaces(0, "faces", path=bfm_file, components=2)
    with h5py.File(bfm_file) as f:
        basis = f["shape/model/pcaBasis"][:, 0].astype(float)
    zero = faces.build(BfmIdentity(shape=np.zeros(2), color=np.zeros(2))).vertices
    one = faces.build(BfmIdentity(shape=np.array([1.0, 0.0]), color=np.zeros(2))).vertices
    # One standard deviation of component 0 moves the mesh by 40 mm * basis, in object units.
    np.testing.assert_allclose((one - zero).reshape(-1), 40.0 * basis * faces.scale, atol=1e-5)


def test_deterministic_and_distinct(bfm_file: Path) -> None:
    a = BaselFaces(3, "faces", path=bfm_file, components=K)
    b = BaselFaces(3, "faces", path=bfm_file, components=K)
    m1, m2 = a.mesh("train", 5), b.mesh("train", 5)
    np.testing.assert_array_equal(m1.vertices, m2.vertices)
    np.testing.assert_array_equal(m1.colors, m2.colors)
    assert not np.allclose(a.mesh("train", 6).vertices, m1.vertices)
    assert not np.allclose(a.mesh("test", 5).vertices, m1.vertices)
    assert not np.allclose(a.mesh("test", 5).colors, m1.colors)
    other_seed = BaselFaces(4, "faces", path=bfm_file, components=K).mesh("train", 5)
    assert not np.allclose(other_seed.vertices, m1.vertices)


def test_sampling_uses_only_the_given_generator(bfm_file: Path) -> None:
    faces = BaselFaces(0, "faces", path=bfm_file, components=K)
    state = np.random.get_state()
    p = faces.sample_identity(np.random.default_rng(11))
    q = faces.sample_identity(np.random.default_rng(11))
    assert np.random.get_state()[1].tolist() == state[1].tolist()
    np.testing.assert_array_equal(p.shape, q.shape)
    np.testing.assert_array_equal(p.color, q.color)
    assert np.abs(p.shape).max() <= MAX_SIGMA and np.abs(p.color).max() <= MAX_SIGMA


def test_shapes_that_would_leave_the_sphere_are_shrunk(
    bfm_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A frame with room for only 0.2 standard deviations: most raw draws would leave it.
    monkeypatch.setattr("render.bfm._FRAME_SIGMAS", 0.2)
    faces = BaselFaces(0, "faces", path=bfm_file, components=K)
    shrunk = 0
    for i in range(20):
        raw = np.clip(identity_rng(0, "faces", "train", i).standard_normal(2 * K), -3, 3)
        p = faces.sample_identity(identity_rng(0, "faces", "train", i))
        np.testing.assert_array_equal(p.color, raw[K:])  # colour is never touched
        radius = np.linalg.norm(faces.build(p).vertices, axis=1).max()
        assert radius <= 1.0
        if not np.array_equal(p.shape, raw[:K]):
            shrunk += 1
            # Shrunk along its own direction, just up to the sphere.
            ratio = p.shape / raw[:K]
            np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)
            assert 0 < ratio[0] < 1 and radius > 0.999
    assert shrunk >= 10
    with pytest.raises(ValueError, match="leaves the unit sphere"):
        faces.build(BfmIdentity(shape=np.full(K, 3.0), color=np.zeros(K)))


@pytest.mark.parametrize("flip", [False, True])
@pytest.mark.parametrize("cells_mx3", [False, True])
def test_cells_layout_and_winding(tmp_path: Path, flip: bool, cells_mx3: bool) -> None:
    path = write_bfm(tmp_path / "m.h5", flip=flip, cells_mx3=cells_mx3)
    m = BaselFaces(0, "faces", path=path, components=2).mesh("train", 0)
    v = m.vertices[m.faces]
    normals = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
    outward = (normals * v.mean(1)).sum(1)  # the mean sphere is centred at the origin
    assert (outward > 0).mean() > 0.99  # counter-clockwise seen from outside


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.h5: Basel Face Model file not found"):
        BaselFaces(0, "faces", path=tmp_path / "nope.h5")


def test_not_hdf5(tmp_path: Path) -> None:
    path = tmp_path / "model.h5"
    path.write_text("not hdf5")
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        BaselFaces(0, "faces", path=path)


@pytest.mark.parametrize("name", [
    "shape/model/mean", "shape/model/pcaBasis", "shape/model/pcaVariance",
    "color/model/mean", "color/model/pcaBasis", "color/model/pcaVariance",
    "shape/representer/points", "shape/representer/cells",
])
def test_missing_dataset(tmp_path: Path, name: str) -> None:
    path = write_bfm(tmp_path / "model.h5", drop=name)
    with pytest.raises(ValueError, match=f"model.h5: missing dataset '{name}'.*Basel Face Model"):
        BaselFaces(0, "faces", path=path, components=2)


@pytest.mark.parametrize(("name", "value", "message"), [
    ("shape/model/mean", np.zeros(100, np.float32), "'shape/model/mean' has shape"),
    ("shape/model/pcaBasis", np.zeros((30, K), np.float32), "'shape/model/pcaBasis' has shape"),
    ("shape/model/pcaVariance", np.ones(K + 1, np.float32), "'shape/model/pcaVariance' has shape"),
    ("color/model/mean", np.zeros(3 * 10, np.float32), "'color/model/mean' has 30 values"),
    ("shape/representer/points", np.zeros((3, 10), np.float32), "'shape/representer/points'"),
    ("shape/representer/cells", np.full((3, 4), 999, np.uint32), "indexes outside"),
    ("shape/representer/cells", np.zeros((4, 4), np.float32), "expected integer"),
    ("shape/model/pcaVariance", np.full(K, -1.0, np.float32), "negative variances"),
])
def test_malformed_dataset(tmp_path: Path, name: str, value: np.ndarray, message: str) -> None:
    path = write_bfm(tmp_path / "model.h5", **{name.replace("/", "__"): value})
    with pytest.raises(ValueError, match=message):
        BaselFaces(0, "faces", path=path, components=2)


def test_components_checked(bfm_file: Path) -> None:
    with pytest.raises(ValueError, match="components=7 but dataset 'shape/model/pcaBasis'"):
        BaselFaces(0, "faces", path=bfm_file, components=K + 1)
    with pytest.raises(ValueError, match="positive integer"):
        BaselFaces(0, "faces", path=bfm_file, components=0)
    faces = BaselFaces(0, "faces", path=bfm_file, components=2)
    with pytest.raises(ValueError, match="expected 2 shape and colour coefficients"):
        faces.build(BfmIdentity(shape=np.zeros(3), color=np.zeros(2)))
