from __future__ import annotations

import copy

import pytest
import yaml

from core.config import ParamsError
from core.params import load_params, parse_override
from core.vocab import FACTORS, INTRINSIC
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
        ("train.ema=1.0", "train.ema", "0 <= ema < 1"),
        ("train.ema=-0.5", "train.ema", "0 <= ema < 1"),
        ("seed=-1", "seed", "0 <= seed < 2**32"),
        ("seed=4294967296", "seed", "0 <= seed < 2**32"),
        ("render.faces.factors.elevation=[.nan, .nan]", "render.faces.factors.elevation[0]",
         "finite"),
        ("render.faces.factors.azimuth=[.nan, 10]", "render.faces.factors.azimuth[0]", "finite"),
        ("render.light.diffuse=.nan", "render.light.diffuse", "finite"),
        ("render.camera.margin=-.inf", "render.camera.margin", "finite"),
        ("train.lr=.nan", "train.lr", "finite"),
        ("train.clamp_scale=.inf", "train.clamp_scale", "finite"),
        ("train.kl_weight=0", "train.kl_weight", "0 < kl_weight <= 1"),
        ("train.kl_weight=1.5", "train.kl_weight", "0 < kl_weight <= 1"),
        ("train.init=xavier", "train.init", "'torch' | 'kaiming'"),
        ("train.lr_schedule=step", "train.lr_schedule", "'constant' | 'cosine' | 'cooldown'"),
        ("train.lr_cooldown=0", "train.lr_cooldown", "0 < lr_cooldown <= 1"),
        ("train.lr_cooldown=1.5", "train.lr_cooldown", "0 < lr_cooldown <= 1"),
        ("train.norm=batch", "train.norm", "'none' | 'group'"),
        ("train.kind_mix.faces={azimuth: .nan}", "train.kind_mix.faces.azimuth", "finite"),
        ("train.kind_mix.faces={azimuth: -1}", "train.kind_mix.faces.azimuth", ">= 0"),
        ("train.kind_mix.faces={azimuth: 0}", "train.kind_mix.faces", "positive weight"),
        ("train.kind_mix={azimuth: 1}", "train.kind_mix.azimuth", "expected a mapping"),
        ("gate.tolerance={'*': .nan}", "gate.tolerance.*", "finite"),
        ("render.batches_per_shard=99999999999999999999", "render.batches_per_shard",
         "64 bits"),
        ("train.seeds=[]", "train.seeds", "at least one"),
        ("train.seeds=[0, -2]", "train.seeds[1]", "0 <= seed < 2**32"),
        ("train.seeds=[1, 1]", "train.seeds", "repeated seed"),
        ("train.seeds=[0.5]", "train.seeds[0]", "expected an integer"),
        ("evaluate.dci_depth=0", "evaluate.dci_depth", "positive"),
        ("evaluate.plot_identities=0", "evaluate.plot_identities", "positive"),
        ("evaluate.detail_sigma=0", "evaluate.detail_sigma", "positive"),
        ("evaluate.detail_margin=-1", "evaluate.detail_margin", ">= 0"),
        ("evaluate.detail_margin=1.5", "evaluate.detail_margin", "integer"),
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


def _is_number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _number_leaves(node, path=()):
    """(key path, value) of every number (or list of numbers) in a params tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _number_leaves(v, (*path, str(k)))
    elif _is_number(node) or (isinstance(node, list) and node and all(map(_is_number, node))):
        yield path, node


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_no_number_anywhere_in_params_may_be_non_finite(bad, tmp_path):
    """One rule in the loader: every numeric key of params.yaml refuses NaN and infinities."""
    raw = yaml.safe_load((REPO / "params.yaml").read_text())
    leaves = list(_number_leaves(raw))
    assert len(leaves) > 30
    for path, value in leaves:
        data = copy.deepcopy(raw)
        node = data
        for k in path[:-1]:
            node = node[k]
        node[path[-1]] = [bad, *value[1:]] if isinstance(value, list) else bad
        f = tmp_path / "params.yaml"
        f.write_text(yaml.safe_dump(data))
        key = ".".join(path)
        with pytest.raises(ParamsError, match=r"finite|expected an integer|expected one of") as e:
            load_params(f)
        assert e.value.key.startswith(key), (key, e.value.key)
