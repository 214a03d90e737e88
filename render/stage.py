"""The render stage: params -> seeded minibatch plans -> rendered images -> HDF5 shards.

Shards are independent units of work: each is rendered from (params, split, its batch range)
alone, so they can be spread over worker processes or cluster array jobs, and a re-run skips
shards that are complete and were made from the same params. `shard_loop` and `write_task` are
the one shard-writing loop, shared with `dcign import-chairs` (render.aubry), which supplies
only its plans, its image loader and its fingerprints.
"""

from __future__ import annotations

import importlib.metadata
import logging
import math
import multiprocessing as mp
import queue
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from threadpoolctl import threadpool_limits

from core.atomic import machine_error, remove_stale_temps
from core.cache import LRU
from core.params import DatasetConfig, Params, fingerprint, params_dict
from core.progress import progress_bar
from core.resources import require_memory
from core.shards import (
    SCHEMA_VERSION,
    ShardArrays,
    is_current,
    list_shards,
    shard_path,
    write_shard,
)
from core.vocab import FACTORS, SPLITS
from render.backends import Backend, make_backend
from render.batches import BatchPlan, plan_split
from render.datasets import make_source, num_identities
from render.mesh import TriMesh
from render.sources import IdentitySource
from render.views import View

log = logging.getLogger(__name__)
# Built meshes kept per render process, by bytes: a head is ~0.5 MB, a parametric chair ~30 kB,
# so every chair of a split stays built (each is drawn ~2.5 times by the intrinsic batches).
MESH_CACHE_BYTES = 256 << 20


@dataclass(frozen=True)
class ShardTask:
    """Shard `index` of `split` holds minibatches [start, stop) of that split."""

    split: str
    index: int
    start: int
    stop: int


@dataclass(frozen=True)
class RenderSummary:
    rendered: int
    skipped: int
    images: int
    seconds: float
    out_dir: Path


def render_params(params: Params, dataset: str) -> dict:
    """The part of params that determines a dataset's shards (recorded in each shard)."""
    common = params_dict(params.render)
    for other in ("faces", "chairs"):
        common.pop(other)
    if params.render.backend != "blender":
        common.pop("blender")
    ds = params_dict(params.render.dataset(dataset))
    ds.pop("aubry", None)  # import-chairs settings do not change rendered chairs
    return {"seed": params.seed, "render": common, dataset: ds}


def factor_ranges(ds: DatasetConfig) -> dict[str, list[float]]:
    """Every stored factor's range in degrees, as the shards record it."""
    return {name: [float(v) for v in ds.factor_range(name)] for name in FACTORS}


def shard_tasks(params: Params, dataset: str) -> list[ShardTask]:
    """Every shard of both splits, in a fixed order."""
    ds, per = params.render.dataset(dataset), params.render.batches_per_shard
    tasks = []
    for split in SPLITS:
        total = sum(ds.batches[split].values())
        for i in range(math.ceil(total / per)):
            tasks.append(ShardTask(split, i, i * per, min((i + 1) * per, total)))
    return tasks


