"""Smoke runs of the benchmark scripts on tiny settings: they must run and write their tables
(the numbers themselves are recorded in bench/RESULTS.md, never asserted)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.config import build
from core.params import Params
from render.stage import make_shards
from tests.conftest import REPO, tiny_params_dict

pytestmark = pytest.mark.slow


def _bench(tmp_path: Path, module: str, *args: str) -> str:
    out = tmp_path / "results.md"
    r = subprocess.run([sys.executable, "-m", module, *args, "--out", str(out)], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return out.read_text()


def test_render_bench_writes_a_row_per_size(tmp_path):
    text = _bench(tmp_path, "bench.render", "--dataset", "chairs", "--sizes", "40",
                  "--batches", "4", "--batches-per-shard", "1")
    assert "### render: chairs, pyrender" in text
    rows = [line for line in text.splitlines() if line.startswith("| 40 |")]
    assert len(rows) == 1 and rows[0].count("|") == 8, text


def test_chair_build_bench_writes_its_row(tmp_path):
    row = _bench(tmp_path, "bench.chair_build", "--chairs", "3").strip()
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[0] == "3" and float(cells[1]) > 0 and float(cells[2]) > 0
    assert cells[3]  # the CPU


def test_train_bench_writes_step_and_loader_tables(tmp_path):
    text = _bench(tmp_path, "bench.train", "--sizes", "40", "--groups", "1", "--steps", "1",
                  "--budget", "120", "--workers", "0", "--loader-steps", "4", "--threads", "1")
    step_rows = [line for line in text.splitlines() if line.startswith("| 40 | 1 |")]
    assert len(step_rows) == 1 and "skipped" not in step_rows[0], text
    loader_rows = [line for line in text.splitlines() if line.startswith("| 40 | 0 |")]
    assert len(loader_rows) == 1, text


def test_azimuth_pca_writes_a_row_per_window_and_component(tmp_path):
    data = tmp_path / "faces"
    make_shards(build(Params, tiny_params_dict()), "faces", data, progress=False)
    text = _bench(tmp_path, "bench.azimuth_pca", "--data", str(data), "--windows", "90,60",
                  "--components", "2")
    rows = [line for line in text.splitlines() if line.startswith("| ±")]
    assert [r.split("|")[1].strip() for r in rows] == ["±90", "±90", "±60", "±60"], text
    shares = [float(r.split("|")[4]) for r in rows]
    assert all(0 < x <= 1 for x in shares) and shares[0] >= shares[1], text
    # --view keeps the minibatches seen from a range of another factor (every one here).
    text = _bench(tmp_path, "bench.azimuth_pca", "--data", str(data), "--factor", "elevation",
                  "--windows", "90", "--components", "1", "--view", "azimuth=0,91")
    assert "--view azimuth=0,91" in text and "0 <= \\|azimuth\\| < 91" in text, text
    last = text[text.rindex("### elevation minibatches"):]  # _bench's file holds both tables
    assert len([ln for ln in last.splitlines() if ln.startswith("| ±90 |")]) == 1, text
    r = subprocess.run([sys.executable, "-m", "bench.azimuth_pca", "--data", str(data),
                        "--factor", "elevation", "--view", "elevation=0,10"], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "not another factor" in r.stderr, r.stderr


def test_gate_noise_writes_spread_false_alarms_and_detection(tmp_path):
    overrides = tmp_path / "tiny.txt"
    overrides.write_text("\n".join([
        "render.image_size=40", "render.batch_size=4", "render.batches_per_shard=8",
        "render.faces.identities={train: 6, test: 4}",
        "render.faces.batches={train: {azimuth: 2, elevation: 1, light_azimuth: 1, "
        "intrinsic: 2}, test: {azimuth: 4, elevation: 4, light_azimuth: 4, intrinsic: 1}}",
        "render.chairs.identities={train: 6, test: 4}",
        "render.chairs.batches={train: {azimuth: 2, intrinsic: 2}, test: {azimuth: 4, "
        "intrinsic: 1}}",
        "train.steps={faces: 10, chairs: 10}", "train.latent_dim=6", "train.enc_channels=[4,4,4]",
        "train.dec_channels=[4,4,4]", "train.eval_every=10", "train.eval_batches=2",
        "evaluate.max_codes=100", "evaluate.dci_trees=2", "evaluate.dci_depth=2",
        "evaluate.plot_identities=1", "evaluate.traversal_inputs=1", "evaluate.traversal_steps=2",
    ]) + "\n")
    text = _bench(tmp_path, "bench.gate_noise", "--seeds", "6", "--changes", "2",
                  "--overrides", str(overrides))
    assert "### gate noise at the CI setting" in text
    assert "| faces.dcign.test_mse |" in text and "| chairs.dcign.test_mse |" in text, text
    assert "False-alarm rate: " in text and " of 2 seed-only changes." in text, text
    assert "Regression (train.steps a tenth" in text, text


def test_sweep_trains_and_scores_each_value_and_model(tmp_path):
    p = tiny_params_dict()
    p["render"]["image_size"] = 40
    # Test batches on the shared grid: one per test identity for each extrinsic kind.
    p["render"]["faces"]["batches"]["test"] = {"azimuth": 4, "elevation": 4, "light_azimuth": 4,
                                               "intrinsic": 1}
    data = tmp_path / "faces"
    make_shards(build(Params, p), "faces", data, progress=False)
    tiny = ["train.steps={faces: 4, chairs: 4}", "train.latent_dim=6",
            "train.enc_channels=[4,4,4]", "train.dec_channels=[4,4,4]", "train.eval_every=4",
            "train.eval_batches=2", "evaluate.max_codes=100", "evaluate.dci_trees=2",
            "evaluate.dci_depth=2"]
    text = _bench(tmp_path, "bench.sweep", "--key", "train.kl_weight", "--value", "1",
                  "--value", "0.1", "--models", "dcign,baseline", "--data", str(data),
                  "--root", str(tmp_path / "runs"), "--threads", "1",
                  *(arg for s in tiny for arg in ("--set", s)))
    assert "### train.kl_weight sweep: faces" in text
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in text.splitlines()
            if ln.startswith(("| 1 |", "| 0.1 |"))]
    assert [r[:2] for r in rows] == [["1", "dcign"], ["1", "baseline"], ["0.1", "dcign"],
                                     ["0.1", "baseline"]], text
    assert float(rows[0][2]) > 0 and rows[1][2] == "-", text  # only DC-IGN has a clamp ratio
    scores = json.loads((tmp_path / "runs" / "train.kl_weight=0.1" / "dcign"
                         / "scores.json").read_text())
    assert "train.kl_weight=0.1" in scores["overrides"]
    # bench.curves reads the runs' logged test curves side by side.
    runs = [str(tmp_path / "runs" / f"train.kl_weight={v}" / "dcign") for v in ("1", "0.1")]
    curves = _bench(tmp_path, "bench.curves", *runs, "--names", "a,b")
    rows = [ln for ln in curves.splitlines() if ln.startswith("| 4 |")]
    assert len(rows) == 1 and all(float(c) > 0 for c in rows[0].strip("|").split("|")[1:]), curves
    # bench.latent_probe reads a factor from a trained checkpoint's features and code.
    probe = _bench(tmp_path, "bench.latent_probe", f"{runs[0]}/model.pt", "--data", str(data),
                   "--by-view")
    row = next(ln for ln in probe.splitlines() if ln.startswith(f"| {runs[0]}/model.pt"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "step 4" and all(-1 <= float(c) <= 1 for c in cells[2:6]), probe
    # --by-view: six bins along elevation, then the within-minibatch r by azimuth bin.
    bins = [ln for ln in probe.splitlines() if re.match(r"\| -?\d+ to -?\d+ \|", ln)]
    assert len(bins) == 6 and "\\|azimuth\\| 0-30" in probe, probe
    r_row = next(ln for ln in probe.splitlines() if ln.startswith("| elevation latent |"))
    assert all(0 <= float(c.split("±")[0]) <= 1 for c in r_row.strip("|").split("|")[1:]
               if c.strip()), probe
    # bench.identity_curve scores retrieval at each chunk, then the finished model in full;
    # --no-curves (bench/gpu.sh, on a machine without dvclive) leaves no live/.
    sets = [arg for s in tiny for arg in ("--set", s)]
    idc = tmp_path / "id"
    cmd = ["--data", str(data), "--root", str(idc), *sets]
    r = subprocess.run([sys.executable, "-m", "bench.identity_curve", "--name", "tiny",
                        "--steps", "4", "--every", "2", "--no-curves", *cmd], cwd=REPO,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    curve = json.loads((idc / "tiny" / "curve.json").read_text())
    assert [p["step"] for p in curve["points"]] == [2, 4]
    assert all(0 <= p["grid"] <= 1 and 0 <= p["intrinsic_train"] <= 1 for p in curve["points"])
    assert "identity_retrieval" in curve["final"]
    assert (idc / "tiny" / "run" / "model.pt").is_file() and not (idc / "tiny" / "run"
                                                                   / "live").exists()
    # --score-only scores a model trained elsewhere, at its own step, as the run scored it.
    (idc / "moved" / "run").mkdir(parents=True)
    shutil.copy(idc / "tiny" / "run" / "model.pt", idc / "moved" / "run" / "model.pt")
    r = subprocess.run([sys.executable, "-m", "bench.identity_curve", "--name", "moved",
                        "--score-only", *cmd], cwd=REPO, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    moved = json.loads((idc / "moved" / "curve.json").read_text())
    assert [p["step"] for p in moved["points"]] == [4] and moved["final_step"] == 4
    assert moved["points"][0]["grid"] == curve["points"][-1]["grid"]
    assert moved["final"]["test_mse"] == curve["final"]["test_mse"]
    r = subprocess.run([sys.executable, "-m", "bench.identity_curve", "--name", "none",
                        "--score-only", *cmd], cwd=REPO, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode != 0 and "holds no model.pt or partial/last.pt" in r.stderr, r.stderr
    assert not (idc / "none" / "curve.json").exists()
    table = _bench(tmp_path, "bench.identity_curve", "--table", "tiny", "--root",
                   str(tmp_path / "id"))
    assert "| 4 |" in table and "At step 4, scored as the evaluate stage does" in table, table
    # bench.lanes times the pair one after the other and as lanes.
    lanes = _bench(tmp_path, "bench.lanes", "--steps", "2", "--rounds", "1", "--data", str(data))
    assert "| one after the other |" in lanes and "| lanes (--jobs 2) |" in lanes, lanes


def test_cpu_bench_writes_a_row_per_model_and_variant(tmp_path):
    from core.device import cpu_has_bf16

    # Emulated bf16 (no avx512_bf16 or AMX) made this smoke run exceed its 600 s on an AMD EPYC
    # without AVX-512 (2026-12-03); its bf16 row is run only where the CPU computes in bf16
    # (bf16 autocast itself: tests/train/test_model.py).
    variants = ["contiguous", "channels-last"] + (["bf16"] if cpu_has_bf16() else [])
    text = _bench(tmp_path, "bench.cpu", "--models", "default", "--variants",
                  ",".join(variants), "--steps", "1", "--rounds", "1")
    rows = [line for line in text.splitlines() if line.startswith("| default")]
    assert [r.split(" | ")[1] for r in rows] == variants, text
    assert "Peak (best 2048^2 matmul): fp32 " in text and "of fp32" in text, text


def test_gpu_check_runs_on_a_cpu_and_reports_whether_the_loss_fell(tmp_path):
    out = tmp_path / "gpu.md"
    r = subprocess.run([sys.executable, "-m", "bench.gpu", "--device", "cpu", "--size", "40",
                        "--latent", "8", "--steps", "12", "--warmup", "1", "--group", "1",
                        "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                       timeout=600)
    rows = [ln for ln in out.read_text().splitlines() if ln.startswith("| eager")]
    assert len(rows) == 1, r.stdout + r.stderr
    fell = rows[0].rstrip(" |").endswith("yes")
    assert r.returncode == (0 if fell else 1), r.stdout + r.stderr


def test_gpu_check_refuses_a_missing_cuda_device():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    r = subprocess.run([sys.executable, "-m", "bench.gpu", "--device", "cuda"], cwd=REPO,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no CUDA device" in r.stderr


def test_ablation_table_sets_each_clamp_effect_beside_its_welch_p(tmp_path):
    from scipy.stats import ttest_ind_from_stats

    def tree(dcign: float, base: float, sd: float) -> dict:
        m = lambda v: {"test_mse": v, "equivariance": {"azimuth": v}}  # noqa: E731
        return {"n_seeds": 3, "dcign": m(dcign), "baseline": m(base),
                "sd": {"dcign": m(sd), "baseline": m(sd)}, "reference": {}}

    root = tmp_path / "ablation"  # a known result set: its configurations in their order
    for config, t in (("flip-odd", tree(0.8, 0.8, 0.05)), ("paper-method", tree(0.9, 0.5, 0.1))):
        (root / config).mkdir(parents=True)
        (root / config / "faces.json").write_text(json.dumps(t))
    r = subprocess.run([sys.executable, "-m", "bench.ablation", "--results", str(root)],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("| equivariance.azimuth"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    p = ttest_ind_from_stats(0.9, 0.1, 3, 0.5, 0.1, 3, equal_var=False).pvalue
    assert cells[1:5] == ["0.9 ± 0.1", "0.5 ± 0.1", "0.8 ± 0.05", "0.8 ± 0.05"], row
    assert cells[5] == f"+0.4 (p {p:.2g})", row
    assert cells[6].startswith("+0 "), row  # no effect: p = 1


def test_each_ablation_configuration_is_expressible_in_params():
    from bench.ablation import RESULT_SETS
    from core.params import load_params

    paper_mix = {"azimuth": 1.0, "elevation": 1.0, "light_azimuth": 1.0, "intrinsic": 10.0}
    flip_odd = ("azimuth", "light_azimuth")
    # (init, kl_weight, center_extrinsic, norm, lr, lr schedule, faces steps) and, per
    # configuration, (odd factors, faces mix) as each committed result set was trained: a
    # default that changes must be pinned here.
    before_norm = ("none", 0.0005, "constant", 1600)
    steps_6000 = ("kaiming", 0.1, True, "group", 0.001, "cooldown", 6000)
    want = {
        "default-6000-scene-light": (steps_6000,
                                     {"paper-method": ((), paper_mix),
                                      "flip-odd": (flip_odd, paper_mix)}),
        "default-6000-xeon": (steps_6000,
                              {"paper-method": ((), paper_mix), "flip-odd": (flip_odd, paper_mix)}),
        "ablation": (("kaiming", 0.1, True, *before_norm),
                     {"paper-method": ((), paper_mix), "flip-odd": (flip_odd, paper_mix)}),
        "ablation-previous-defaults": (("torch", 1.0, False, *before_norm),
                                       {"paper-method": ((), paper_mix),
                                        "paper-encoder": ((), None),
                                        "flip-odd": (flip_odd, None)}),
    }
    # The light's world elevation each set's data was rendered with (None: the camera's).
    light = {"default-6000-scene-light": 30.0, "default-6000-xeon": None, "ablation": None,
             "ablation-previous-defaults": None}
    assert set(RESULT_SETS) == set(want) == set(light)
    for name, configs in RESULT_SETS.items():
        assert (REPO / "results" / name).is_dir(), name
        got = {}
        for config, (_, sets) in configs.items():
            p = load_params(REPO / "params.yaml", sets)
            assert p.render.light.elevation == light[name], (name, config)
            t = p.train
            assert tuple(t.seeds) == (0, 1, 2), config
            assert (t.init, t.kl_weight, t.center_extrinsic, t.norm, t.lr, t.lr_schedule,
                    t.steps["faces"]) == want[name][0], (name, config)
            assert t.steps["chairs"] == 800, (name, config)
            got[config] = (tuple(t.odd_factors["faces"]), t.mix_for("faces"))
        assert got == want[name][1], name


def test_eval_layout_bench_writes_both_layouts(tmp_path):
    text = _bench(tmp_path, "bench.eval_layout", "--images", "8", "--rounds", "1")
    rows = [ln for ln in text.splitlines() if ln.startswith(("| contiguous", "| channels-last"))]
    assert len(rows) == 2 and all(float(r.split("|")[2]) > 0 for r in rows), text
    assert "largest difference: codes" in text
