"""The train stage: fit DC-IGN (clamped) or the entangled baseline (plain VAE) from shards.

Both models start from the same initial weights and see the same minibatches in the same order;
the only difference is the clamp. One step carries G = train.minibatches_per_step whole minibatches,
each clamped with its own kind and mean (G = 1 is the paper). Under torchrun each rank trains on
its own whole minibatches; the loss is scaled by the world size so that DDP's gradient average
equals the gradient of the summed loss, i.e. W ranks x G minibatches == 1 process x W*G.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from core.atomic import machine_error, write_text
from core.device import bf16_autocast, choose_device, conv_layout
from core.params import Params, params_dict
from core.progress import progress_bar
from core.resources import require_memory
from core.shards import ShardError, ShardReader, SplitIndex, fixed_batches, scan_splits
from core.vocab import LR_SCHEDULES, MODELS
from train import checkpoint
from train.clamp import LatentAssignment
from train.data import MinibatchStream, make_loader
from train.model import DCIGN, ModelConfig, init_weights, vae_loss
from train.step import (
    backward_step,
    item_noise,
    seed_int,
    step_memory,
)

log = logging.getLogger(__name__)
# A run in progress lives in PARTIAL (its resumable checkpoint and its curves so far); only a
# finished run replaces model.pt, live/ and train.json, so a failed re-run keeps the old model.
PARTIAL = "partial"
FINAL, LAST, LIVE = "model.pt", f"{PARTIAL}/last.pt", "live"
CLAMP_RULE = "relative"  # train/clamp.py: clamp_scale = invariance / active gradient norm


@dataclass(frozen=True)
class FitResult:
    steps: int
    seconds: float
    images_per_second: float
    test_loss: float
    checkpoint: Path


def model_config(params: Params, index: SplitIndex, dataset: str) -> ModelConfig:
    t = params.train
    factors = list(index.latent_factors)
    odd = t.odd_factors.get(dataset, ())
    missing = [name for name in odd if name not in factors]
    if missing:
        raise ValueError(f"params key 'train.odd_factors.{dataset}': {missing} not among the "
                         f"shards' disentangled factors {factors}")
    return ModelConfig(image_size=index.image_size, channels=index.channels,
                       latent_dim=t.latent_dim, enc_channels=t.enc_channels,
                       dec_channels=t.dec_channels, norm=t.norm,
                       odd_latents=tuple(factors.index(name) for name in odd))


def _dist_setup() -> tuple[int, int, bool]:
    """(rank, world size, whether we created the process group); initialises torch.distributed
    when launched by torchrun (or anything else that sets WORLD_SIZE, RANK and MASTER_*)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    created = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        created = True
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), created
    return 0, 1, created


# Train params that change how a run is carried out but not what it computes: a resume may
# change them (e.g. more steps to extend a finished run, more loader workers on a new machine).
RESUME_MAY_CHANGE = ("steps", "checkpoint_every", "loader_workers", "threads")


def _resumable(saved: dict, now: dict) -> bool:
    def core(record: dict) -> dict:
        may_change = RESUME_MAY_CHANGE
        if record["train"].get("lr_schedule", "constant") != "constant":
            # A decaying lr is a function of the run's length: more steps change every lr.
            may_change = tuple(k for k in may_change if k != "steps")
        train = {k: v for k, v in record["train"].items() if k not in may_change}
        return {**record, "train": train}

    return core(saved) == core(now)


def lr_at(lr: float, schedule: str, step: int, n_steps: int,
          cooldown: float | None = None) -> float:
    """The learning rate of update number `step` + 1 (0-based `step`) of an `n_steps` run:
    constant; cosine from lr at step 0 towards 0 at n_steps; or cooldown: constant, then linear
    towards 0 at n_steps over the last `cooldown` fraction of the steps (train.lr_cooldown,
    required with that schedule)."""
    if schedule == "constant":
        return lr
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * step / n_steps))
    if schedule == "cooldown":
        if cooldown is None:
            raise ValueError("train.lr_schedule cooldown needs train.lr_cooldown")
        return lr * min(1.0, (n_steps - step) / (cooldown * n_steps))
    raise ValueError(f"unknown train.lr_schedule {schedule!r}; expected one of {LR_SCHEDULES}")


