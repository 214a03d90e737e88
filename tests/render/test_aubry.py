"""`dcign import-chairs`: the Aubry et al. rendered_chairs layout into shards, on a fake tree."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from core.config import ParamsError, build
from core.params import Params
from core.shards import list_shards, read_shard, validate
from core.vocab import FACTORS, INTRINSIC
from evaluate.manipulate import load_image as user_image
from render.aubry import (
    PATTERN,
    AubryChair,
    AubryIndex,
    SplitPlanner,
    import_chairs,
    load_image,
    scan_aubry,
    split_chairs,
)
from tests.conftest import tiny_params_dict

CHAIRS = [f"chair_{i:02d}" for i in range(12)]  # 6 train / 6 test with seed 0, fraction 0.5
AZIMUTHS = [0, 45, 90, 135, 180, 225, 270, 315]
ELEVATIONS = [20, 30]
SRC = 64  # source image size (the release: 600)


def _image(chair: int, azimuth: int, elevation: int) -> np.ndarray:
    """uint8 (SRC, SRC, 3): white background, a dark box whose width follows the azimuth and
    height the elevation, its grey level the chair, a coloured stripe for the RGB path."""
    a = np.full((SRC, SRC, 3), 255, dtype=np.uint8)
    half_w = 4 + 3 * AZIMUTHS.index(azimuth)
    half_h = 14 if elevation == ELEVATIONS[0] else 24
    c = SRC // 2
    a[c - half_h:c + half_h, c - half_w:c + half_w] = 30 + 12 * chair
    a[c - 8:c + 8, c - half_w:c + half_w] = (200, 40, 40)
    return a


def _name(index: int, azimuth: int, elevation: int) -> str:
    return f"image_{index:03d}_p{elevation:03d}_t{azimuth:03d}_r096.png"


def write_tree(root: Path, chairs: list[str] = CHAIRS) -> Path:
    """A rendered_chairs-like folder: <chair>/renders/image_XXX_pYYY_tZZZ_r096.png."""
    for ci, chair in enumerate(chairs):
        renders = root / chair / "renders"
        renders.mkdir(parents=True)
        for vi, (el, az) in enumerate((e, t) for e in ELEVATIONS for t in AZIMUTHS):
            Image.fromarray(_image(ci, az, el)).save(renders / _name(vi, az, el))
    (root / "all_chair_names.mat").write_bytes(b"ignored")  # as in the release
    return root


def _params(**chairs) -> Params:
    d = tiny_params_dict()
    c = d["render"]["chairs"]
    c["folder"]["test_fraction"] = 0.5
    c["batches"] = {"train": {"azimuth": 4, "intrinsic": 3}, "test": {"azimuth": 1, "intrinsic": 2}}
    c.update(chairs)
    return build(Params, d)


def _shards(out: Path, split: str):
    return [read_shard(p) for p in list_shards(out / split)]


def _arrays(out: Path) -> dict[str, tuple[bytes, bytes, bytes]]:
    return {f"{s}/{p.name}": (a.images.tobytes(), a.factors.tobytes(), a.identity.tobytes())
            for s in ("train", "test") for p in list_shards(out / s) for a in [read_shard(p)[0]]}


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return write_tree(tmp_path_factory.mktemp("rendered_chairs"))


@pytest.fixture(scope="module")
def imported(tree, tmp_path_factory) -> tuple[Params, Path]:
    params = _params()
    out = tmp_path_factory.mktemp("shards")
    summary = import_chairs(params, tree, out, progress=False)
    assert summary.rendered == 4 and summary.skipped == 0  # train 7 batches / 3 + test 3 / 3
    return params, out


def test_scan_reads_the_views_from_the_names(tree):
    index = scan_aubry(tree)
    assert [c.name for c in index.chairs] == CHAIRS
    assert index.num_images == len(CHAIRS) * len(AZIMUTHS) * len(ELEVATIONS)
    views = index.chairs[3].views
    assert {(v.elevation, v.azimuth) for v in views} == {(e, t) for e in ELEVATIONS
                                                          for t in AZIMUTHS}
    assert all(v.path.name == _name(AZIMUTHS.index(v.azimuth) + 8 * ELEVATIONS.index(
        v.elevation), int(v.azimuth), int(v.elevation)) for v in views)


def test_shards_are_valid_and_hold_the_params_counts(imported):
    params, out = imported
    ds = params.render.chairs
    for split in ("train", "test"):
        shards = _shards(out, split)
        kinds = [info.kind_names[k] for a, info in shards for k in a.kind]
        assert {k: kinds.count(k) for k in ds.kinds} == ds.batches[split]
        for p in list_shards(out / split):
            info = validate(p)
            assert info.kind_names == ("azimuth", "intrinsic")
            assert info.factor_names == FACTORS and info.latent_factors == ("azimuth",)
            assert (info.batch_size, info.channels, info.image_size) == (4, 1, 32)
            assert info.attrs["renderer"] == "aubry-import" and info.attrs["split"] == split
            assert json.loads(info.attrs["unknown_factors"]) == ["light_azimuth"]
        names = json.loads(shards[0][1].attrs["identity_names"])
        assert len(names) == ds.identities.get(split)  # capped: 6 train, 4 of the 6 test chairs
        assert names == sorted(names)
        assert max(int(a.identity.max()) for a, _ in shards) < len(names)


def test_azimuth_batches_hold_one_chair_at_one_elevation(imported):
    _, out = imported
    seen = 0
    for split in ("train", "test"):
        for arrays, info in _shards(out, split):
            for b in np.flatnonzero(np.array(info.kind_names)[arrays.kind] == "azimuth"):
                f = arrays.factors[b]
                assert len(set(arrays.identity[b].tolist())) == 1
                assert len(set(f[:, 1].tolist())) == 1 and f[0, 1] in ELEVATIONS
                assert len(set(f[:, 0].tolist())) == 4  # distinct azimuths
                assert set(f[:, 0].tolist()) <= set(AZIMUTHS)
                assert (f[:, 2] == 0).all()
                seen += 1
    assert seen == 5


def test_intrinsic_batches_hold_distinct_chairs_at_one_azimuth(imported):
    _, out = imported
    elevations, seen = set(), 0
    for split in ("train", "test"):
        for arrays, info in _shards(out, split):
            for b in np.flatnonzero(np.array(info.kind_names)[arrays.kind] == INTRINSIC):
                f = arrays.factors[b]
                assert len(set(arrays.identity[b].tolist())) == 4
                assert len(set(f[:, 0].tolist())) == 1 and f[0, 0] in AZIMUTHS
                assert set(f[:, 1].tolist()) <= set(ELEVATIONS)
                elevations |= set(f[:, 1].tolist())
                seen += 1
    assert seen == 5
    assert elevations == set(ELEVATIONS)  # not disentangled: drawn per image


def test_every_image_is_the_file_its_identity_and_factors_name(imported, tree):
    params, out = imported
    a = params.render.chairs.aubry
    for split in ("train", "test"):
        for arrays, info in _shards(out, split):
            names = json.loads(info.attrs["identity_names"])
            for b in range(len(arrays.kind)):
                for j in range(4):
                    az, el, _ = arrays.factors[b, j]
                    i = int(az) // 45 + 8 * ELEVATIONS.index(int(el))
                    path = tree / names[arrays.identity[b, j]] / "renders" / _name(
                        i, int(az), int(el))
                    assert path.is_file()
                    expected = load_image(path, image_size=32, channels=1,
                                          background=a.background,
                                          white_threshold=a.white_threshold)
                    np.testing.assert_array_equal(arrays.images[b, j], expected)
                    # `dcign manipulate` converts a user's copy of this picture to the same
                    # array the model was trained on.
                    np.testing.assert_array_equal(user_image(path, 32, 1), expected)


def test_train_and_test_chairs_are_disjoint_and_stable(imported, tree):
    _, out = imported
    train = set(json.loads(_shards(out, "train")[0][1].attrs["identity_names"]))
    test = set(json.loads(_shards(out, "test")[0][1].attrs["identity_names"]))
    assert train and test and not train & test
    index = scan_aubry(tree)
    before = split_chairs(index, 0, 0.5)
    more = AubryIndex(index.root, (*index.chairs, AubryChair("chair_zz", ())))
    after = split_chairs(more, 0, 0.5)
    for split in ("train", "test"):  # a new chair moves no other chair between splits
        assert [c.name for c in after[split] if c.name != "chair_zz"] == [
            c.name for c in before[split]]
    assert {c.name for c in split_chairs(index, 1, 0.5)["test"]} != {
        c.name for c in before["test"]}  # the seed decides


def test_same_inputs_give_identical_shards(imported, tree, tmp_path):
    params, out = imported
    again = import_chairs(params, tree, tmp_path, progress=False)
    assert again.rendered == 4
    assert _arrays(tmp_path) == _arrays(out)


def test_rerun_skips_current_shards_and_redoes_changed_ones(tree, tmp_path):
    params = _params()
    import_chairs(params, tree, tmp_path, progress=False)
    files = list_shards(tmp_path / "train") + list_shards(tmp_path / "test")
    stamps = {p: p.stat().st_mtime_ns for p in files}
    files[0].unlink()
    summary = import_chairs(params, tree, tmp_path, progress=False)
    assert (summary.rendered, summary.skipped) == (1, 3)
    assert all(p.stat().st_mtime_ns == stamps[p] for p in files[1:])
    keep = _params(aubry={"background": "keep", "white_threshold": 250})
    assert import_chairs(keep, tree, tmp_path, progress=False).rendered == 4
    arrays, _ = read_shard(files[1])
    assert (arrays.images[:, :, :, 0, 0] == 255).all()  # white corners kept


def test_background_black_or_keep(tree):
    path = tree / CHAIRS[5] / "renders" / _name(15, 315, 30)  # the widest, tallest box
    kw = dict(image_size=32, white_threshold=250)
    black = load_image(path, channels=1, background="black", **kw)
    white = load_image(path, channels=1, background="keep", **kw)
    assert black.shape == white.shape == (1, 32, 32) and black.dtype == np.uint8
    assert black[0, 0, 0] == 0 and white[0, 0, 0] == 255
    grey = 30 + 12 * 5
    assert black[0, 8, 16] == white[0, 8, 16] == grey  # inside the box: untouched
    rgb = load_image(path, channels=3, background="black", **kw)
    assert rgb.shape == (3, 32, 32) and tuple(rgb[:, 16, 16]) == (200, 40, 40)


def test_a_non_square_image_is_padded_with_background(tmp_path):
    a = np.full((40, 64, 3), 255, dtype=np.uint8)
    a[10:30, 20:44] = 50
    Image.fromarray(a).save(tmp_path / "wide.png")
    img = load_image(tmp_path / "wide.png", image_size=32, channels=1, background="keep",
                     white_threshold=250)
    assert img.shape == (1, 32, 32)
    assert img[0, 2, 16] == 255 and img[0, 16, 16] == 50  # padding above, the box centred


def test_ranges_select_views_and_wrap_azimuth(tree):
    params = _params(other_factors={"elevation": [30, 30], "light_azimuth": [-45, 45]},
                     factors={"azimuth": [-180, 180]})
    ds = params.render.chairs
    chairs = split_chairs(scan_aubry(tree), 0, 0.5)["train"]
    planner = SplitPlanner(chairs, ds, seed=0, split="train", batch_size=4)
    plans = planner.plans(0, 7)
    f = np.concatenate([p.factors for p in plans])
    assert (f[:, 1] == 30).all() and f[:, 0].min() >= -180 and f[:, 0].max() <= 180
    assert (f[:, 0] < 0).any()  # t = 225..315 stored as -135..-45
    for p in plans:
        for (az, el, _), path in zip(p.factors, p.paths):
            assert f"_p{int(el):03d}_t{int(az) % 360:03d}_" in path.name


# ----------------------------------------------------------------------------- errors


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"no_such.*{re.escape(PATTERN)}"):
        scan_aubry(tmp_path / "no_such")
    with pytest.raises(FileNotFoundError, match="no_such"):
        import_chairs(_params(), tmp_path / "no_such", tmp_path / "out", progress=False)


def test_a_badly_named_file_is_a_clear_error(tmp_path):
    root = write_tree(tmp_path / "src", CHAIRS[:2])
    (root / CHAIRS[1] / "renders" / "foo.png").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"renders/foo\.png: does not match image_XXX_pYYY"):
        scan_aubry(root)
    (root / "stray").mkdir()
    with pytest.raises(ValueError, match="stray: no renders/ folder"):
        scan_aubry(root)


def test_an_unreadable_image_is_a_clear_error(tree, tmp_path):
    good = tree / CHAIRS[0] / "renders" / _name(0, 0, 20)
    truncated = tmp_path / _name(0, 0, 20)
    truncated.write_bytes(good.read_bytes()[:100])
    garbage = tmp_path / _name(1, 45, 20)
    garbage.write_bytes(b"not a png at all")
    kw = dict(image_size=32, channels=1, background="black", white_threshold=250)
    for path in (truncated, garbage):
        with pytest.raises(ValueError, match=f"{re.escape(path.name)}: not a readable image"):
            load_image(path, **kw)
    root = shutil.copytree(tree, tmp_path / "corrupt")
    for png in root.rglob("*.png"):
        png.write_bytes(b"corrupt")
    with pytest.raises(ValueError, match=r"image_\d{3}_p\d{3}_t\d{3}_r096\.png: not a readable"):
        import_chairs(_params(), root, tmp_path / "out", progress=False)
    assert not list((tmp_path / "out").rglob("shard-*"))  # nothing that looks whole


def test_too_few_chairs_for_an_intrinsic_batch(tmp_path):
    root = write_tree(tmp_path / "src", CHAIRS[:5])  # at most 5 chairs split two ways
    with pytest.raises(ValueError, match=r"usable chairs, fewer than render.batch_size=4"):
        import_chairs(_params(), root, tmp_path / "out", progress=False)


def test_too_few_azimuths_for_an_azimuth_batch(tree):
    params = _params(identities={"train": 20, "test": 20})
    chairs = scan_aubry(tree).chairs
    with pytest.raises(ValueError, match=r"batch_size=10 distinct azimuth values .*at most 8"):
        SplitPlanner(chairs, params.render.chairs, seed=0, split="train", batch_size=10)


def test_light_cannot_be_disentangled(tree, tmp_path):
    params = _params()
    ds = dataclasses.replace(params.render.chairs, factors={"azimuth": (0.0, 360.0),
                                                            "light_azimuth": (-45.0, 45.0)},
                             other_factors={"elevation": (20.0, 30.0)})
    params = dataclasses.replace(params, render=dataclasses.replace(params.render, chairs=ds))
    with pytest.raises(ParamsError, match=r"render\.chairs\.factors\.light_azimuth"):
        import_chairs(params, tree, tmp_path, progress=False)


def test_imported_test_batches_share_one_grid_of_views(tree, tmp_path):
    params = _params(batches={"train": {"azimuth": 2, "intrinsic": 2},
                              "test": {"azimuth": 5, "intrinsic": 1}})
    import_chairs(params, tree, tmp_path, progress=False)
    rows = [(a.factors[i], a.identity[i], a.images[i]) for a, info in _shards(tmp_path, "test")
            for i in range(len(a.kind)) if info.kind_names[a.kind[i]] == "azimuth"]
    assert len(rows) == 5
    # Batch n shows test chair n (wrapping over the 4 test chairs), all at the same views:
    # batch_size (4) of the 8 azimuths spread by rank, at one elevation.
    assert [int(ident[0]) for _, ident, _ in rows] == [0, 1, 2, 3, 0]
    assert all(np.array_equal(f, rows[0][0]) for f, _, _ in rows)
    assert rows[0][0][:, 0].tolist() == [0.0, 90.0, 180.0, 270.0]
    assert len(set(rows[0][0][:, 1].tolist())) == 1
    assert np.array_equal(rows[0][2], rows[4][2])  # the same chair at the same views
