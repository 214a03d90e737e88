"""Training throughput: one optimiser step of DC-IGN (clamped) vs the baseline, and the loader.

    python -m bench.train [--sizes 64,150] [--groups 1,4,16] [--steps 3] [--budget 300]
                          [--workers 0,1,2] [--out bench/RESULTS.md]

step: forward + backward + Adam on G minibatches of 20 images (the paper's widths, latent 200):
the work of one `fit()` step minus the loader (uint8 -> float, per-item noise, the clamp for
DC-IGN, the summed loss). Median of --steps timed steps after one warm-up step. Random images:
the cost does not depend on the content. clamp overhead = DC-IGN time / baseline time.
loader: MinibatchStream + make_loader over faces shards rendered for the bench (40 minibatches,
read from the page cache after the first pass), G = 1, for each worker count; loader/step = how
many times faster the loader delivers images than a DC-IGN G=1 step consumes them (> 1: the loader
is not the bottleneck).

A 150 px G=16 step can take minutes of CPU time, so the step timings keep to --budget seconds: a
configuration whose estimated cost (from the largest G already timed at that size) does not fit
what is left is reported as skipped with its estimate. Numbers are images per second on this
machine; the script appends Markdown tables to --out.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import torch

from bench.render import machine
from core.params import load_params
from core.shards import SplitIndex
from render.stage import make_shards
from train.clamp import LatentAssignment
from train.data import MinibatchStream, make_loader
from train.model import DCIGN, ModelConfig
from train.step import backward_step, item_noise

REPO = Path(__file__).resolve().parents[1]
BATCH = 20
LATENT = 200
KINDS = ("azimuth", "elevation", "light_azimuth", "intrinsic")  # the faces kinds, cycled over G
LOADER_BATCHES = 40


def commit() -> str:
    """The checked-out commit, read from .git without running git."""
    git = REPO / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:7]
        ref = head[5:]
        if (git / ref).is_file():
            return (git / ref).read_text().strip()[:7]
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line[:7]
    except OSError:
        pass
    return "unknown"


@dataclass
class StepTiming:
    seconds: float  # median seconds per step
    steps: int  # timed steps

    def images_per_second(self, group: int) -> float:
        return group * BATCH / self.seconds


def time_steps(size: int, group: int, model_kind: str, steps: int) -> StepTiming:
    """Median wall time of `steps` training steps after one warm-up step."""
    torch.manual_seed(0)
    cfg = ModelConfig(image_size=size, channels=1, latent_dim=LATENT)
    model = DCIGN(cfg).train()
    opt = torch.optim.Adam(model.parameters(), lr=5e-4, betas=(0.9, 0.99))
    assignment = LatentAssignment(KINDS[:-1], LATENT)
    kinds = [KINDS[g % len(KINDS)] for g in range(group)]
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (group, BATCH, 1, size, size), dtype=torch.uint8, generator=gen)
    items = torch.arange(group)
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        x = images.flatten(0, 1).float().div_(255)  # (G*B, 1, H, W)
        noise = item_noise(0, items + i * group, BATCH, LATENT)
        opt.zero_grad(set_to_none=True)
        backward_step(model, x, kinds, noise, model_kind=model_kind, assignment=assignment,
                      clamp_scale=0.01)
        opt.step()
        if i > 0:  # the first step pays for allocations and kernel selection
            times.append(time.perf_counter() - t0)
    return StepTiming(statistics.median(times), len(times))


def render_bench_shards(size: int, out: Path) -> Path:
    per = LOADER_BATCHES // 4
    train = {"azimuth": per, "elevation": per, "light_azimuth": per,
             "intrinsic": LOADER_BATCHES - 3 * per}
    overrides = (f"render.image_size={size}", f"render.batch_size={BATCH}",
                 "render.faces.identities={train: 40, test: 20}",
                 f"render.faces.batches.train={train}".replace("'", ""),
                 f"render.faces.batches.test={dict.fromkeys(KINDS, 1)}".replace("'", ""))
    make_shards(load_params(REPO / "params.yaml", overrides), "faces", out, progress=False)
    return out / "train"


def loader_rate(split_dir: Path, workers: int, steps: int) -> float:
    """Images per second delivered by make_loader (G = 1), after the first batch arrives."""
    ds = MinibatchStream(SplitIndex.scan(split_dir), seed=0)
    loader = make_loader(ds, start=0, stop=steps + 1, group=1, workers=workers)
    it = iter(loader)
    next(it)  # worker start-up and the first reads are not throughput
    t0 = time.perf_counter()
    n = sum(batch["images"].shape[0] * batch["images"].shape[1] for batch in it)
    rate = n / (time.perf_counter() - t0)
    del it, loader
    ds.close()
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="64,150")
    ap.add_argument("--groups", default="1,4,16", help="minibatches per step (G)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per configuration")
    ap.add_argument("--budget", type=float, default=300.0,
                    help="seconds for the step timings; configurations that do not fit are skipped")
    ap.add_argument("--workers", default="0,1,2", help="loader worker counts")
    ap.add_argument("--loader-steps", type=int, default=200, help="minibatches read per timing")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                    help="torch CPU threads (default: all cores)")
    ap.add_argument("--out", default=None, help="append the tables to this Markdown file")
    a = ap.parse_args()
    if a.steps < 1:
        ap.error("--steps must be >= 1")
    torch.set_num_threads(a.threads)
    sizes = [int(s) for s in a.sizes.split(",")]
    groups = sorted(int(g) for g in a.groups.split(","))
    worker_counts = [int(w) for w in a.workers.split(",")]

    lines = [f"### train: step and loader throughput ({date.today()}, commit {commit()})", "",
             f"Machine: {machine()}; torch {torch.__version__}, {a.threads} thread(s)",
             f"Command: `python -m bench.train {' '.join(sys.argv[1:])}`", "",
             f"Step: forward + backward + Adam, paper widths, latent {LATENT}, {BATCH} images per "
             f"minibatch, median of {a.steps} step(s) after 1 warm-up.", "",
             "| size | G | images/step | baseline img/s | DC-IGN img/s | clamp overhead "
             "(DC-IGN/baseline time) |", "|---|---|---|---|---|---|"]
    print("\n".join(lines), flush=True)
    deadline = time.perf_counter() + a.budget
    # Seconds per image of the largest G timed so far per (size, model): per-image cost grows
    # with G (the activations outgrow the caches), so the latest measurement is the best guide.
    per_image: dict[tuple[int, str], float] = {}
    dcign_g1: dict[int, float] = {}
    for size in sizes:
        for group in groups:
            known = [per_image[size, k] for k in ("baseline", "dcign") if (size, k) in per_image]
            # Both models or neither, so every row that runs has its clamp overhead.
            est = 2 * max(known) * group * BATCH if known else 0.0
            if est * (a.steps + 1) > deadline - time.perf_counter():
                lines.append(f"| {size} | {group} | {group * BATCH} | skipped (est. "
                             f"{est / 2:.0f} s/step) | skipped | - |")
                print(lines[-1], flush=True)
                continue
            timings = {kind: time_steps(size, group, kind, a.steps)
                       for kind in ("baseline", "dcign")}
            for kind, t in timings.items():
                per_image[size, kind] = t.seconds / (group * BATCH)
            if group == 1:
                dcign_g1[size] = timings["dcign"].images_per_second(1)
            lines.append(f"| {size} | {group} | {group * BATCH} | "
                         f"{timings['baseline'].images_per_second(group):.1f} | "
                         f"{timings['dcign'].images_per_second(group):.1f} | "
                         f"{timings['dcign'].seconds / timings['baseline'].seconds:.3f}x |")
            print(lines[-1], flush=True)

    lines += ["", f"Loader: faces shards rendered for the bench ({LOADER_BATCHES} minibatches of "
              f"{BATCH}), G = 1, {a.loader_steps} minibatches per timing.", "",
              "| size | workers | loader img/s | loader / DC-IGN G=1 step |", "|---|---|---|---|"]
    print("\n".join(lines[-5:]), flush=True)
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            split = render_bench_shards(size, Path(tmp))
            for workers in worker_counts:
                rate = loader_rate(split, workers, a.loader_steps)
                step = dcign_g1.get(size)
                ratio = f"{rate / step:.0f}x" if step else "-"
                lines.append(f"| {size} | {workers} | {rate:.0f} | {ratio} |")
                print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if a.out:
        with open(a.out, "a") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
