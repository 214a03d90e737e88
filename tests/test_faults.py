"""Fault injection: concurrent array jobs, flipped bytes, a full disk, mismatched inputs.

Each test reproduces a failure a cluster user met (issue 14) and checks the guarantee: nobody's
work is deleted, damage is named, the machine's faults are one line naming the path with a
non-zero exit, and nothing half-written looks finished.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest
import yaml

from core.atomic import remove_stale_temps, temp_name, write_bytes, writer_gone
from core.config import build
from core.params import Params
from core.shards import ShardError, SplitIndex, list_shards, read_shard
from render.stage import make_shards
from tests.conftest import REPO, tiny_params_dict
from train.data import MinibatchStream
from train.fit import FINAL, PARTIAL, fit

TINY_TRAIN = dict(steps=6, latent_dim=8, enc_channels=[4, 4, 4], dec_channels=[4, 4, 4],
                  log_every=2, eval_every=3, eval_batches=2, checkpoint_every=1000,
                  loader_workers=0, threads=1, device="cpu")
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def tiny(seed: int = 0, **render) -> dict:
    d = tiny_params_dict()
    d["seed"] = seed
    d["render"].update(image_size=38, batches_per_shard=1, **render)
    d["train"].update(TINY_TRAIN)
    return d


def write_params(path: Path, d: dict) -> Path:
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> dict[int, Path]:
    """Tiny faces shards (one minibatch per shard) from data seeds 0 and 1."""
    out = {}
    for seed in (0, 1):
        root = tmp_path_factory.mktemp(f"seed{seed}")
        make_shards(build(Params, tiny(seed)), "faces", root, progress=False)
        out[seed] = root
    return out


def files(root: Path) -> dict[str, bytes]:
    return {f"{s}/{p.name}": p.read_bytes() for s in ("train", "test")
            for p in list_shards(root / s)}


def cli(*args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "pipeline.cli", *args], cwd=REPO,
                          env=ENV, capture_output=True, text=True, timeout=600)


# ------------------------------------------------------------------ concurrent array jobs

# The CLI with every rename delayed by 2 s, as on a slow network file system: a job's temp file
# then sits in the shared folder long enough for another job to start beside it.
SLOW = ("import os, sys, time; r = os.replace; "
        "os.replace = lambda a, b: (time.sleep(2.0), r(a, b))[1]; "
        "sys.argv[0] = 'dcign'; from pipeline.cli import main; main()")


def _temps(root: Path) -> list[Path]:
    return [p for s in ("train", "test") if (root / s).is_dir()
            for p in (root / s).iterdir() if ".tmp-" in p.name]


def test_concurrent_subset_jobs_and_restarts_equal_one_process(shards, tmp_path):
    params = write_params(tmp_path / "params.yaml", tiny(0))
    out = tmp_path / "data"

    def job(i: int) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", SLOW, "render", "faces", "--params", str(params), "--out",
             str(out), "--shard-index", str(i), "--num-shards", "2", "--no-progress"],
            cwd=REPO, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    first = job(0)
    deadline = time.time() + 120
    while not _temps(out) and time.time() < deadline:  # job 0 is mid-write...
        time.sleep(0.02)
    assert _temps(out), "job 0 never began a shard"
    # ...when job 1 starts (it clears stale temps first), and job 0 is restarted while it
    # still runs, as a scheduler retrying a job it thinks lost would.
    jobs = [first, job(1), job(0)]
    outputs = [p.communicate(timeout=600)[0] for p in jobs]
    assert [p.returncode for p in jobs] == [0, 0, 0], outputs
    assert not _temps(out)
    assert files(out) == files(shards[0])  # the union, byte for byte


def test_a_temp_is_stale_only_when_its_writer_is_provably_gone(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        mine = temp_name(tmp_path / "a.h5")
        gone = mine.with_name(mine.name.rsplit("-", 1)[0] + f"-{dead.pid}")
        running = mine.with_name(mine.name.rsplit("-", 1)[0] + f"-{alive.pid}")
        elsewhere = tmp_path / "b.h5.tmp-otherhost-1"  # another machine on a shared disk
        for p in (mine, gone, running, elsewhere):
            p.write_bytes(b"partial")
        assert [writer_gone(p) for p in (mine, gone, running, elsewhere)] == [
            False, True, False, False]
        assert remove_stale_temps(tmp_path) == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            p.name for p in (mine, running, elsewhere))
    finally:
        alive.kill()
        alive.wait()


# ------------------------------------------------------------------ integrity


def flip_byte(path: Path, dataset: str, chunk: int = 0) -> None:
    """Flip one byte in the middle of a stored chunk of `dataset` (its data, not metadata)."""
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(chunk)
    data = bytearray(path.read_bytes())
    data[info.byte_offset + info.size // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("dataset", ["images", "factors", "identity", "kind"])
def test_a_flipped_byte_anywhere_is_re_rendered_and_named(shards, tmp_path, dataset):
    root = shutil.copytree(shards[0], tmp_path / "data")
    victim = list_shards(root / "train")[1]
    flip_byte(victim, dataset)
    with pytest.raises(ShardError, match=f"{victim.name}: dataset '{dataset}'.* is damaged"):
        read_shard(victim)
    # Training names the shard: at start (labels) or when it reads the damaged images.
    with pytest.raises(ShardError, match=f"{victim.name}: dataset '{dataset}'"):
        index = SplitIndex.scan(root / "train")
        ds = MinibatchStream(index, seed=0)
        for fi in range(len(index.files)):
            ds.read(fi, 0)
    r = cli("train", "faces", "--model", "dcign", "--data", str(root), "--out",
            str(tmp_path / "m"), "--params", str(write_params(tmp_path / "p.yaml", tiny(0))),
            "--set", "train.steps=40", "--set", "train.loader_workers=1", "--no-progress")
    assert r.returncode == 1 and victim.name in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()[-1]) < 400
    # The render stage does not call it up to date: it re-renders exactly that shard.
    s = make_shards(build(Params, tiny(0)), "faces", root, progress=False)
    assert s.rendered == 1
    assert files(root) == files(shards[0])


def test_a_folder_mixing_two_data_seeds_is_refused(shards, tmp_path):
    root = shutil.copytree(shards[0], tmp_path / "data")
    foreign = list_shards(shards[1] / "train")[2]
    shutil.copy(foreign, root / "train" / foreign.name)
    with pytest.raises(ShardError, match=f"{foreign.name}: rendered from other params"):
        SplitIndex.scan(root / "train")


def test_training_refuses_another_datasets_shards(shards, tmp_path):
    params = write_params(tmp_path / "p.yaml", tiny(0))
    r = cli("train", "chairs", "--model", "dcign", "--data", str(shards[0]), "--out",
            str(tmp_path / "m"), "--params", str(params), "--no-progress")
    assert r.returncode == 1 and "a 'faces' shard, but this trains 'chairs'" in r.stderr


def test_resume_refuses_other_shards_naming_both(shards, tmp_path):
    params = build(Params, tiny(0))
    fit(params, "faces", shards[0], tmp_path, model_kind="dcign", progress=False, stop_after=2)
    with pytest.raises(ValueError, match=r"trained on other shards than .*seed1.*checkpoint "
                                         r"data \{'train': '\w+', 'test': '\w+'\}, folder"):
        fit(params, "faces", shards[1], tmp_path, model_kind="dcign", progress=False,
            resume=True)


# ------------------------------------------------------------------ earlier outputs kept


def test_a_failed_rerun_keeps_the_finished_model_and_its_curves(shards, tmp_path):
    params = build(Params, tiny(0))
    fit(params, "faces", shards[0], tmp_path, model_kind="baseline", progress=False)
    keep = {p: p.read_bytes() for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    assert tmp_path / FINAL in keep and tmp_path / "train.json" in keep
    # A new run (no --resume) that stops before its end, as a failed or killed run does.
    other = build(Params, {**tiny(0), "train": {**tiny(0)["train"], "lr": 7e-4}})
    fit(other, "faces", shards[0], tmp_path, model_kind="baseline", progress=False,
        stop_after=3)
    assert {p: p.read_bytes() for p in keep} == keep  # model, train.json and curves as they were
    assert (tmp_path / PARTIAL / "last.pt").is_file()
    # Run to its end, it replaces all three.
    fit(other, "faces", shards[0], tmp_path, model_kind="baseline", progress=False)
    assert (tmp_path / FINAL).read_bytes() != keep[tmp_path / FINAL]
    assert not (tmp_path / PARTIAL).exists()


# ------------------------------------------------------------------ a full disk


def small_disk(mount: Path, kib: int) -> tuple[str, ...] | None:
    """A command prefix running its command with `mount` a fresh tmpfs of `kib` KiB, in a
    private mount namespace (root, or an unprivileged user namespace); None if not allowed."""
    mount.mkdir(parents=True, exist_ok=True)
    prefix = ("unshare", "-rm", "sh", "-c",
              f'mount -t tmpfs -o size={kib}k tmpfs "{mount}" && exec "$@"', "sh")
    if shutil.which("unshare") is None:
        return None
    probe = subprocess.run([*prefix, "true"], capture_output=True)
    return prefix if probe.returncode == 0 else None


# Run inside the namespace after the command: what the small disk holds, as JSON.
LIST = ("import json, sys, pathlib; from core.shards import validate; root = "
        "pathlib.Path(sys.argv[1]); files = [str(p.relative_to(root)) for p in root.rglob('*') "
        "if p.is_file()]; ok = [validate(root / f).num_batches for f in files if "
        "f.endswith('.h5')]; print(json.dumps({'files': files, 'valid': len(ok)}))")


def _on_small_disk(tmp_path: Path, kib: int, args: list[str]) -> tuple[int, str, dict]:
    mount = tmp_path / "disk"
    prefix = small_disk(mount, kib)
    if prefix is None:
        pytest.skip("no tmpfs mount allowed here (no root, no user namespaces); "
                    "test_a_full_disk_is_one_line_without_a_mount covers the write path")
    script = (f'{sys.executable} -m pipeline.cli "$@" 2>"{tmp_path}/err"; echo $? '
              f'>"{tmp_path}/rc"; {sys.executable} -c "{LIST}" "{mount}" >"{tmp_path}/ls"')
    subprocess.run([*prefix, "sh", "-c", script, "sh", *args], cwd=REPO, env=ENV, timeout=600,
                   check=True)
    return (int((tmp_path / "rc").read_text()), (tmp_path / "err").read_text(),
            json.loads((tmp_path / "ls").read_text()))


def test_render_onto_a_full_disk_is_one_line_and_leaves_only_whole_shards(tmp_path):
    params = write_params(tmp_path / "p.yaml", tiny(0))
    rc, err, disk = _on_small_disk(tmp_path, 48, [
        "render", "faces", "--params", str(params), "--out", str(tmp_path / "disk" / "data"),
        "--no-progress"])
    last = err.strip().splitlines()[-1]
    assert rc == 1, err  # not 139: HDF5 writing onto the full disk crashed the process
    assert "no space left on device" in last and "/disk/data/" in last and ".h5" in last, err
    assert "Traceback" not in err
    assert not [f for f in disk["files"] if ".tmp-" in f]
    assert disk["valid"] == len(disk["files"]) > 0  # the shards that fit are whole


def test_training_onto_a_full_disk_is_one_line(shards, tmp_path):
    params = write_params(tmp_path / "p.yaml", tiny(0))
    rc, err, disk = _on_small_disk(tmp_path, 24, [
        "train", "faces", "--model", "dcign", "--data", str(shards[0]), "--params", str(params),
        "--out", str(tmp_path / "disk" / "m"), "--no-progress"])
    assert rc == 1, err
    last = err.strip().splitlines()[-1]
    assert "no space left on device" in last and "/disk/m" in last, err
    assert "Traceback" not in err and "inline_container" not in err
    assert "m/model.pt" not in disk["files"]


def test_a_full_disk_is_one_line_without_a_mount(tmp_path, monkeypatch):
    """Where mounting is not permitted: the write itself fails with ENOSPC."""
    import builtins

    real_open = builtins.open

    class Full:
        def __init__(self, f):
            self.f = f

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr("core.atomic.open", lambda *a, **k: Full(real_open(*a, **k)),
                        raising=False)
    target = tmp_path / "out" / "x.bin"
    target.parent.mkdir()
    with pytest.raises(OSError, match=f"cannot write {target}: no space left on device"):
        write_bytes(target, b"data")
    assert list(target.parent.iterdir()) == []


def test_an_output_folder_that_vanishes_mid_write_is_one_line(tmp_path):
    from core.atomic import atomic_path

    folder = tmp_path / "out"
    with pytest.raises(OSError, match=f"cannot write {folder}/x.h5: folder vanished"):
        with atomic_path(folder / "x.h5") as tmp:
            shutil.rmtree(folder)  # another process (or a user) removed it
            tmp.write_bytes(b"data")
    assert not folder.exists()


def test_a_read_only_output_folder_is_one_line(shards, tmp_path):
    if os.geteuid() == 0:
        prefix = small_disk(tmp_path / "ro", 64)
        if prefix is None:
            pytest.skip("root ignores permissions and no mount namespace is allowed")
        ro = tmp_path / "ro"
        script = (f'mount -o remount,ro "{ro}" && {sys.executable} -m pipeline.cli "$@"')
        r = subprocess.run([*prefix, "sh", "-c", script, "sh", "render", "faces", "--params",
                            str(write_params(tmp_path / "p.yaml", tiny(0))), "--out",
                            str(ro / "data"), "--no-progress"], cwd=REPO, env=ENV,
                           capture_output=True, text=True, timeout=600)
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        r = cli("render", "faces", "--params", str(write_params(tmp_path / "p.yaml", tiny(0))),
                "--out", str(ro / "data"), "--no-progress")
    assert r.returncode == 1, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert str(ro / "data") in last and ("read-only" in last or "permission denied" in last)
    assert "Traceback" not in r.stderr


# ------------------------------------------------------------------ memory, checked up front


def test_a_shard_size_beyond_the_machines_memory_is_refused_before_work(tmp_path):
    # 2,000,000 minibatches of 4 images at 1024 px per shard: 8 TB of images per worker.
    params = write_params(tmp_path / "p.yaml", tiny(0))
    r = cli("render", "faces", "--params", str(params), "--out", str(tmp_path / "data"),
            "--set", "render.image_size=1024", "--set", "render.batches_per_shard=2000000",
            "--no-progress")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "GiB of memory" in last and "render.batches_per_shard" in last
    assert not list((tmp_path / "data").rglob("*.h5"))


def test_a_training_step_beyond_the_machines_memory_is_refused_before_work(shards, tmp_path):
    params = write_params(tmp_path / "p.yaml", tiny(0))
    r = cli("train", "faces", "--model", "dcign", "--data", str(shards[0]), "--params",
            str(params), "--out", str(tmp_path / "m"), "--set",
            "train.minibatches_per_step=10000000", "--no-progress")
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert "training step of 40000000 images" in last and "train.minibatches_per_step" in last
    assert not (tmp_path / "m").exists()


def test_the_step_estimate_grows_with_the_images():
    from train.model import ModelConfig
    from train.step import step_memory

    cfg = ModelConfig(64, 1, 200, (96, 48, 24), (48, 96, 96))
    one, twenty = step_memory(cfg, 1), step_memory(cfg, 20)
    weights = (one * 20 - twenty) / 19  # the fixed part
    assert 0 < weights < one and 100e6 < twenty < 2e9