def software_versions() -> dict[str, str]:
    out = {}
    for pkg in ("dcign", "numpy", "h5py", "pyrender", "trimesh"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "absent"
    return out


def task_fingerprint(record: dict, n_identities: int, task: ShardTask) -> str:
    """What a shard is made from: its params, schema, batch range and identity count."""
    return fingerprint({"params": record, "schema": SCHEMA_VERSION, "task": task.__dict__,
                        "identities": n_identities})


class Planned(Protocol):
    """One planned minibatch, as a shard stores it (render.batches.BatchPlan, or an import's)."""

    kind: str
    identity: np.ndarray  # int64 (B,)
    factors: np.ndarray  # float32 (B, len(FACTORS)) degrees


def write_task(params: Params, dataset: str, task: ShardTask, out_dir: Path,
               plans: Sequence[Planned], images_of: Callable[[Planned], np.ndarray], *,
               record: dict, renderer: str, software: dict[str, str], fingerprint: str,
               extra_attrs: dict | None = None,
               on_batch: Callable[[int], None] | None = None) -> Path:
    """Produce shard `task` from its plans (images_of(plan) -> uint8 (B, C, H, W)) and write it
    atomically: the one place a shard's arrays and attributes are put together, for rendered
    and imported data alike. record: the params record the shard stores. Returns its path."""
    images = []
    for plan in plans:
        images.append(images_of(plan))
        if on_batch is not None:
            on_batch(len(plan.identity))
    ds, r = params.render.dataset(dataset), params.render
    arrays = ShardArrays(
        images=np.stack(images),
        factors=np.stack([p.factors for p in plans]),
        identity=np.stack([p.identity for p in plans]),
        kind=np.array([ds.kinds.index(p.kind) for p in plans], dtype=np.uint8),
    )
    path = shard_path(out_dir / task.split, task.index)
    write_shard(path, arrays, factor_names=FACTORS, kind_names=ds.kinds, attrs={
        "dataset": dataset, "split": task.split, "renderer": renderer,
        "image_size": r.image_size, "channels": r.channels, "batch_size": r.batch_size,
        "seed": params.seed, "latent_factors": list(ds.factors),
        "factor_ranges": factor_ranges(ds), "params": record,
        "software": software, "fingerprint": fingerprint, "shard_index": task.index,
        "first_batch": task.start, **(extra_attrs or {}),
    })
    return path


def shard_loop(params: Params, dataset: str, out_dir: Path, tasks: list[ShardTask],
               fingerprint_of: Callable[[ShardTask], str],
               produce: Callable[[list[ShardTask], Callable[[int], None]], None], *,
               prune: bool, progress: bool, label: str, t0: float) -> RenderSummary:
    """The one shard loop of `render` and `import-chairs`: clear dead writers' temps, remove
    shards beyond the plan (prune: `tasks` is the whole plan), skip shards that are complete
    and made from the same fingerprint, and produce the rest (`produce(todo, on_images)` writes
    them)."""
    for split in SPLITS:
        try:
            (out_dir / split).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise machine_error(out_dir / split, e) from None
        remove_stale_temps(out_dir / split)
    if prune:  # `tasks` is the whole plan then
        for split in SPLITS:
            keep = {shard_path(out_dir / split, t.index) for t in tasks if t.split == split}
            for p in list_shards(out_dir / split):
                if p not in keep:
                    p.unlink()
    todo = [t for t in tasks if not is_current(shard_path(out_dir / t.split, t.index),
                                               fingerprint_of(t))]
    skipped = len(tasks) - len(todo)
    bs = params.render.batch_size
    total = sum((t.stop - t.start) * bs for t in todo)
    log.info("%s: %d shards to write, %d up to date, %d images", label, len(todo), skipped,
             total)
    bar = progress_bar(total, label, "img", live=progress)
    try:
        if todo:
            produce(todo, bar.update)
    finally:
        bar.close()
    return RenderSummary(len(todo), skipped, total, time.perf_counter() - t0, out_dir)


class ShardRenderer:
    """Renders shard tasks in one process: one source, one backend, a cache of built meshes."""

    def __init__(self, params: Params, dataset: str, backend: Backend | None = None) -> None:
        self.params, self.dataset = params, dataset
        self.ds = params.render.dataset(dataset)
        self.source: IdentitySource = make_source(params, dataset)
        self.backend = backend or make_backend(params.render)
        self.n_ids = {s: num_identities(params, dataset, self.source, s) for s in SPLITS}
        self._meshes: LRU[tuple[str, int], TriMesh] = LRU(
            weigh=lambda m: m.nbytes, max_weight=MESH_CACHE_BYTES)
        self._record = render_params(params, dataset)

    def fingerprint(self, task: ShardTask) -> str:
        return task_fingerprint(self._record, self.n_ids[task.split], task)

    def mesh(self, split: str, identity: int) -> TriMesh:
        return self._meshes.get((split, identity), lambda: self.source.mesh(split, identity))

    def render_batch(self, split: str, plan: BatchPlan) -> np.ndarray:
        """uint8 (B, C, H, W) for one planned minibatch."""
        return np.stack([
            self.backend.render(self.mesh(split, int(i)), View(*map(float, f)))
            for i, f in zip(plan.identity, plan.factors)
        ])

    def plans(self, task: ShardTask) -> list[BatchPlan]:
        return plan_split(self.ds, seed=self.params.seed, dataset=self.dataset, split=task.split,
                          batch_size=self.params.render.batch_size,
                          num_identities=self.n_ids[task.split], start=task.start, stop=task.stop)

    def render_task(self, task: ShardTask, out_dir: Path,
                    on_batch: Callable[[int], None] | None = None) -> Path:
        """Render one shard and write it atomically; returns its path."""
        return write_task(self.params, self.dataset, task, out_dir, self.plans(task),
                          lambda plan: self.render_batch(task.split, plan), record=self._record,
                          renderer=self.backend.version(), software=software_versions(),
                          fingerprint=self.fingerprint(task), on_batch=on_batch)

    def close(self) -> None:
        self.backend.close()


# --- worker processes -------------------------------------------------------------------------

_worker: ShardRenderer | None = None
_progress: mp.Queue | None = None
_init_error: str | None = None


def one_blas_thread() -> threadpool_limits:
    """Limit BLAS to one thread in a render process (until the returned limiter is restored).

    The shading's small matrix products gain nothing from more, and OpenBLAS's idle threads
    spin: one render process took both cores (190% CPU, most of it system time), so a second
    worker added only 1.6x instead of 1.9x (bench/RESULTS.md)."""
    return threadpool_limits(limits=1, user_api="blas")


def _init_worker(params: Params, dataset: str, progress: mp.Queue) -> None:
    global _worker, _progress, _init_error
    _progress = progress
    one_blas_thread()  # for the life of this worker process
    try:
        _worker = ShardRenderer(params, dataset)
    except Exception as e:  # an initializer that raises makes Pool respawn workers forever
        _init_error = f"{type(e).__name__}: {e}"


def _run_task(args: tuple[ShardTask, Path]) -> str:
    task, out_dir = args
    if _init_error is not None:
        raise RuntimeError(f"render worker could not start: {_init_error}")
    assert _worker is not None and _progress is not None
    return str(_worker.render_task(task, out_dir, on_batch=_progress.put))


def make_shards(
    params: Params,
    dataset: str,
    out_dir: str | Path,
    *,
    workers: int = 1,
    shard_index: int | None = None,
    num_shards: int | None = None,
    progress: bool = True,
) -> RenderSummary:
    """Render `dataset` into out_dir/<split>/shard-NNNNN.h5.

    workers: processes rendering shards in parallel. shard_index/num_shards: render only the
    tasks i with i % num_shards == shard_index (cluster array jobs). Complete shards made from the
    same params are skipped; missing, corrupt or stale ones are (re)rendered.
    """
    out_dir = Path(out_dir)
    t0 = time.perf_counter()
    r = params.render
    # A worker holds a shard's images as rendered batches, stacked, and as the file it writes.
    shard_bytes = r.batches_per_shard * r.batch_size * r.channels * r.image_size**2
    require_memory(3 * shard_bytes * workers,
                   f"rendering {workers} shard(s) of {shard_bytes / 2**20:.0f} MiB at once",
                   "render.batches_per_shard, render.batch_size, render.image_size or --workers")
    tasks = shard_tasks(params, dataset)
    subset = num_shards is not None
    if subset:
        if not (num_shards and num_shards > 0 and shard_index is not None
                and 0 <= shard_index < num_shards):
            raise ValueError(f"--shard-index must be in [0, --num-shards), got {shard_index} "
                             f"of {num_shards}")
        tasks = [t for i, t in enumerate(tasks) if i % num_shards == shard_index]

    # In-process rendering needs a renderer here; with workers only the identity counts are
    # needed (for fingerprints), so the main process opens no GL context.
    local = ShardRenderer(params, dataset) if workers <= 1 else None
    if local is not None:
        n_ids = local.n_ids
    else:
        source = make_source(params, dataset)
        n_ids = {s: num_identities(params, dataset, source, s) for s in SPLITS}
    record = render_params(params, dataset)
    log.debug("render %s: %d worker(s)", dataset, workers)

    def produce(todo: list[ShardTask], on_images: Callable[[int], None]) -> None:
        if local is not None:
            with one_blas_thread():
                for t in todo:
                    local.render_task(t, out_dir, on_batch=on_images)
            return
        ctx = mp.get_context("spawn")  # fresh processes: GL contexts do not survive fork
        progress_q = ctx.Queue()
        with ctx.Pool(min(workers, len(todo)), initializer=_init_worker,
                      initargs=(params, dataset, progress_q)) as pool:
            result = pool.map_async(_run_task, [(t, out_dir) for t in todo], chunksize=1)
            while not result.ready():
                _drain(progress_q, on_images, timeout=0.2)
            _drain(progress_q, on_images, timeout=0.0)
            result.get()

    try:
        return shard_loop(params, dataset, out_dir, tasks,
                          lambda t: task_fingerprint(record, n_ids[t.split], t), produce,
                          prune=not subset, progress=progress,
                          label=f"render {dataset}", t0=t0)
    finally:
        if local is not None:
            local.close()


def _drain(q: mp.Queue, on_images: Callable[[int], None], timeout: float) -> None:
    try:
        n = q.get(timeout=timeout) if timeout else q.get_nowait()
        on_images(n)
        while True:
            on_images(q.get_nowait())
    except queue.Empty:
        pass
