"""The Blender (Cycles) backend: same protocol, same view convention and light semantics as the
pyrender backend; deterministic; flat memory over hundreds of renders; a clear error without bpy.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import replace

import numpy as np
import pytest

from core.params import RenderConfig, load_params
from render.backends import Backend, make_backend
from render.mesh import TriMesh
from render.shading import GAMMA
from render.views import View
from tests.conftest import REPO

HAVE_BPY = importlib.util.find_spec("bpy") is not None
needs_bpy = pytest.mark.skipif(
    not HAVE_BPY, reason="bpy is not installed (pip install 'dcign[blender]'; CI installs it)"
)


def config(*overrides: str) -> RenderConfig:
    return load_params(REPO / "params.yaml", ("render.backend=blender", *overrides)).render


@pytest.fixture(scope="module")
def heads():
    from render.faces import AnnyHeads

    return AnnyHeads(seed=0)


@pytest.fixture(scope="module")
def chairs():
    from render.chairs import ParametricChairs

    return ParametricChairs(seed=0, dataset="chairs")


def square(albedo: tuple[float, float, float]) -> TriMesh:
    """A flat square facing +z (the camera at elevation 0), inside the unit sphere."""
    v = np.array([[-0.6, -0.6, 0], [0.6, -0.6, 0], [0.6, 0.6, 0], [-0.6, 0.6, 0]], np.float32)
    f = np.array([[0, 1, 2], [0, 2, 3]], np.int32)
    return TriMesh(v, f, np.tile(np.array(albedo, np.float32), (4, 1)))


def silhouette_iou(a: np.ndarray, b: np.ndarray, threshold: int = 8) -> float:
    sa, sb = a.max(0) > threshold, b.max(0) > threshold
    return float((sa & sb).sum() / (sa | sb).sum())


def rss_mb() -> float:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def test_missing_bpy_is_a_clear_error_naming_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "bpy", None)  # makes `import bpy` fail, as if absent
    with pytest.raises(ImportError, match=r"pip install 'dcign\[blender\]'"):
        make_backend(config())


@needs_bpy
@pytest.mark.parametrize("channels", [1, 3])
def test_output_follows_the_backend_protocol(heads, chairs, channels):
    with make_backend(config("render.image_size=40", f"render.channels={channels}")) as b:
        assert isinstance(b, Backend) and b.version().startswith("blender ")
        for mesh in (heads.mesh("train", 0), chairs.mesh("train", 0)):
            img = b.render(mesh, View(30.0, 20.0, 45.0))
            assert img.dtype == np.uint8 and img.shape == (channels, 40, 40)
            assert img[:, 0, 0].max() == 0 and img[:, -1, -1].max() == 0  # black background
            assert img.max() > 100  # the object is there and lit
    if channels == 3:  # chairs have coloured parts: RGB must not collapse to grey
        assert not (np.array_equal(img[0], img[1]) and np.array_equal(img[1], img[2]))


@needs_bpy
def test_render_after_close_is_an_error(heads):
    b = make_backend(config("render.image_size=16"))
    b.close()
    with pytest.raises(RuntimeError, match="close"):
        b.render(heads.mesh("train", 0), View(0.0, 0.0, 0.0))


@needs_bpy
def test_lighting_matches_the_gl_formula_on_a_flat_square():
    """albedo * (ambient + diffuse * n.l), display-encoded, as the GL backend does it."""
    cfg = config("render.image_size=32", "render.channels=3")
    albedo = np.array([0.8, 0.5, 0.2])
    # The square faces the level camera; a scene light at elevation e is cos(e) off it.
    tilt = np.cos(np.radians(cfg.light.elevation or 0.0))
    with make_backend(cfg) as b:
        for light_azimuth, n_dot_l in ((0.0, tilt), (60.0, 0.5 * tilt), (90.0, 0.0)):
            img = b.render(square(tuple(albedo)), View(0.0, 0.0, light_azimuth))
            radiance = albedo * (cfg.light.ambient + cfg.light.diffuse * n_dot_l)
            expected = np.rint(np.clip(radiance, 0, 1) ** (1 / GAMMA) * 255)
            centre = img[:, 16, 16].astype(float)
            np.testing.assert_allclose(centre, expected, atol=2, err_msg=f"{light_azimuth=}")


@needs_bpy
def test_silhouettes_and_lit_side_agree_with_pyrender(heads):
    cfg = config("render.image_size=96", "render.channels=1", "render.blender.samples=4")
    with make_backend(replace(cfg, backend="pyrender")) as gl, make_backend(cfg) as bl:
        views = [View(0.0, 0.0, 0.0), View(45.0, 20.0, 60.0), View(-80.0, -25.0, -30.0),
                 View(90.0, 0.0, 90.0)]
        for i, view in enumerate(views):
            mesh = heads.mesh("test", i)
            iou = silhouette_iou(gl.render(mesh, view), bl.render(mesh, view))
            assert iou >= 0.97, f"{view}: silhouette IoU {iou:.3f}"
        mesh, half = heads.mesh("test", 0), cfg.image_size // 2
        for light_azimuth in (90.0, -90.0):  # +90 = light from the camera's right (+x)
            for img in (gl.render(mesh, View(0.0, 0.0, light_azimuth)),
                        bl.render(mesh, View(0.0, 0.0, light_azimuth))):
                right = img[0, :, half:].mean() - img[0, :, :half].mean()
                assert np.sign(right) == np.sign(light_azimuth) and abs(right) > 5


@needs_bpy
def test_renders_are_deterministic_within_and_across_instances(heads):
    cfg = config("render.image_size=48", "render.channels=3", "render.blender.samples=2")
    mesh, view = heads.mesh("train", 3), View(20.0, 10.0, 45.0)
    with make_backend(cfg) as a:
        first = a.render(mesh, view)
        a.render(heads.mesh("train", 4), View(-40.0, 0.0, 0.0))  # other state in between
        again = a.render(heads.mesh("train", 3), view)  # an equal mesh, another object
        with make_backend(cfg) as b:  # two live instances in one process
            other = b.render(mesh, view)
    assert np.array_equal(first, again) and np.array_equal(first, other)
    with make_backend(replace(cfg, blender=replace(cfg.blender, samples=1))) as c:
        assert not np.array_equal(first, c.render(mesh, view))  # samples reach Cycles


@needs_bpy
def test_hundreds_of_renders_keep_a_flat_memory_profile(heads, chairs):
    meshes = [heads.mesh("train", i) for i in range(3)] + [chairs.mesh("train", i)
                                                           for i in range(3)]
    rng = np.random.default_rng(0)
    with make_backend(config("render.image_size=32", "render.blender.samples=1")) as b:
        for i in range(30):  # warm-up: shader compilation, allocator pools, image buffers
            b.render(meshes[i % 6], View(*rng.uniform(-60, 60, 3)))
        before = rss_mb()
        for i in range(300):  # a new mesh every image: geometry replaced 300 times
            b.render(meshes[i % 6], View(*rng.uniform(-60, 60, 3)))
        grown = rss_mb() - before
    assert grown < 40, f"RSS grew {grown:.1f} MB over 300 renders"  # observed: < 1 MB


@needs_bpy
def test_close_removes_everything_the_backend_made(heads):
    import bpy

    counts = lambda: (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.scenes))  # noqa: E731
    make_backend(config("render.image_size=16")).close()  # first use resets bpy once
    before = counts()
    b = make_backend(config("render.image_size=16"))
    b.render(heads.mesh("train", 0), View(0.0, 0.0, 0.0))
    assert counts() != before
    b.close()
    assert counts() == before


def test_threads_env_var_is_validated(monkeypatch):
    from render.backends.blender import render_threads

    monkeypatch.setenv("DCIGN_BLENDER_THREADS", "2")
    assert render_threads() == 2
    monkeypatch.setenv("DCIGN_BLENDER_THREADS", "zero")
    with pytest.raises(ValueError, match="DCIGN_BLENDER_THREADS"):
        render_threads()


@needs_bpy
def test_the_render_stage_writes_blender_shards(tmp_path):
    from core.config import build
    from core.params import Params
    from core.shards import list_shards, read_shard
    from render.stage import make_shards
    from tests.conftest import tiny_params_dict

    d = tiny_params_dict()
    d["render"].update(backend="blender", image_size=24)
    d["render"]["blender"]["samples"] = 1
    params = build(Params, d)
    # Two spawned workers: they inherit this process's sys.path, which bpy has changed.
    make_shards(params, "chairs", tmp_path, workers=2, progress=False)
    arrays, info = read_shard(list_shards(tmp_path / "train")[0])
    assert info.attrs["renderer"].startswith("blender ")
    assert info.attrs["params"]["render"]["blender"]["samples"] == 1
    assert arrays.images.dtype == np.uint8 and arrays.images.shape[2:] == (1, 24, 24)
    assert arrays.images.reshape(-1, 24 * 24).max(1).min() > 0  # no empty frame
