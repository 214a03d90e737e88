"""End to end: `dvc repro` on a tiny params setting in a git copy of the project, then a range
edit that must re-run exactly the dependent stages, then the regression gate on two commits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from core.shards import list_shards, read_shard
from tests.conftest import REPO, tiny_params_dict

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent
FACE_STAGES = {"render@faces", "train@faces-0", "evaluate@faces"}


def _tiny() -> dict:
    d = tiny_params_dict()
    d["render"]["image_size"] = 40
    # One test grid batch per test identity (4), so identity retrieval has a gallery.
    d["render"]["faces"]["batches"]["test"] = {"azimuth": 4, "elevation": 4, "light_azimuth": 4,
                                               "intrinsic": 1}
    d["render"]["chairs"]["batches"]["test"] = {"azimuth": 4, "intrinsic": 1}
    d["train"].update(steps={"faces": 3, "chairs": 3}, latent_dim=6,
                      enc_channels=[4, 4, 4], dec_channels=[4, 4, 4],
                      eval_every=3, eval_batches=2, log_every=1, loader_workers=0,
                      checkpoint_every=100, seeds=[0])
    d["evaluate"].update(max_codes=100, dci_trees=2, dci_depth=2, novel_view_inputs=2,
                         novel_view_targets=2, plot_identities=2,
                         traversal_inputs=2, traversal_steps=3)
    return d


def _run(cwd: Path, *cmd: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "DVC_NO_ANALYTICS": "1"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)


def _ok(cwd: Path, *cmd: str) -> str:
    r = _run(cwd, *cmd)
    assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A fresh git repository holding the tracked files of this project, tiny params."""
    root = tmp_path_factory.mktemp("project")
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    for f in files:
        src = REPO / f
        if src.is_file() and not f.startswith(("metrics/", "eval/", "models/")):
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / f)
    for lock in ("dvc.lock",):
        (root / lock).unlink(missing_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(_tiny(), sort_keys=False))
    _ok(root, "git", "init", "-q")
    _ok(root, "git", "config", "user.email", "ci@example.com")
    _ok(root, "git", "config", "user.name", "ci")
    _ok(root, "git", "add", "-A")
    _ok(root, "git", "commit", "-qm", "tiny project")
    return root


def test_repro_edit_ranges_and_gate(project):
    _ok(project, "dvc", "repro")
    for ds in ("faces", "chairs"):
        for split in ("train", "test"):
            assert list_shards(project / "data" / ds / split)
        for model in ("dcign", "baseline"):
            assert (project / "models" / f"{ds}-{model}" / "seed-0" / "model.pt").is_file()
        metrics = json.loads((project / "metrics" / f"{ds}.json").read_text())
        for model in ("dcign", "baseline"):
            m = metrics[model]
            assert {"test_mse", "equivariance", "angle_error_deg", "invariance",
                    "novel_view_mse", "novel_view_vs_oracle", "identity_retrieval", "mig",
                    "dci"} <= set(m)
        assert metrics["n_seeds"] == 1 and "novel_view_oracle_mse" in metrics["reference"]
        assert list((project / "eval" / ds / "plots").glob("*.png"))
    assert "render@faces" in (project / "dvc.lock").read_text()
    shown = _ok(project, "dvc", "metrics", "show", "--json")
    assert "equivariance" in shown
    _ok(project, "git", "add", "-A")
    _ok(project, "git", "commit", "-qm", "first run")

    # A train key re-runs training and evaluation, never rendering.
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"]["steps"]["chairs"] = 4
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = json.loads(_ok(project, "dvc", "status", "--json"))
    assert set(status) == {"train@chairs-0"}
    params["train"]["steps"]["chairs"] = 3
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert json.loads(_ok(project, "dvc", "status", "--json")) == {}

    # New azimuth range for faces: exactly the faces stages are out of date.
    params["render"]["faces"]["factors"]["azimuth"] = [0, 45]
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    status = json.loads(_ok(project, "dvc", "status", "--json"))
    # DVC names the stages whose own inputs changed: rendering only (evaluate reads no render
    # params any more); the trainers and evaluate follow once the data changes.
    assert set(status) == {"render@faces"}
    before = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    out = _ok(project, "dvc", "repro")
    after = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    rerun = {name for name in after if after[name] != before.get(name)}
    assert rerun == FACE_STAGES, out
    for split in ("train", "test"):
        for path in list_shards(project / "data" / "faces" / split):
            az = read_shard(path)[0].factors[..., 0]
            assert az.min() >= 0 and az.max() <= 45
    assert json.loads(_ok(project, "dvc", "status", "--json")) == {}
    _ok(project, "git", "add", "-A")
    _ok(project, "git", "commit", "-qm", "narrower azimuth")

    # The gate compares the two commits' metrics and prints a Markdown table.
    r = _run(project, "dcign", "gate", "--base", "HEAD~1", "--new", "HEAD")
    assert r.returncode in (0, 1), r.stderr
    assert "| faces.dcign.equivariance.azimuth |" in r.stdout
    same = _run(project, "dcign", "gate", "--base", "HEAD", "--new", "HEAD")
    assert same.returncode == 0 and "No gated metric regressed" in same.stdout
    diff = _ok(project, "dvc", "metrics", "diff", "HEAD~1", "--md")
    assert "metrics/faces.json" in diff


