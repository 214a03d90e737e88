"""Several trainings at once, one process each: DC-IGN and its baseline side by side.

On a small CPU two single-threaded trainings get more images through than one training on both
cores, whose small convolutions split poorly across threads (bench/RESULTS.md "Training lanes").
Each lane is an ordinary `fit`, so its weights are those of the same run alone at the same
thread count; lanes only decide how the cores are shared.
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from core.params import Params
from core.progress import configure_logging
from train.fit import FitResult, fit


@dataclass(frozen=True)
class Lane:
    """One training: which model, which training seed, where it goes."""

    model_kind: str
    seed: int
    out_dir: Path


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def lane_threads(params: Params, jobs: int) -> int:
    """Torch threads per lane: train.threads if set, else this machine's cores shared evenly."""
    return params.train.threads or max(1, cores() // jobs)


def _run(params: Params, dataset: str, data_dir: Path, lane: Lane, resume: bool,
         progress: bool) -> FitResult:
    return fit(params, dataset, data_dir, lane.out_dir, model_kind=lane.model_kind,
               seed=lane.seed, resume=resume, progress=progress)


def fit_lanes(params: Params, dataset: str, data_dir: str | Path, lanes: list[Lane], *,
              jobs: int, resume: bool = False, progress: bool = True) -> list[FitResult]:
    """Train every lane, `jobs` at a time (1: one after another in this process).

    A lane's error is raised here once the others have stopped; lanes that finished keep their
    outputs (each `fit` writes atomically), so a rerun with --resume redoes only the rest.
    """
    if jobs < 1:
        raise ValueError(f"--jobs must be >= 1, got {jobs}")
    if jobs > 1 and len(lanes) > 1 and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError("--jobs > 1 under a distributed launch (WORLD_SIZE > 1): each lane "
                         "would join the process group; launch one model per torchrun instead")
    data_dir = Path(data_dir)
    if jobs == 1 or len(lanes) == 1:
        return [_run(params, dataset, data_dir, lane, resume, progress) for lane in lanes]
    jobs = min(jobs, len(lanes))
    train = dataclasses.replace(params.train, threads=lane_threads(params, jobs))
    lane_params = dataclasses.replace(params, train=train)
    # spawn: a forked child would inherit torch's thread pools and any CUDA state of the parent.
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=configure_logging,
                             initargs=(logging.getLogger().level,)) as pool:
        futures = [pool.submit(_run, lane_params, dataset, data_dir, lane, resume, progress)
                   for lane in lanes]
        return [f.result() for f in futures]
