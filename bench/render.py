"""Render throughput: the raw backend vs the whole stage (mesh + render + HDF5 write).

    python -m bench.render [--sizes 64,150] [--batches 200] [--out bench/RESULTS.md]
    python -m bench.render --backend blender --samples 1,4,16 --batches 4 --batches-per-shard 1

raw backend: backend.render() over exactly the images the stage renders, meshes pre-built.
stage: make_shards() from scratch into a temporary folder, 1 worker and 2 workers. Its time
includes starting the workers (process spawn, loading the identity source, a GL context or a
Blender scene), which only a run of many shards amortises, as the render stage's real runs do.
Numbers are images per second on this machine; the script appends a Markdown table to --out.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

# Run as a file, this folder would come first on sys.path and this script would shadow the
# `render` package; drop it (running `python -m bench.render` avoids this altogether).
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

from core.params import load_params  # noqa: E402
from render.stage import ShardRenderer, make_shards, one_blas_thread, shard_tasks  # noqa: E402
from render.views import View  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}"


def bench(dataset: str, size: int, batches: int, channels: int, backend: str,
          samples: int | None = None, per_shard: int = 10) -> dict[str, float]:
    per = max(1, batches // 4)
    counts = {"azimuth": per, "elevation": per, "light_azimuth": per}
    ds_kinds = ["azimuth", "intrinsic"] if dataset == "chairs" else [*counts, "intrinsic"]
    train = {k: (per if k != "intrinsic" else batches - per * (len(ds_kinds) - 1))
             for k in ds_kinds}
    overrides = [f"render.image_size={size}", f"render.channels={channels}",
                 f"render.backend={backend}",
                 f"render.{dataset}.batches.train={train}".replace("'", ""),
                 f"render.{dataset}.batches.test={dict.fromkeys(ds_kinds, 1)}".replace("'", ""),
                 f"render.batches_per_shard={per_shard}"]
    if samples is not None:  # Cycles samples per pixel (blender backend)
        overrides.append(f"render.blender.samples={samples}")
    params = load_params(REPO / "params.yaml", tuple(overrides))
    r = ShardRenderer(params, dataset)
    jobs = []
    for task in shard_tasks(params, dataset):
        for plan in r.plans(task):
            for i, f in zip(plan.identity, plan.factors):
                jobs.append((r.mesh(task.split, int(i)), View(*map(float, f))))
    with one_blas_thread():  # as in the stage's render processes
        for mesh, view in jobs[:20]:  # warm-up: shader compilation, caches
            r.backend.render(mesh, view)
        t0 = time.perf_counter()
        for mesh, view in jobs:
            r.backend.render(mesh, view)
        raw = len(jobs) / (time.perf_counter() - t0)
    r.close()
    out = {"images": len(jobs), "raw": raw}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            s = make_shards(params, dataset, tmp, workers=workers, progress=False)
            out[f"stage_{workers}"] = s.images / s.seconds
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--dataset", default="faces", choices=["faces", "chairs"])
    ap.add_argument("--sizes", default="64,150")
    ap.add_argument("--channels", type=int, default=1)
    ap.add_argument("--backend", default="pyrender")
    ap.add_argument("--batches", type=int, default=200, help="train minibatches rendered")
    ap.add_argument("--batches-per-shard", type=int, default=10,
                    help="small shards, so that 2 workers get equal shares of the work")
    ap.add_argument("--samples", default=None,
                    help="blender backend: Cycles samples per pixel to compare, e.g. 1,4,16 "
                         "(default: render.blender.samples of params.yaml)")
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    a = ap.parse_args()
    blender = a.backend == "blender"
    if a.samples is not None and not blender:
        ap.error("--samples applies to --backend blender only")
    samples = [int(s) for s in a.samples.split(",")] if a.samples else [None]
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                         text=True).stdout.strip()
    lines = [f"### render: {a.dataset}, {a.backend}, {a.channels} channel(s) "
             f"({date.today()}, commit {rev})", "", f"Machine: {machine()}",
             f"Command: `python -m bench.render {' '.join(sys.argv[1:])}`", "",
             "| size | " + ("samples | raw ms/img | " if blender else "")
             + "images | raw backend img/s | stage 1 worker img/s | stage 2 workers img/s "
             "| stage/raw time per image | 2 workers / 1 worker |",
             "|---|---|---|---|---|---|---|" + ("---|---|" if blender else "")]
    for size in map(int, a.sizes.split(",")):
        for spp in samples:
            r = bench(a.dataset, size, a.batches, a.channels, a.backend, spp,
                      a.batches_per_shard)
            cycles = f"{spp or 'params'} | {1000 / r['raw']:.1f} | " if blender else ""
            lines.append(f"| {size} | {cycles}{r['images']} | {r['raw']:.0f} | "
                         f"{r['stage_1']:.0f} | {r['stage_2']:.0f} | "
                         f"{r['raw'] / r['stage_1']:.2f}x | {r['stage_2'] / r['stage_1']:.2f}x |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
