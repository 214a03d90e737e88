"""How well can the default encoder read a factor when it is told the answer? (analysis)

    python -m bench.supervised_ceiling [--steps 3000] [--every 1000] [--seed 0]
                                       [--data data/faces] [--out FILE]

Issue 13 asks the faces DC-IGN's azimuth, elevation and light latents for |r| >= 0.9 on the test
grids, and elevation has stayed at 0.78-0.88 through every lever tried. This asks whether the
images and the encoder allow more: the default encoder (params.yaml's train.* widths and norm,
the same conv stack and linear head; one output per disentangled factor, no flip prior) is
trained by regression on the true factors of the train split (every minibatch kind, images drawn
i.i.d., 20 a step, Adam at train.lr / train.betas, bf16 autocast as training uses it), each
factor scaled to [-1, 1] over its range. Every --every steps it prints, per factor, the
evaluate stage's equivariance on the same test grid (|Pearson r| of the output and the factor)
and the r within each test identity's grid. Supervision is what DC-IGN does not have, so this
is a ceiling for the read-out, not a rival method.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shlex
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from bench import publish
from bench.render import machine
from core.device import bf16_autocast
from core.params import load_params
from core.shards import SplitIndex
from evaluate import metrics as M
from evaluate.data import encode, load_batches
from evaluate.stage import eval_inputs
from train.fit import model_config
from train.model import DCIGN, Encoder, ModelConfig, init_weights

REPO = Path(__file__).resolve().parents[1]


def factor_targets(train_idx, inp) -> tuple[np.ndarray, np.ndarray]:
    """Every train image (N, C, H, W) uint8 and its disentangled factors (N, L) in
    ``inp.factors`` order, each scaled to [-1, 1] over its range."""
    b = load_batches(train_idx, 10**9)  # the whole split, as eval_inputs reads the test split
    cols = [train_idx.factor_names.index(f) for f in inp.factors]
    deg = b.factors.reshape(-1, b.factors.shape[-1])[:, cols]
    return (b.images.reshape(-1, *b.images.shape[2:]),
            scaled(deg, [inp.ranges[f] for f in inp.factors]))


def regressor(cfg: ModelConfig, outputs: int, init: str) -> DCIGN:
    """A DCIGN of `cfg`'s shape with `outputs` latents and no flip prior, drawn under train.init
    `init` from torch's global RNG: its encoder is the regressor, the same layers training
    inits."""
    model = DCIGN(dataclasses.replace(cfg, latent_dim=outputs, odd_latents=()))
    init_weights(model, init)
    return model


def scaled(deg: np.ndarray, ranges: list[tuple[float, float]]) -> np.ndarray:
    """Degrees (N, L) -> [-1, 1] per column over each factor's range."""
    lo, hi = np.array(ranges, dtype=np.float32).T
    return (2 * (deg - lo) / (hi - lo) - 1).astype(np.float32)


def within_r(pred: np.ndarray, truth: np.ndarray) -> float:
    """Mean over identities of the r between prediction and factor on that identity's grid
    ((n, B) each)."""
    return float(np.mean([np.corrcoef(p, t)[0, 1] for p, t in zip(pred, truth, strict=True)]))


def regress(enc: Encoder, x: np.ndarray, y: np.ndarray, steps: int, *, batch: int, lr: float,
            betas: tuple[float, float], seed: int = 0,
            amp: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
            every: int = 1) -> Iterator[int]:
    """Train `enc`'s mu head (and convs) on uint8 images x (N, C, H, W) -> targets y (N, L) by
    the squared error, `batch` images drawn i.i.d. a step; yields every `every` steps and the
    last."""
    opt = torch.optim.Adam(enc.parameters(), lr=lr, betas=betas)
    gen = np.random.default_rng(seed)
    for step in range(1, steps + 1):
        idx = gen.integers(0, len(x), batch)
        with amp():
            out = enc(torch.from_numpy(x[idx]).float().div_(255))[0]
        loss = F.mse_loss(out.float(), torch.from_numpy(y[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % every == 0 or step == steps:
            yield step


def run(params, inp, train_idx, steps: int, every: int, seed: int):
    """Yield (step, training seconds, {factor: (equivariance, within-identity r)})."""
    factors = list(inp.factors)
    x, y = factor_targets(train_idx, inp)
    torch.manual_seed(seed)
    model = regressor(model_config(params, train_idx, "faces"), len(factors), params.train.init)
    t = params.train
    cpu = torch.device("cpu")
    amp = bf16_autocast(torch.device("cpu"), t.amp)
    spent, t0 = 0.0, time.perf_counter()
    for step in regress(model.encoder, x, y, steps, batch=train_idx.batch_size, lr=t.lr,
                        betas=tuple(t.betas), seed=seed, amp=amp, every=every):
        spent += time.perf_counter() - t0
        scores = {}
        for i, f in enumerate(factors):
            g = inp.grids[f]
            n, b = g.images.shape[:2]
            pred = encode(model, g.images, cpu).reshape(n * b, -1)[:, i]
            truth = np.tile(g.values, n)
            scores[f] = (M.equivariance(pred, truth),
                         within_r(pred.reshape(n, b), truth.reshape(n, b)))
        yield step, spent, scores
        t0 = time.perf_counter()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", type=Path, default=REPO / "data" / "faces")
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    a = ap.parse_args()
    if a.steps < 1 or a.every < 1:
        raise SystemExit("--steps and --every must be >= 1")
    torch.set_num_threads(1)
    params = load_params(REPO / "params.yaml")
    inp = eval_inputs(params, "faces", a.data)
    train_idx = SplitIndex.scan(a.data / "train")
    factors = list(inp.factors)
    lines = ["### the default encoder trained on the true factors (analysis)", "",
             f"Machine: {machine()}",
             "Command: `python -m bench.supervised_ceiling "
             + shlex.join(["--steps", str(a.steps), "--every", str(a.every)]
                         + ["--seed", str(a.seed)] * bool(a.seed)) + "`", "",
             "| step | " + " | ".join(f"{f}: \\|r\\| on the test grid | {f}: r within identity"
                                     for f in factors) + " | training seconds |",
             "|---|" + "---|---|" * len(factors) + "---|"]
    for step, sec, scores in run(params, inp, train_idx, a.steps, a.every, a.seed):
        cells = [f"{scores[f][0]:.3f} | {scores[f][1]:.3f}" for f in factors]
        lines.append(f"| {step} | " + " | ".join(cells) + f" | {sec:.0f} |")
        print(lines[-1], flush=True)
    publish("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
