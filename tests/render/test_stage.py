"""The render stage end to end on the real face source and the real pyrender backend."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from core.config import build
from core.params import Params
from core.shards import list_shards, read_shard
from core.vocab import FACTORS, INTRINSIC
from pipeline.cli import main
from render.stage import ShardRenderer, make_shards
from render.views import View
from tests.conftest import REPO, tiny_params_dict


def _params(**render_overrides) -> Params:
    d = tiny_params_dict()
    d["render"].update(render_overrides)
    return build(Params, d)


def _load(out: Path, split: str = "train"):
    return [read_shard(p) for p in list_shards(out / split)]


def _images(out: Path) -> dict[str, bytes]:
    return {f"{s}/{p.name}": read_shard(p)[0].images.tobytes()
            for s in ("train", "test") for p in list_shards(out / s)}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Params, Path]:
    params = _params()
    out = tmp_path_factory.mktemp("faces")
    summary = make_shards(params, "faces", out, progress=False)
    assert summary.rendered == len(list_shards(out / "train")) + len(list_shards(out / "test"))
    return params, out


def test_shards_hold_the_planned_batches(rendered):
    params, out = rendered
    ds = params.render.faces
    for split in ("train", "test"):
        shards = _load(out, split)
        kinds = [info.kind_names[k] for a, info in shards for k in a.kind]
        assert {k: kinds.count(k) for k in ds.kinds} == ds.batches[split]
        for arrays, info in shards:
            assert arrays.images.shape[1:] == (4, 1, 32, 32)
            assert info.factor_names == FACTORS and info.latent_factors == tuple(ds.factors)
            assert info.attrs["split"] == split and info.attrs["renderer"].startswith("pyrender")
            assert arrays.identity.max() < ds.identities.get(split)


def test_each_stored_batch_varies_only_its_kind(rendered):
    _, out = rendered
    for arrays, info in _load(out):
        for b in range(len(arrays.kind)):
            kind = info.kind_names[arrays.kind[b]]
            f, ids = arrays.factors[b], arrays.identity[b]
            varies = {n for j, n in enumerate(FACTORS) if np.ptp(f[:, j]) > 0}
            if kind == INTRINSIC:
                assert varies == set() and len(set(ids.tolist())) == len(ids)
            else:
                assert varies == {kind} and len(set(ids.tolist())) == 1


def _mask(img: np.ndarray) -> np.ndarray:
    return img.max(axis=0) > 0


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_stored_pixels_agree_with_the_kind(rendered):
    """Within a light batch the silhouette is fixed and the shading moves; within an azimuth
    batch the silhouette itself changes."""
    _, out = rendered
    for arrays, info in _load(out):
        for b in range(len(arrays.kind)):
            kind = info.kind_names[arrays.kind[b]]
            imgs = arrays.images[b]
            ious = [_iou(_mask(imgs[0]), _mask(im)) for im in imgs[1:]]
            if kind == "light_azimuth":
                assert min(ious) > 0.98
                assert max(np.abs(imgs[0].astype(int) - im).mean() for im in imgs[1:]) > 1.0
            if kind == "azimuth":
                assert min(ious) < 0.95


def test_light_keeps_and_azimuth_changes_the_silhouette():
    r = ShardRenderer(_params(image_size=64), "faces")
    try:
        mesh = r.mesh("train", 0)
        a = r.backend.render(mesh, View(20, 10, -60))
        b = r.backend.render(mesh, View(20, 10, 60))
        c = r.backend.render(mesh, View(-40, 10, -60))
        assert a.shape == (1, 64, 64) and a.dtype == np.uint8
        assert _iou(_mask(a), _mask(b)) > 0.99
        # Light from +x (the camera's right) brightens the right half of the image.
        right, left = (slice(None), slice(None), slice(32, None)), (slice(None),) * 2 + (
            slice(None, 32),)
        assert b[right].mean() - b[left].mean() > a[right].mean() - a[left].mean()
        assert _iou(_mask(a), _mask(c)) < 0.95
    finally:
        r.close()


def test_a_scene_light_relights_a_tilted_view_and_only_that():
    assert _params().render.light.elevation == 30.0  # params.yaml's: a scene light
    renders = {}
    for elevation in (None, 30.0):
        light = {**tiny_params_dict()["render"]["light"], "elevation": elevation}
        r = ShardRenderer(_params(image_size=48, light=light), "faces")
        try:
            mesh = r.mesh("train", 0)
            renders[elevation] = [r.backend.render(mesh, View(0, e, 0)).astype(int)
                                  for e in (30.0, -30.0)]
        finally:
            r.close()
    at_light, below = (np.abs(renders[None][i] - renders[30.0][i]).mean() for i in (0, 1))
    assert at_light < 0.5  # the camera at the light's elevation: the same light
    # Seen from 30 degrees below, a light from 30 above leaves what faces down (the chin) darker.
    assert below > 2.0 and renders[30.0][1].mean() < renders[None][1].mean()


def test_rgb_images_have_three_channels(tmp_path):
    r = ShardRenderer(_params(channels=3), "faces")
    try:
        img = r.backend.render(r.mesh("test", 1), View(0, 0, 0))
        assert img.shape == (3, 32, 32)
        assert not np.array_equal(img[0], img[2])  # skin is not grey
    finally:
        r.close()


def test_ranges_are_respected_and_changing_them_changes_the_data(rendered, tmp_path):
    params, out = rendered
    d = tiny_params_dict()
    d["render"]["faces"]["factors"]["azimuth"] = [20, 40]
    changed = build(Params, d)
    make_shards(changed, "faces", tmp_path, progress=False)
    for arrays, _ in _load(tmp_path):
        az = arrays.factors[..., FACTORS.index("azimuth")]
        assert az.min() >= 20 and az.max() <= 40
    for (a, _), (b, _) in zip(_load(out), _load(tmp_path), strict=True):
        assert not np.array_equal(a.images, b.images)
    for arrays, _ in _load(out):
        el = arrays.factors[..., FACTORS.index("elevation")]
        lo, hi = params.render.faces.factors["elevation"]
        assert el.min() >= lo and el.max() <= hi


def test_same_params_give_byte_identical_images_with_any_worker_count(rendered, tmp_path):
    params, out = rendered
    make_shards(params, "faces", tmp_path, workers=2, progress=False)
    assert _images(tmp_path) == _images(out)


def test_rerun_skips_current_shards_and_redoes_corrupt_or_missing_ones(rendered, tmp_path):
    params, out = rendered
    make_shards(params, "faces", tmp_path, progress=False)
    files = list_shards(tmp_path / "train")
    data = files[0].read_bytes()
    files[0].write_bytes(data[: len(data) // 3])  # corrupt
    files[-1].unlink()  # missing
    s = make_shards(params, "faces", tmp_path, progress=False)
    assert s.rendered == 2 and s.skipped == len(_images(out)) - 2
    assert _images(tmp_path) == _images(out)


def test_subsets_for_array_jobs_add_up_to_the_whole(rendered, tmp_path):
    params, out = rendered
    s0 = make_shards(params, "faces", tmp_path, shard_index=0, num_shards=2, progress=False)
    assert 0 < len(_images(tmp_path)) < len(_images(out))
    s1 = make_shards(params, "faces", tmp_path, shard_index=1, num_shards=2, progress=False)
    assert s0.rendered + s1.rendered == len(_images(out))
    assert _images(tmp_path) == _images(out)


def test_killed_render_resumes(tmp_path):
    """SIGKILL the CLI once the first shard lands; a re-run keeps it and finishes the rest."""
    d = tiny_params_dict()
    d["render"]["batches_per_shard"] = 1
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(d))
    out = tmp_path / "data"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "render", "faces", "--params", str(params_file),
         "--out", str(out), "--no-progress"], cwd=REPO, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    deadline = time.time() + 120
    while time.time() < deadline and not list_shards(out / "train"):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = {p.name: p.stat().st_mtime_ns for p in list_shards(out / "train")}
    assert done_before, "the render never wrote a shard"
    params = build(Params, d)
    s = make_shards(params, "faces", out, progress=False)
    assert s.skipped >= len(done_before)
    after = {p.name: p.stat().st_mtime_ns for p in list_shards(out / "train")}
    assert all(after[n] == t for n, t in done_before.items())  # kept, not rewritten
    assert not [p for p in (out / "train").iterdir() if ".tmp-" in p.name]
    total = sum(sum(v.values()) for v in d["render"]["faces"]["batches"].values())
    assert len(list_shards(out / "train")) + len(list_shards(out / "test")) == total


@pytest.mark.parametrize(
    ("override", "words"),
    [
        ("render.faces.factors.azimuth=[50, 10]", "render.faces.factors.azimuth"),
        ("render.image_size=big", "render.image_size"),
        ("render.faces.identities.train=3", "render.faces.identities.train"),
        ("render.faces.batches.train.elevation=0", "render.faces.batches.train.elevation"),
    ],
)
def test_cli_rejects_bad_params_and_writes_nothing(tiny_params_file, tmp_path, override, words):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["render", "faces", "--params", str(tiny_params_file),
                                       "--set", override, "--out", str(out)])
    assert result.exit_code != 0
    assert words in result.output
    assert not out.exists()


def test_inspect_prints_a_summary_and_writes_a_sheet(rendered, tmp_path):
    _, out = rendered
    png = tmp_path / "sheet.png"
    result = CliRunner().invoke(main, ["inspect", str(out / "train"), "--out", str(png)])
    assert result.exit_code == 0, result.output
    assert "minibatches per kind: azimuth 2, elevation 1, intrinsic 3, light_azimuth 1" in (
        result.output)
    assert png.is_file() and png.stat().st_size > 1000
    from PIL import Image

    with Image.open(png) as im:
        assert im.height >= 4 * 32  # a row per batch, every kind shown
    bad = CliRunner().invoke(main, ["inspect", str(tmp_path / "nothing")])
    assert bad.exit_code != 0 and "no such file or folder" in bad.output