def _commit(project: Path, message: str) -> None:
    _ok(project, "git", "add", "-A")
    _ok(project, "git", "commit", "-qm", message)


def _set(project: Path, edit) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    edit(params)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def gated_project(tmp_path_factory) -> Path:
    """The tiny project with 3 training seeds, enough faces steps for reconstruction to be past
    its noise, and the gate on faces test MSE only."""
    root = tmp_path_factory.mktemp("gated")
    files = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                           check=True).stdout.split()
    for f in files:
        src = REPO / f
        if src.is_file() and not f.startswith(("metrics/", "eval/", "models/", "dvc.lock")):
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / f)
    d = _tiny()
    # PyTorch's default init, the ELBO, no centring, the counts mix, no norm and a constant
    # 5e-4, at which "a tenth of the steps" below was sized to be a regression past the 3 seeds'
    # noise (kaiming models at 4 and 40 tiny steps score alike).
    d["train"].update(steps={"faces": 40, "chairs": 2}, seeds=[0, 1, 2], init="torch",
                      kl_weight=1.0, center_extrinsic=False,
                      kind_mix={"faces": None, "chairs": None}, norm="none", lr=0.0005,
                      lr_schedule="constant")
    d["gate"] = {"tolerance": {"faces.*.test_mse": 0.10}}
    (root / "params.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    for cmd in (("git", "init", "-q"), ("git", "config", "user.email", "ci@example.com"),
                ("git", "config", "user.name", "ci")):
        _ok(root, *cmd)
    _commit(root, "tiny project")  # dvclive reads the current commit
    _ok(root, "dvc", "repro")
    _commit(root, "base")
    return root


def _gate(project: Path, base: str) -> subprocess.CompletedProcess:
    return _run(project, "dcign", "gate", "--base", base, "--new", "HEAD")


def test_the_gate_passes_documentation_and_seed_changes_and_fails_a_regression(gated_project):
    p = gated_project
    # Documentation only: nothing to re-run, identical metrics, a pass.
    (p / "README.md").write_text((p / "README.md").read_text() + "\nA note.\n")
    assert json.loads(_ok(p, "dvc", "status", "--json")) == {}
    _commit(p, "docs")
    r = _gate(p, "HEAD~1")
    assert r.returncode == 0 and "No gated metric regressed" in r.stdout, r.stdout + r.stderr

    # Other training seeds only: new models, the same method; within the seeds' noise.
    _set(p, lambda d: d["train"].update(seeds=[3, 4, 5]))
    _ok(p, "dvc", "repro")
    _commit(p, "other seeds")
    r = _gate(p, "HEAD~1")
    assert r.returncode == 0 and "No gated metric regressed" in r.stdout, r.stdout + r.stderr
    assert "(n=3)" in r.stdout  # mean ± sd over 3 seeds a side

    # A tenth of the training steps: a real regression, named.
    _set(p, lambda d: d["train"].update(seeds=[0, 1, 2], steps={"faces": 4, "chairs": 2}))
    _ok(p, "dvc", "repro")
    _commit(p, "a tenth of the steps")
    r = _gate(p, "HEAD~2")
    assert r.returncode == 1, r.stdout + r.stderr
    verdict = r.stdout.strip().splitlines()[-1]
    assert verdict.startswith("**") and "faces.dcign.test_mse" in verdict, r.stdout
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("| faces.dcign.test_mse |"))
    assert row.endswith("| REGRESSED |"), row
