from __future__ import annotations

import pytest

from pipeline.config import ParamsError
from pipeline.params import FACTORS, INTRINSIC, load_params, parse_override
from tests.conftest import REPO


def test_repository_params_are_valid():
    p = load_params(REPO / "params.yaml")
    assert p.render.faces.kinds == ("azimuth", "elevation", "light_azimuth", INTRINSIC)
    assert p.render.chairs.kinds == ("azimuth", INTRINSIC)
    for ds in (p.render.faces, p.render.chairs):
        assert set(ds.factors) | set(ds.other_factors) == set(FACTORS)


def test_override_changes_a_value():
    p = load_params(REPO / "params.yaml", ("render.faces.factors.azimuth=[-45, 30]",))
    assert p.render.faces.factors["azimuth"] == (-45.0, 30.0)
    assert load_params(REPO / "params.yaml", ("seed=7",)).seed == 7


@pytest.mark.parametrize(
    ("override", "key", "words"),
    [
        ("render.bogus=1", "render.bogus", "unknown key"),
        ("render.faces.factors.bogus=[0, 1]", "render.faces.factors.bogus", "unknown factor"),
        ("render.image_size=abc", "render.image_size", "expected an integer"),
        ("render.image_size=64.5", "render.image_size", "expected an integer"),
        ("render.channels=2", "render.channels", "expected one of 1 | 3"),
        ("render.backend=vulkan", "render.backend", "expected one of"),
        ("render.faces.factors.azimuth=[90, -90]", "render.faces.factors.azimuth", "inverted"),
        ("render.faces.factors.azimuth=[10, 10]", "render.faces.factors.azimuth", "empty"),
        ("render.faces.factors.elevation=[-95, 10]", "render.faces.factors.elevation", "outside"),
        ("render.faces.factors.azimuth=[0, 400]", "render.faces.factors.azimuth", "outside"),
        ("render.faces.factors.azimuth=[5]", "render.faces.factors.azimuth", "list of 2"),
        ("render.faces.batches.train.azimuth=0", "render.faces.batches.train.azimuth", "positive"),
        ("render.faces.batches.test.intrinsic=-3", "render.faces.batches.test.intrinsic",
         "positive"),
        ("render.faces.identities.train=0", "render.faces.identities.train", "positive"),
        ("render.faces.identities.test=19", "render.faces.identities.test",
         "cannot fill an intrinsic batch"),
        ("render.batch_size=1", "render.batch_size", ">= 2"),
        ("render.batches_per_shard=0", "render.batches_per_shard", "positive"),
        ("render.chairs.factors.elevation=[0, 10]", "render.chairs.other_factors",
         "exactly one of"),
        ("render.faces.batches.train={azimuth: 1}", "render.faces.batches.train",
         "exactly the kinds"),
        ("train.steps=0", "train.steps", "positive"),
        ("train.steps={faces: 10, boats: 3}", "train.steps.boats", "unknown dataset"),
        ("train.steps={faces: -1}", "train.steps.faces", "positive"),
        ("train.odd_factors={boats: [azimuth]}", "train.odd_factors.boats", "unknown dataset"),
        ("train.odd_factors={chairs: [light_azimuth]}", "train.odd_factors.chairs",
         "not a disentangled factor of chairs"),
        ("train.odd_factors={faces: [azimuth, azimuth]}", "train.odd_factors.faces", "repeated"),
        ("train.betas=[0.9, 1.5]", "train.betas[1]", "0 <= beta < 1"),
        ("seed=-1", "seed", "non-negative"),
        ("train.seeds=[]", "train.seeds", "at least one"),
        ("train.seeds=[0, -2]", "train.seeds[1]", "0 <= seed < 2**32"),
        ("train.seeds=[1, 1]", "train.seeds", "repeated seed"),
        ("train.seeds=[0.5]", "train.seeds[0]", "expected an integer"),
        ("evaluate.dci_depth=0", "evaluate.dci_depth", "positive"),
        ("evaluate.plot_identities=0", "evaluate.plot_identities", "positive"),
        ("render.nosuch.deep=1", "render.nosuch", "no such section"),
        ("render.faces.source=bfm", "render.faces.bfm.path", "no .h5 path"),
        ("render.chairs.folder.up_axis=z", "render.chairs.folder.front_axis",
         "not perpendicular"),
    ],
)
def test_bad_params_name_the_key(override, key, words):
    with pytest.raises(ParamsError) as info:
        load_params(REPO / "params.yaml", (override,))
    assert info.value.key == key
    assert words in str(info.value)
    assert f"'{key}'" in str(info.value)


def test_missing_key_is_named(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("render: {faces: {}}\n")
    with pytest.raises(ParamsError, match=r"render\.faces\.identities': missing"):
        load_params(p)


def test_missing_and_broken_files(tmp_path):
    with pytest.raises(ParamsError, match="not found"):
        load_params(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("render: [unclosed\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(bad)


def test_override_syntax():
    assert parse_override("a.b=[1, 2]") == ("a.b", [1, 2])
    assert parse_override("a=null") == ("a", None)
    with pytest.raises(ParamsError, match="KEY=VALUE"):
        parse_override("render.image_size")


def test_steps_per_dataset():
    p = load_params(REPO / "params.yaml", ("train.steps={faces: 7, chairs: 5}",))
    assert p.train.steps_for("faces") == 7 and p.train.steps_for("chairs") == 5
    assert load_params(REPO / "params.yaml", ("train.steps=9",)).train.steps_for("chairs") == 9
    with pytest.raises(ParamsError, match=r"train\.steps\.chairs"):
        load_params(REPO / "params.yaml", ("train.steps={faces: 7}",)).train.steps_for("chairs")
