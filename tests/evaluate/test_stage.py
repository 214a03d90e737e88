"""The evaluate stage, `manipulate`, `report` and `gate` on a tiny trained model."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from evaluate.data import load_batches
from evaluate.gate import compare, direction
from evaluate.stage import evaluate_dataset, novel_view_inputs, novel_view_mse
from pipeline.cli import main
from pipeline.config import build
from pipeline.params import Params
from render.stage import ShardRenderer, make_shards
from tests.conftest import tiny_params_dict
from train.data import SplitIndex
from train.fit import fit


def _tiny() -> dict:
    d = tiny_params_dict()
    d["render"]["image_size"] = 40  # the model's minimum is 36
    d["train"].update(steps=4, latent_dim=6, enc_channels=[4, 4, 4], dec_channels=[4, 4, 4],
                      eval_every=2, eval_batches=2, log_every=1, loader_workers=0)
    d["evaluate"].update(max_codes=200, dci_trees=3, novel_view_inputs=2, novel_view_targets=3,
                         traversal_inputs=2, traversal_steps=3)
    return d


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Params, Path, Path]:
    root = tmp_path_factory.mktemp("eval")
    d = _tiny()
    (root / "params.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    params = build(Params, d)
    make_shards(params, "faces", root / "data" / "faces", progress=False)
    for model in ("dcign", "baseline"):
        fit(params, "faces", root / "data" / "faces", root / "models" / f"faces-{model}",
            model_kind=model, progress=False)
    return params, root, root / "params.yaml"


def _evaluate(params: Params, root: Path, tag: str) -> dict:
    ckpts = {m: root / "models" / f"faces-{m}" / "model.pt" for m in ("dcign", "baseline")}
    return evaluate_dataset(params, "faces", root / "data" / "faces", ckpts,
                            root / tag / "faces.json", root / tag / "eval", progress=False)


@pytest.fixture(scope="module")
def evaluated(trained) -> tuple[dict, Path]:
    params, root, _ = trained
    return _evaluate(params, root, "run1"), root


def test_every_metric_is_present_and_finite(evaluated):
    report, root = evaluated
    on_disk = json.loads((root / "run1" / "faces.json").read_text())
    assert on_disk == report
    factors = ("azimuth", "elevation", "light_azimuth")
    for model in ("dcign", "baseline"):
        m = report[model]
        for group in ("equivariance", "invariance", "novel_view_mse"):
            assert set(m[group]) == set(factors)
            assert all(v is not None and math.isfinite(v) for v in m[group].values())
        assert 0 <= m["test_mse"] <= 1 and 0 <= m["mig"] <= 1
        assert set(m["dci"]) == {"disentanglement", "completeness", "informativeness"}
        assert all(0 <= v <= 1 for v in m["dci"].values())
        assert all(0 <= v <= 1 for v in m["equivariance"].values())
    assert set(report["reference"]["novel_view_copy_mse"]) == set(factors)


def test_plots_and_calibration_are_written(evaluated):
    _, root = evaluated
    plots = root / "run1" / "eval" / "plots"
    names = {p.name for p in plots.glob("*.png")}
    for f in ("azimuth", "elevation", "light_azimuth"):
        assert {f"traversal-dcign-{f}.png", f"traversal-baseline-{f}.png", f"scatter-{f}.png",
                f"rerender-{f}.png"} <= names
    assert {"reconstructions.png", "curves.png"} <= names
    for p in plots.glob("*.png"):
        with Image.open(p) as im:
            assert im.width > 50 and im.height > 50
            assert np.asarray(im.convert("L")).std() > 1  # not blank
    cal = json.loads((root / "run1" / "eval" / "calibration.json").read_text())
    assert cal["models"]["dcign"]["factors"]["azimuth"]["latent"] == 0
    assert cal["models"]["dcign"]["factors"]["light_azimuth"]["latent"] == 2


def test_metrics_are_deterministic(trained, evaluated):
    params, root, _ = trained
    again = _evaluate(params, root, "run2")
    assert again == evaluated[0]


def test_an_oracle_renderer_scores_zero_novel_view_error(trained):
    params, root, _ = trained
    test = load_batches(SplitIndex.scan(root / "data" / "faces" / "test"), 10)
    r = ShardRenderer(params, "faces")
    try:
        def truth(identity, view):
            return r.backend.render(r.mesh("test", identity), view)

        inputs = novel_view_inputs(test, "azimuth", 3)
        # The oracle re-renders the input's own identity at the target: what a perfect
        # learned renderer would output.
        by_image = {img.tobytes(): ident for img, ident, _ in inputs}

        def oracle(image, view, target):
            v = type(view)(**{**view.__dict__, "azimuth": target})
            return truth(by_image[image.tobytes()], v).astype(np.float32) / 255

        targets = np.array([-60.0, 0.0, 45.0])
        assert novel_view_mse(oracle, truth, inputs, "azimuth", targets) < 1e-10
        copy = novel_view_mse(lambda img, v, t: img.astype(np.float32) / 255, truth, inputs,
                              "azimuth", targets)
        assert copy > 1e-3  # moving the head really changes the picture
    finally:
        r.close()


def _png(path: Path, size=(90, 70), mode="RGB") -> Path:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).convert(mode).save(path)
    return path


def test_manipulate_writes_the_requested_grid(trained, evaluated, tmp_path):
    _, root, _ = trained
    img = _png(tmp_path / "in.png")
    out = tmp_path / "out.png"
    args = ["manipulate", "--checkpoint", str(root / "models/faces-dcign/model.pt"),
            "--image", str(img), "--factor", "azimuth", "--values", "-60,-30,0,30,60",
            "--out", str(out), "--calibration", str(root / "run1/eval/calibration.json")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    with Image.open(out) as im:
        assert im.width >= 6 * 40 and im.height >= 40  # input + five renderings
    # outside the trained range: a warning, still a result
    result = CliRunner().invoke(main, [*args[:-4], "--values", "-170,0", *args[-4:]])
    assert result.exit_code == 0


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"--image": "missing.png"}, "no such image file"),
        ({"--image": "broken.png"}, "not a readable image"),
        ({"--factor": "scale"}, "unknown factor 'scale'"),
        ({"--values": "a,b"}, "comma-separated degrees"),
        ({"--calibration": "nowhere.json"}, "no calibration yet"),
        ({"--checkpoint": "nope.pt"}, "no such checkpoint"),
    ],
)
def test_manipulate_bad_inputs_fail_clearly(trained, evaluated, tmp_path, change, words):
    _, root, _ = trained
    (tmp_path / "broken.png").write_bytes(b"not a png")
    opts = {"--checkpoint": str(root / "models/faces-dcign/model.pt"),
            "--image": str(_png(tmp_path / "in.png")), "--factor": "azimuth",
            "--values": "0,30", "--out": str(tmp_path / "o.png"),
            "--calibration": str(root / "run1/eval/calibration.json")}
    for k, v in change.items():
        opts[k] = v if k in ("--factor", "--values") else str(tmp_path / v)
    result = CliRunner().invoke(main, ["manipulate", *[x for kv in opts.items() for x in kv]])
    assert result.exit_code != 0
    assert words in result.output
    assert not (tmp_path / "o.png").exists()


def test_report_shows_both_models(evaluated):
    _, root = evaluated
    result = CliRunner().invoke(main, ["report", "--metrics", str(root / "run1"), "--md"])
    assert result.exit_code == 0, result.output
    assert "| faces | equivariance.azimuth |" in result.output
    assert "DC-IGN" in result.output and "baseline" in result.output


def test_gate_directions_and_tolerances():
    assert direction("faces.dcign.equivariance.azimuth") == 1
    assert direction("faces.dcign.novel_view_mse.azimuth") == -1
    assert direction("faces.reference.novel_view_copy_mse.azimuth") == 0
    base = {"faces": {"dcign": {"equivariance": {"azimuth": 0.9}, "test_mse": 0.010}}}
    worse = {"faces": {"dcign": {"equivariance": {"azimuth": 0.8}, "test_mse": 0.0104}}}
    tol = {"*.equivariance.*": 0.05, "*.test_mse": 0.05}
    rows = {r.key: r for r in compare(base, worse, tol)}
    assert rows["faces.dcign.equivariance.azimuth"].failed  # 11% drop > 5%
    assert not rows["faces.dcign.test_mse"].failed  # 4% rise <= 5%
    assert not any(r.failed for r in compare(worse, base, tol))  # improvements never fail


def test_gate_on_two_commits(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@t")
    git("config", "user.name", "t")
    (tmp_path / "metrics").mkdir()
    params = tmp_path / "params.yaml"
    d = tiny_params_dict()
    d["gate"] = {"tolerance": {"*.dcign.equivariance.*": 0.05}}
    params.write_text(yaml.safe_dump(d))
    m = {"dcign": {"equivariance": {"azimuth": 0.95}},
         "baseline": {"equivariance": {"azimuth": 0.3}}}
    for tag, value in (("good", 0.95), ("bad", 0.80)):
        m["dcign"]["equivariance"]["azimuth"] = value
        (tmp_path / "metrics" / "faces.json").write_text(json.dumps(m))
        git("add", "-A")
        git("commit", "-qm", tag)
        git("tag", tag)
    runner = CliRunner()
    import os

    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        ok = runner.invoke(main, ["gate", "--base", "good", "--new", "good", "--params",
                                  str(params)])
        bad = runner.invoke(main, ["gate", "--base", "good", "--new", "bad", "--params",
                                   str(params), "--out", "report.md"])
        missing = runner.invoke(main, ["gate", "--base", "nosuchrev", "--params", str(params)])
    finally:
        os.chdir(cwd)
    assert ok.exit_code == 0, ok.output
    assert bad.exit_code == 1
    assert "REGRESSED" in bad.output and "faces.dcign.equivariance.azimuth" in bad.output
    assert (tmp_path / "report.md").read_text().startswith("Metrics:")
    assert missing.exit_code != 0 and "nosuchrev" in missing.output