def ema_decay(ema: float, step: int) -> float:
    """The moving average's decay after update number `step` (1-based): train.ema, warmed up as
    (1 + step) / (10 + step) so the first updates are not tied to the initial weights."""
    return min(ema, (1.0 + step) / (10.0 + step))


@torch.no_grad()
def update_ema(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, parameter by parameter."""
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, 1.0 - decay)


def _truncate_curves(live_dir: Path, step: int) -> None:
    """Drop curve rows logged after `step`: a run killed after its last checkpoint logged
    points that the resumed run will log again."""
    for tsv in (live_dir / "plots" / "metrics").rglob("*.tsv"):
        lines = tsv.read_text().splitlines()
        if not lines:
            continue
        col = lines[0].split("\t").index("step")
        keep = [lines[0]] + [ln for ln in lines[1:] if int(ln.split("\t")[col]) <= step]
        if len(keep) < len(lines):
            write_text(tsv, "\n".join(keep) + "\n")


def _named_errors(loader: Iterable) -> Iterator:
    """The loader's steps; a damaged shard read in a loader worker is raised as one line naming
    the shard (torch re-raises a worker's error with its whole traceback in the message)."""
    it = iter(loader)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except ShardError as e:
            text = str(e).strip()
            if text.startswith("Caught "):
                text = text.splitlines()[-1].split(": ", 1)[-1]
            raise ShardError(text) from None
        yield batch


def _replace_dir(src: Path, dst: Path) -> None:
    """Put folder `src` at `dst`, the old `dst` moved aside first and removed only after."""
    old = dst.with_name(f"{dst.name}.old-{os.getpid()}")
    if dst.exists():
        os.replace(dst, old)
    os.replace(src, dst)
    shutil.rmtree(old, ignore_errors=True)


class _NoCurves:
    """Takes dvclive's calls and keeps nothing: `fit(curves=False)`."""

    step = 0

    def log_metric(self, name: str, value: float) -> None:
        pass

    def next_step(self) -> None:
        pass

    def end(self) -> None:
        pass


def _end_curves(live: object) -> None:
    """``live.end()``, safe beside other lanes. The last thing dvclive's end() does is check for,
    then remove, its VS Code signal file ``.dvc/tmp/exps/run/DVCLIVE_STEP_COMPLETED``, which
    every Live of a repository shares: when two lanes (``--jobs 2``) end together, the one that
    loses the race gets FileNotFoundError for the file the other just removed (seen in CI).
    Nothing of end() is left undone then, so that one error is dropped."""
    try:
        live.end()  # type: ignore[attr-defined]
    except FileNotFoundError as e:
        if Path(e.filename or "").name != "DVCLIVE_STEP_COMPLETED":
            raise


class Evaluator:
    """Held-out loss on a fixed set of test minibatches (the same for every run and step)."""

    def __init__(self, index: SplitIndex, n_batches: int) -> None:
        per_kind = max(1, math.ceil(n_batches / len(index.kinds)))
        reader = ShardReader(index)
        picks = fixed_batches(index, per_kind)[:n_batches]
        self.images = torch.stack([torch.from_numpy(reader.read(fi, row)["images"])
                                   for _, fi, row in picks])  # (n, B, C, H, W) uint8
        reader.close()

    @torch.no_grad()
    def __call__(self, model: DCIGN, device: torch.device) -> dict[str, float]:
        was_training = model.training
        model.eval()
        total = recon = kl = sq = 0.0
        n = pixels = 0
        # One minibatch at a time: the decoder's activations for all of them at once would take
        # gigabytes at 150 px.
        for images in self.images:
            x = images.to(device).float().div_(255)  # (B, C, H, W)
            out = model(x)
            loss = vae_loss(out.logits, x, out.mu, out.logvar)
            total += loss.total.item()
            recon += loss.recon.item()
            kl += loss.kl.item()
            sq += torch.sum((torch.sigmoid(out.logits.float()) - x) ** 2).item()
            n, pixels = n + x.shape[0], pixels + x.numel()
        model.train(was_training)
        return {"loss": total / n, "recon": recon / n, "kl": kl / n, "mse": sq / pixels}


def train_record(params: Params, dataset: str, seed: int) -> dict:
    """What a run is made from, as its checkpoint records it: the data seed, the training seed
    and the train params, with per-dataset entries reduced to this dataset's."""
    t = params_dict(params.train)
    t.pop("seeds")
    t["steps"] = params.train.steps_for(dataset)
    t["odd_factors"] = list(params.train.odd_factors.get(dataset, ()))
    # The clamp's rule: checkpoints made under the old absolute scale are not resumed as ours.
    t["clamp_rule"] = CLAMP_RULE
    return {"seed": params.seed, "train_seed": int(seed), "train": t}


def fit(params: Params, dataset: str, data_dir: str | Path, out_dir: str | Path, *,
        model_kind: str, seed: int | None = None, resume: bool = False, progress: bool = True,
        stop_after: int | None = None, curves: bool = True) -> FitResult:
    """Train and write out_dir/model.pt (+ dvclive curves in out_dir/live, out_dir/train.json).

    seed: the training seed (weights' init, minibatch order, sampling noise); default the first
    of train.seeds. The data's own seed (params.seed) made the shards and is not used here.

    resume: continue from out_dir/partial/last.pt (or a finished model.pt) if present; the
    weights and curves equal an uninterrupted run's. Only the keys in RESUME_MAY_CHANGE may
    differ from the checkpoint's params, and the shards must be the ones it was trained on.
    stop_after: return after this many steps in this call, leaving partial/last.pt (a deliberate
    interruption, for tests and time-boxed jobs). Until a run finishes, an earlier finished
    run's model.pt, live/ and train.json stay as they were.
    curves: False writes no live/ (and drops an earlier run's), so that a machine without DVC
    (the lent GPU's, bench/gpu.sh) can train; the weights are the same either way.
    """
    if model_kind not in MODELS:
        raise ValueError(f"--model must be one of {MODELS}, got {model_kind!r}")
    seed = params.train.seeds[0] if seed is None else int(seed)
    if not 0 <= seed < 2**32:
        raise ValueError(f"--seed must be in [0, 2**32), got {seed}")
    rank, world, created = _dist_setup()
    try:
        return _fit(params, dataset, Path(data_dir), Path(out_dir), model_kind=model_kind,
                    seed=seed, resume=resume, progress=progress, stop_after=stop_after,
                    curves=curves, rank=rank, world=world)
    except OSError as e:
        # A write that names no file (the curves' writer flushing onto a full disk): name the
        # run's folder. Our own atomic writes name their file already.
        raise (machine_error(Path(out_dir), e) if e.filename is None else e) from None
    finally:
        if created:
            dist.destroy_process_group()


def _fit(params: Params, dataset: str, data_dir: Path, out_dir: Path, *, model_kind: str,
         seed: int, resume: bool, progress: bool, stop_after: int | None, curves: bool,
         rank: int, world: int) -> FitResult:
    t = params.train
    n_steps = t.steps_for(dataset)
    device = choose_device(t.device)
    if t.threads:
        torch.set_num_threads(t.threads)
    train_idx, test_idx = scan_splits(data_dir, dataset, "trains")
    data_prints = {"train": train_idx.fingerprint, "test": test_idx.fingerprint}
    cfg = model_config(params, train_idx, dataset)
    assignment = LatentAssignment(train_idx.latent_factors, t.latent_dim)
    record = train_record(params, dataset, seed)
    images = t.minibatches_per_step * train_idx.batch_size
    require_memory(step_memory(cfg, images),
                   f"a training step of {images} images of {cfg.image_size} px",
                   "train.minibatches_per_step, render.batch_size, render.image_size or the "
                   "model's size (train.latent_dim, enc_channels, dec_channels)",
                   available=torch.cuda.mem_get_info(device)[0] if device.type == "cuda"
                   else None)

    # Same initial weights for DC-IGN and baseline: the clamp is the only difference.
    torch.manual_seed(seed_int(seed, "init", dataset))
    model = DCIGN(cfg)
    init_weights(model, t.init)
    model = model.to(device)
    cuda = device.type == "cuda"
    channels_last = conv_layout(device) == torch.channels_last
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=t.lr, betas=t.betas)
    ema = copy.deepcopy(model).requires_grad_(False) if t.ema > 0 else None
    # Curve windows: summed per-image loss, steps, summed clamp ratio; and the run's ratio sum.
    start, running, n_run, ratio_run, ratio_total = 0, 0.0, 0, 0.0, 0.0
    partial, live_dir = out_dir / PARTIAL, out_dir / PARTIAL / LIVE
    resume_from = next((p for p in (out_dir / LAST, out_dir / FINAL) if p.is_file()), None)
    if resume and resume_from is not None:
        _, ckpt = checkpoint.load_model(resume_from, expect=cfg)
        if not _resumable(ckpt["params"], record) or ckpt["model_kind"] != model_kind:
            raise ValueError(f"{resume_from}: made with different train params or model; "
                             f"cannot resume (delete it or run without --resume)")
        if ckpt.get("data") != data_prints:
            raise ValueError(f"{resume_from}: trained on other shards than {data_dir} "
                             f"(checkpoint data {ckpt.get('data')}, folder {data_prints}); "
                             f"cannot resume (run without --resume)")
        start = int(ckpt["step"])
        if start > n_steps:
            raise ValueError(f"{resume_from}: is at step {start}, beyond train.steps={n_steps}")
        if start == n_steps:  # finished already: rewriting it would only lose its test metrics
            log.info("train %s-%s: %s is already at step %d", dataset, model_kind, resume_from,
                     start)
            test_loss = ckpt["extra"].get("test", {}).get("loss", float("nan"))
            return FitResult(start, 0.0, 0.0, float(test_loss), resume_from)
        model.load_state_dict(ckpt["model_state"])
        if ema is not None:
            ema.load_state_dict(ckpt["ema_state"])
        opt.load_state_dict(ckpt["optimizer_state"])
        checkpoint.set_rng_state(ckpt["rng"])
        # The partly summed curve window, so the resumed curve equals the uninterrupted one.
        running, n_run, ratio_run, ratio_total = ckpt["extra"].get("running", (0.0, 0, 0.0, 0.0))
        log.info("resuming %s-%s from %s at step %d", dataset, model_kind, resume_from, start)
        if resume_from == out_dir / FINAL and rank == 0:  # extending a finished run
            shutil.rmtree(partial, ignore_errors=True)
            if (out_dir / LIVE).is_dir():
                shutil.copytree(out_dir / LIVE, live_dir)
    elif rank == 0:  # a new run: an earlier run's partial state is not ours
        shutil.rmtree(partial, ignore_errors=True)
    stop = n_steps if stop_after is None else min(n_steps, start + stop_after)

    net: torch.nn.Module = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if cuda else None)
    if t.compile:
        net = torch.compile(net)
    amp = bf16_autocast(device, t.amp)  # bf16 where the hardware computes in it

    train_ds = MinibatchStream(train_idx, seed, t.mix_for(dataset))
    loader = make_loader(train_ds, start=start, stop=stop, group=t.minibatches_per_step,
                         rank=rank, world=world, workers=t.loader_workers, pin_memory=cuda)
    evaluate, live = None, None
    if rank == 0:
        evaluate = Evaluator(test_idx, t.eval_batches)
        partial.mkdir(parents=True, exist_ok=True)
        if not curves:
            live = _NoCurves()
        else:
            from dvclive import Live

            if start > 0:
                _truncate_curves(live_dir, start)
            live = Live(dir=str(live_dir), resume=start > 0, save_dvc_exp=False,
                        dvcyaml=None, report=None)
    per_step = t.minibatches_per_step * train_idx.batch_size
    bar = progress_bar(n_steps, f"train {dataset}-{model_kind}", "step", live=progress,
                       initial=start, enabled=rank == 0)
    model.train()
    t0, step, test = time.perf_counter(), start, {"loss": float("nan")}
    for batch in _named_errors(loader):
        x = batch["images"].to(device, non_blocking=True).flatten(0, 1)  # (G*B, C, H, W)
        x = x.float().div_(255)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        kinds = [train_idx.kinds[k] for k in batch["kind"].tolist()]
        noise = item_noise(seed, batch["item"], train_idx.batch_size,
                           t.latent_dim).to(device)
        for group in opt.param_groups:  # a function of the step, so a resume needs no state
            group["lr"] = lr_at(t.lr, t.lr_schedule, step, n_steps, t.lr_cooldown)
        opt.zero_grad(set_to_none=True)
        loss, ratio = backward_step(net, x, kinds, noise, model_kind=model_kind,
                                    assignment=assignment, clamp_scale=t.clamp_scale,
                                    kl_weight=t.kl_weight,
                                    center_extrinsic=t.center_extrinsic, world=world, amp=amp)
        opt.step()
        step += 1
        if ema is not None:
            update_ema(ema, model, ema_decay(t.ema, step))
        # The curve is the negative ELBO, like the test loss, whatever train.kl_weight is.
        per_image = (loss.recon + loss.kl).item() / x.shape[0]
        running += per_image
        n_run += 1
        if ratio is not None:
            ratio_run += ratio
            ratio_total += ratio
        # Curve points fall on multiples of log_every (and the last step) whether or not the run
        # was interrupted, so a resumed run's curve is the uninterrupted one.
        log_now = step % t.log_every == 0 or step == n_steps
        eval_now = step % t.eval_every == 0 or step == n_steps
        mean = mean_ratio = float("nan")
        if log_now:
            mean, mean_ratio = running / n_run, ratio_run / n_run
            if world > 1:  # the curve is over every rank's minibatches, as with one process
                m = torch.tensor([mean, mean_ratio], dtype=torch.float64, device=device)
                dist.all_reduce(m)
                mean, mean_ratio = (m / world).tolist()
            running, n_run, ratio_run = 0.0, 0, 0.0
        if rank == 0:
            assert live is not None and evaluate is not None
            if log_now or eval_now:
                live.step = step  # before log_metric: dvclive stamps each point with live.step
            if log_now:
                live.log_metric("train/loss", mean)
                if model_kind == "dcign":
                    live.log_metric("train/clamp_ratio", mean_ratio)
            if eval_now:
                test = evaluate(model if ema is None else ema, device)
                for k, v in test.items():
                    live.log_metric(f"test/{k}", v)
            if log_now or eval_now:
                live.next_step()  # writes the summary; live.step is set again before each use
            if step % t.checkpoint_every == 0 or (step == stop and step < n_steps):
                checkpoint.save(out_dir / LAST, model=model, cfg=cfg, assignment=assignment,
                                model_kind=model_kind, dataset=dataset, params=record,
                                step=step, optimizer=opt, data=data_prints, ema=ema,
                                extra={"running": (running, n_run, ratio_run, ratio_total)})
            elapsed = time.perf_counter() - t0
            bar.update(1)
            # refresh=False: tqdm redraws at its own pace instead of on every step.
            bar.set_postfix(loss=f"{per_image:.1f}", refresh=False,
                            img_s=f"{(step - start) * per_step * world / max(elapsed, 1e-9):.0f}")
    bar.close()
    train_ds.close()
    seconds = time.perf_counter() - t0
    rate = (step - start) * per_step * world / max(seconds, 1e-9)
    path = out_dir / (FINAL if step == n_steps else LAST)
    if rank == 0:
        assert live is not None
        _end_curves(live)
        if step == n_steps:
            checkpoint.save(out_dir / FINAL, model=model, cfg=cfg, assignment=assignment,
                            model_kind=model_kind, dataset=dataset, params=record, step=step,
                            optimizer=opt, data=data_prints, ema=ema, extra={
                                "test": test,
                                "running": (running, n_run, ratio_run, ratio_total)})
            if curves:
                _replace_dir(live_dir, out_dir / LIVE)
            else:  # an earlier run's curves are not this run's
                shutil.rmtree(out_dir / LIVE, ignore_errors=True)
            # Only deterministic values: this file is a DVC metric compared across commits.
            summary: dict = {"steps": step,
                             "test": {k: round(v, 6) for k, v in test.items()}}
            if model_kind == "dcign":
                # Rank 0's minibatches: the invariance gradient's norm over the active one's.
                summary["clamp_ratio"] = round(ratio_total / step, 6)
            write_text(out_dir / "train.json", json.dumps(summary, indent=2) + "\n")
            shutil.rmtree(partial, ignore_errors=True)
    if world > 1:
        dist.barrier()
    log.info("train %s-%s: step %d/%d, %.1f images/s, test loss %.2f -> %s", dataset, model_kind,
             step, n_steps, rate, test["loss"], path)
    return FitResult(step, seconds, rate, float(test["loss"]), path)
