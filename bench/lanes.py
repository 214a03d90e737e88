"""Training lanes A/B: DC-IGN + baseline one after the other on all cores, or at once, one process
and an even share of the cores each (`train.lanes.fit_lanes`, what the train stage runs).

    python -m bench.lanes [--steps 150] [--rounds 2] [--data data/faces] [--out bench/RESULTS.md]

Both arms train the same two faces models (params.yaml, training seed 0) for --steps steps from
scratch, in fresh folders, and report wall-clock seconds and images/s of the pair, alternating
for --rounds rounds (a slow spell hits both). A timing, so run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from bench import publish
from bench.render import machine
from bench.train import REPO, commit
from core.params import load_params
from core.vocab import MODELS
from train.lanes import Lane, cores, fit_lanes

DATASET = "faces"


def pair_seconds(steps: int, jobs: int, data: Path, root: Path) -> float:
    """Wall-clock seconds to train DC-IGN and the baseline for `steps` steps each."""
    threads = max(1, cores() // jobs)
    params = load_params(REPO / "params.yaml", [f"train.steps.{DATASET}={steps}",
                                                f"train.threads={threads}", "train.seeds=[0]",
                                                f"train.eval_every={steps}"])
    lanes = [Lane(m, 0, root / m) for m in MODELS]
    t0 = time.perf_counter()
    fit_lanes(params, DATASET, data, lanes, jobs=jobs, progress=False)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--data", default=str(REPO / "data" / DATASET))
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    arms = {"one after the other": 1, "lanes (--jobs 2)": 2}
    seconds: dict[str, list[float]] = {k: [] for k in arms}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            for name, jobs in arms.items():
                seconds[name].append(pair_seconds(a.steps, jobs, Path(a.data),
                                                  Path(tmp) / f"{r}-{jobs}"))
    images = 2 * a.steps * load_params(REPO / "params.yaml", []).render.batch_size
    base = statistics.median(seconds["one after the other"])
    rows = [f"| {name} | {max(1, cores() // jobs)} | {statistics.median(seconds[name]):.1f} | "
            f"{images / statistics.median(seconds[name]):.1f} | "
            f"{base / statistics.median(seconds[name]):.2f}x | "
            f"{', '.join(f'{s:.1f}' for s in seconds[name])} |" for name, jobs in arms.items()]
    lines = [f"### Training lanes: DC-IGN + baseline on faces ({date.today()}, commit {commit()})",
             "", f"Machine: {machine()}; {cores()} cores",
             f"Command: `python -m bench.lanes {shlex.join(sys.argv[1:])}`", "",
             f"Two models x {a.steps} steps x 20 images from scratch (params.yaml, seed 0, "
             "including each fit's start-up and its test evaluations); median of "
             f"{a.rounds} alternating rounds.", "",
             "| arm | torch threads per model | seconds | images/s (pair) | speed-up "
             "| every round |",
             "|---|---|---|---|---|---|", *rows, ""]
    publish("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
