"""Does a trained model's decoder learn fine structure if its codes stop moving?

    python -m bench.decoder_finetune CHECKPOINT [--steps 2000] [--sample] [--fresh]
                                     [--minibatches N] [--data data/faces] [--out FILE]

Every trained faces model draws no fine structure inside the head (`detail` ~0, README
"Metrics"), on test and training images alike, while the same decoder fitted alone to free codes
(bench/decoder_fit.py) slowly does. This separates the VAE's joint training from the decoder's
own pace: the checkpoint's encoder is frozen, and its decoder alone trains on, from the trained
weights, with Adam at params.yaml's train.lr and betas under the training step's bf16 autocast,
one training minibatch (drawn uniformly from the split) a step. The decoder sees each image's
posterior mean, or with --sample a posterior sample, as in training. Four times along it scores
the test azimuth grid's reconstructions: MSE, `detail` as the evaluate stage scores it, and
`detail`'s parts (bench.retrieval_floor.fine_structure), and `detail` on the first 2,000
images it trains on.

--fresh draws the decoder's weights again (params.yaml's train.init) before training, so the
trained weights' starting point is out of the question; --minibatches N trains on the first N
training minibatches only (bench.decoder_fit's data-size ladder, with the encoder's codes in
place of free ones).
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench import publish
from bench.render import machine
from bench.retrieval_floor import fine_structure
from core.device import bf16_autocast
from core.params import load_params
from core.shards import list_shards, read_shard
from evaluate.data import decode, encode
from evaluate.stage import Detail, eval_inputs
from train import checkpoint
from train.model import DCIGN, init_weights

REPO = Path(__file__).resolve().parents[1]


def finetune(model: DCIGN, minibatches: np.ndarray, steps: int, *, lr: float,
             betas: tuple[float, float], sample: bool = False, seed: int = 0,
             amp: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
             ) -> Iterator[int]:
    """Train `model`'s decoder alone on uint8 minibatches (n, B, C, H, W), its encoder frozen;
    yields the step at every quarter of the steps and at the last (the model in eval mode
    there, for scoring)."""
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.decoder.parameters(), lr=lr, betas=betas)
    every = max(1, steps // 4)
    for step in range(1, steps + 1):
        x = torch.from_numpy(minibatches[rng.integers(len(minibatches))].astype(np.float32) / 255)
        model.eval()
        with torch.no_grad():
            mu, logvar = model.encode(x)
            z = mu
            if sample:
                z = mu + logvar.mul(0.5).exp() * torch.randn(mu.shape, generator=gen)
        model.decoder.train()
        with amp():
            logits = model.decode_logits(z)
        loss = F.binary_cross_entropy_with_logits(logits.float(), x, reduction="sum")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % every == 0 or step == steps:
            model.eval()
            yield step


def redraw_decoder(model: DCIGN, scheme: str, seed: int = 0) -> None:
    """New decoder weights for `model`, drawn as training draws them (train.init `scheme`)."""
    torch.manual_seed(seed)
    fresh = DCIGN(model.cfg)
    init_weights(fresh, scheme)
    model.decoder.load_state_dict(fresh.decoder.state_dict())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--sample", action="store_true", help="posterior samples, not means")
    ap.add_argument("--fresh", action="store_true", help="start from new decoder weights")
    ap.add_argument("--minibatches", type=int, default=None,
                    help="train on the first N training minibatches only")
    ap.add_argument("--data", type=Path, default=REPO / "data" / "faces")
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    a = ap.parse_args()
    if a.steps < 1 or (a.minibatches is not None and a.minibatches < 1):
        raise SystemExit("--steps and --minibatches must be >= 1")
    torch.set_num_threads(1)
    params = load_params(REPO / "params.yaml")
    inp = eval_inputs(params, "faces", a.data)
    grid = inp.grids["azimuth"]
    truth = grid.images.astype(np.float32) / 255
    detail = Detail.of(params.evaluate, inp.test_idx.image_size)
    shards = list_shards(a.data / "train")
    if not shards:
        raise SystemExit(f"no training shards in {a.data / 'train'}")
    train = np.concatenate([read_shard(s)[0].images for s in shards])[: a.minibatches]
    seen = train[:100]  # the first 2,000 images trained on, scored as the grid is
    seen_truth = seen.astype(np.float32) / 255
    model, _ = checkpoint.load_model(a.checkpoint)
    if a.fresh:
        redraw_decoder(model, params.train.init)
    cpu = torch.device("cpu")
    lines = [("### a new decoder trained on a trained encoder's frozen codes (analysis)" if a.fresh
              else "### a trained decoder fine-tuned alone, its encoder frozen (analysis)"), "",
             f"Machine: {machine()}",
             "Command: `python -m bench.decoder_finetune "
             + shlex.join([str(a.checkpoint), "--steps", str(a.steps)] + ["--sample"] * a.sample
                          + ["--fresh"] * a.fresh
                          + ["--minibatches", str(a.minibatches)] * (a.minibatches is not None))
             + "`", "",
             f"{len(train)} training minibatches; scored on the test azimuth grid, and (last "
             f"column) on the first {len(seen) * seen.shape[1]} images trained on.", "",
             "| step | MSE | detail | energy / cosine | detail, trained-on images "
             "| seconds, scoring included |",
             "|---|---|---|---|---|---|"]

    model.eval()
    # The encoder is frozen: the scored images' codes are the same at every row.
    grid_mu, seen_mu = encode(model, grid.images, cpu), encode(model, seen, cpu)

    def row(step: int, seconds: float) -> None:
        out = decode(model, grid_mu, cpu)
        d, fs = detail.score(out, truth), fine_structure(out, truth, detail)
        ds = detail.score(decode(model, seen_mu, cpu), seen_truth)
        lines.append(f"| {step} | {np.mean((out - truth) ** 2):.5f} | "
                     + ("n/a" if d is None else f"{d:.3f}") + " | "
                     + ("n/a" if fs is None else f"{fs[0]:.3f} / {fs[1]:.2f}") + " | "
                     + ("n/a" if ds is None else f"{ds:.3f}") + f" | {seconds:.0f} |")
        print(lines[-1], flush=True)

    row(0, 0.0)
    t0 = time.time()
    for step in finetune(model, train, a.steps, lr=params.train.lr,
                         betas=tuple(params.train.betas), sample=a.sample,
                         amp=bf16_autocast(cpu, params.train.amp)):
        row(step, time.time() - t0)
    publish("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
