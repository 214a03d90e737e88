"""Training lanes: DC-IGN and its baseline trained at once, in processes of their own, end with the
weights each gets alone; a lane's error reaches the caller; the CLI trains both in one call."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from core.shards import ShardError
from tests.conftest import REPO
from tests.train.conftest import TINY_TRAIN, make_params
from train import checkpoint
from train.fit import fit
from train.lanes import Lane, fit_lanes, lane_threads


def _same_weights(a: Path, b: Path) -> None:
    wa, wb = (checkpoint.read(p)["model_state"] for p in (a, b))
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"{k} differs"


def test_two_lanes_end_with_the_weights_of_each_run_alone(faces, tmp_path: Path) -> None:
    data, shards = faces
    params = make_params(data, steps=8)  # threads=1: the lanes' own thread count
    lanes = [Lane("dcign", 3, tmp_path / "lanes" / "dcign"),
             Lane("baseline", 3, tmp_path / "lanes" / "baseline")]
    results = fit_lanes(params, "faces", shards, lanes, jobs=2, progress=False)
    assert [r.steps for r in results] == [8, 8]
    for lane in lanes:
        alone = tmp_path / "alone" / lane.model_kind
        fit(params, "faces", shards, alone, model_kind=lane.model_kind, seed=3, progress=False)
        _same_weights(lane.out_dir / "model.pt", alone / "model.pt")
    # The two lanes trained different models, not one twice.
    assert checkpoint.read(lanes[0].out_dir / "model.pt")["model_kind"] != \
        checkpoint.read(lanes[1].out_dir / "model.pt")["model_kind"]


def test_a_lanes_error_reaches_the_caller(faces, tmp_path: Path) -> None:
    data, shards = faces
    lanes = [Lane("dcign", 0, tmp_path / "a"), Lane("baseline", 0, tmp_path / "b")]
    with pytest.raises(ShardError, match="no-shards"):
        fit_lanes(make_params(data, steps=2), "faces", tmp_path / "no-shards", lanes, jobs=2,
                  progress=False)
    with pytest.raises(ValueError, match="--jobs must be >= 1"):
        fit_lanes(make_params(data, steps=2), "faces", shards, lanes, jobs=0)


def test_lanes_refuse_a_distributed_launch(faces, tmp_path: Path, monkeypatch) -> None:
    data, shards = faces
    monkeypatch.setenv("WORLD_SIZE", "2")
    lanes = [Lane("dcign", 0, tmp_path / "a"), Lane("baseline", 0, tmp_path / "b")]
    with pytest.raises(ValueError, match="WORLD_SIZE > 1"):
        fit_lanes(make_params(data, steps=2), "faces", shards, lanes, jobs=2, progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_lanes_share_the_cores_unless_threads_is_set(faces) -> None:
    data, _ = faces
    assert lane_threads(make_params(data, threads=3), 2) == 3
    assert lane_threads(make_params(data, threads=0), 64) == 1


def test_the_cli_trains_both_models_in_one_call(faces, tmp_path: Path) -> None:
    data, shards = faces
    d = copy.deepcopy(data)
    d["train"].update(TINY_TRAIN, steps={"faces": 3, "chairs": 3})
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(d, sort_keys=False))
    r = subprocess.run([sys.executable, "-m", "pipeline.cli", "train", "faces", "--params",
                        str(params), "--model", "dcign", "--model", "baseline", "--seed", "0",
                        "--data", str(shards), "--jobs", "2", "--no-progress"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600,
                       env={"PYTHONPATH": str(REPO), "PATH": str(Path(sys.executable).parent)})
    assert r.returncode == 0, r.stderr
    # Each lane logs its own lines (spawned processes start without the parent's logging).
    for kind in ("dcign", "baseline"):
        assert f"dcign: train faces-{kind}: step 3/3" in r.stderr, r.stderr
    for kind in ("dcign", "baseline"):
        assert checkpoint.read(tmp_path / "models" / f"faces-{kind}" / "seed-0" / "model.pt")
    bad = subprocess.run([sys.executable, "-m", "pipeline.cli", "train", "faces", "--params",
                          str(params), "--model", "dcign", "--model", "baseline", "--out", "x"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600,
                         env={"PYTHONPATH": str(REPO), "PATH": str(Path(sys.executable).parent)})
    assert bad.returncode != 0 and "--out names one model's folder" in bad.stderr

