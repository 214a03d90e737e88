"""`dcign render chairs` from the parametric source and from a folder of meshes, then inspect."""

from __future__ import annotations

import numpy as np
import trimesh
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.config import build
from pipeline.params import FACTORS, Params
from render.shards import list_shards, read_shard, validate
from render.stage import make_shards
from tests.conftest import tiny_params_dict


def _check(out, params: Params) -> None:
    ds = params.render.chairs
    for split in ("train", "test"):
        files = list_shards(out / split)
        assert files
        kinds = []
        for p in files:
            info = validate(p)
            arrays, _ = read_shard(p)
            assert info.latent_factors == ("azimuth",)
            kinds += [info.kind_names[k] for k in arrays.kind]
            assert (arrays.images.reshape(len(arrays.kind), arrays.images.shape[1], -1)
                    .max(axis=2) > 0).all()  # every image shows a chair
            az = arrays.factors[..., FACTORS.index("azimuth")]
            assert az.min() >= 0 and az.max() <= 360
        assert {k: kinds.count(k) for k in ds.kinds} == ds.batches[split]


def test_parametric_chairs_render_and_inspect(tmp_path):
    params = build(Params, tiny_params_dict())
    make_shards(params, "chairs", tmp_path / "chairs", progress=False)
    _check(tmp_path / "chairs", params)
    result = CliRunner().invoke(main, ["inspect", str(tmp_path / "chairs" / "train"), "--out",
                                       str(tmp_path / "sheet.png")])
    assert result.exit_code == 0, result.output
    assert "latent factors (z[0], z[1], ...): azimuth" in result.output
    assert (tmp_path / "sheet.png").stat().st_size > 1000


def test_a_folder_of_meshes_is_a_chairs_dataset(tmp_path):
    folder = tmp_path / "meshes"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):  # z-up boxes and cylinders of varied proportions
        if i % 2:
            m = trimesh.creation.box(extents=rng.uniform(0.3, 1.5, 3))
        else:
            m = trimesh.creation.cylinder(radius=rng.uniform(0.2, 0.6),
                                          height=rng.uniform(0.5, 2.0))
        m.export(folder / f"m{i:02d}.{['obj', 'ply', 'stl', 'glb'][i % 4]}")
    d = tiny_params_dict()
    d["render"]["chairs"].update(source="folder")
    d["render"]["chairs"]["folder"].update(path=str(folder), up_axis="z", front_axis="-y",
                                           test_fraction=0.4)
    params = build(Params, d)
    make_shards(params, "chairs", tmp_path / "out", progress=False)
    _check(tmp_path / "out", params)
    # The recorded params name the folder, so any shard can be traced back to its meshes.
    info = validate(list_shards(tmp_path / "out" / "train")[0])
    assert info.attrs["params"]["chairs"]["folder"]["path"] == str(folder)


def test_missing_mesh_folder_fails_clearly(tiny_params_file, tmp_path):
    result = CliRunner().invoke(main, [
        "render", "chairs", "--params", str(tiny_params_file), "--out", str(tmp_path / "o"),
        "--set", "render.chairs.source=folder",
        "--set", f"render.chairs.folder.path={tmp_path / 'nowhere'}"])
    assert result.exit_code != 0
    assert "nowhere" in result.output
    assert not list((tmp_path).glob("o/*/shard-*.h5"))
