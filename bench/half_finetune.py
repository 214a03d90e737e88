"""Which half of a trained DC-IGN holds elevation back? (analysis)

    python -m bench.half_finetune CHECKPOINT --train encoder|decoder|both [--steps 1000]
                                  [--lr 3e-4] [--every 250] [--data data/faces] [--out FILE]

The default faces DC-IGN reads elevation at |r| 0.78-0.88 on the test grid, while the same
encoder trained on the true factors reads it at 0.97 after 500 steps (bench.supervised_ceiling):
the images and the conv stack allow it; the DC-IGN objective does not get there. This trains
one half of a trained checkpoint on, the other frozen, with the training step itself
(train.step.backward_step: clamp, centring, KL weight and bf16 autocast as params.yaml sets
them; the kind mix's stream, from past the checkpoint's own items), Adam at a constant --lr.
--train both is the control: the same steps for the whole model. If the encoder alone lifts
elevation, the decoder already renders it and the encoder is what lags; if only the decoder's
training (or neither) does, the renderer is what the encoder waits for. Every --every steps:
each factor's |r| on the evaluate stage's test grid (its latent's equivariance), and the grid
reconstructions' MSE.
"""

from __future__ import annotations

import argparse
import shlex
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from bench import publish
from bench.render import machine
from core.device import bf16_autocast
from core.params import load_params
from core.shards import scan_splits
from evaluate import metrics as M
from evaluate.data import decode, encode
from evaluate.stage import Detail, eval_inputs
from train import checkpoint
from train.clamp import LatentAssignment
from train.data import MinibatchStream
from train.fit import model_config
from train.model import DCIGN, init_weights
from train.step import backward_step, item_noise

REPO = Path(__file__).resolve().parents[1]
HALVES = ("encoder", "decoder", "both")


def trainable(model: DCIGN, half: str) -> list[torch.nn.Parameter]:
    """Freeze all but `half` of the model; its parameters."""
    if half not in HALVES:
        raise ValueError(f"unknown half {half!r} (expected one of {HALVES})")
    for name, part in (("encoder", model.encoder), ("decoder", model.decoder)):
        part.requires_grad_(half in (name, "both"))
    return [p for p in model.parameters() if p.requires_grad]


def scores(model: DCIGN, grids: dict, factors: tuple[str, ...],
           detail: Detail | None = None) -> dict[str, float | None]:
    """Each factor's |r| on its test grid, and the grids' reconstruction MSE ("mse"); with
    `detail`, also the evaluate stage's `detail` of the first factor's grid ("detail")."""
    model.eval()
    out: dict[str, float | None] = {}
    errs = []
    dev = torch.device("cpu")
    for i, f in enumerate(factors):
        g = grids[f]
        n, b = g.images.shape[:2]
        x = g.images.reshape(n * b, *g.images.shape[2:])
        truth = x.astype(np.float32) / 255
        mu = encode(model, x, dev)
        rec = decode(model, mu, dev)
        out[f] = M.equivariance(mu[:, i], np.tile(g.values, n))
        errs.append(np.mean((rec - truth) ** 2))
        if detail is not None and i == 0:
            out["detail"] = detail.score(rec, truth)
    out["mse"] = float(np.mean(errs))
    return out


def new_dcign(params, train_idx, seed: int = 0) -> DCIGN:
    """A new faces DC-IGN as training draws it (params.yaml's config and train.init), seed
    `seed`: the start of bench.seeded_features and bench.coordconv, and of their controls."""
    torch.manual_seed(seed)
    model = DCIGN(model_config(params, train_idx, "faces"))
    init_weights(model, params.train.init)
    return model


def run(model: DCIGN, params, data: Path, half: str, steps: int, lr: float, every: int, *,
        seed: int = 0, first: int = 0) -> Iterator[tuple[int, float]]:
    """Train `half` of `model` for `steps` DC-IGN steps on the training stream of seed `seed`
    from item `first` on; yield (step, seconds) at 0, every `every` steps and at the last (the
    model in eval mode there)."""
    t = params.train
    train_idx, _ = scan_splits(data, "faces", "fine-tunes")
    assignment = LatentAssignment(train_idx.latent_factors, t.latent_dim)
    stream = MinibatchStream(train_idx, seed, t.mix_for("faces"))
    opt = torch.optim.Adam(trainable(model, half), lr=lr, betas=t.betas)
    amp = bf16_autocast(torch.device("cpu"), t.amp)
    spent = 0.0  # training time only: the caller scores between yields
    yield 0, spent
    for step in range(1, steps + 1):
        t0 = time.perf_counter()
        model.train()
        item = stream[first + step]
        x = item["images"].float().div_(255)
        noise = item_noise(stream.seed, item["item"].view(1), train_idx.batch_size, t.latent_dim)
        opt.zero_grad(set_to_none=True)
        backward_step(model, x, [train_idx.kinds[int(item["kind"])]], noise, model_kind="dcign",
                      assignment=assignment, clamp_scale=t.clamp_scale, kl_weight=t.kl_weight,
                      center_extrinsic=t.center_extrinsic, amp=amp)
        opt.step()
        spent += time.perf_counter() - t0
        if step % every == 0 or step == steps:
            model.eval()
            yield step, spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("--train", choices=HALVES, required=True)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--every", type=int, default=250)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--data", type=Path, default=REPO / "data" / "faces")
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    a = ap.parse_args()
    if a.steps < 1 or a.every < 1 or not a.lr > 0:
        raise SystemExit("--steps and --every must be >= 1, --lr > 0")
    torch.set_num_threads(1)
    params = load_params(REPO / "params.yaml")
    model, ckpt = checkpoint.load_model(a.checkpoint)
    if ckpt["dataset"] != "faces" or ckpt["model_kind"] != "dcign":
        raise SystemExit(f"{a.checkpoint}: a {ckpt['dataset']} {ckpt['model_kind']} checkpoint; "
                         f"this fine-tunes a faces DC-IGN")
    inp = eval_inputs(params, "faces", a.data)
    factors = inp.factors
    lines = [f"### half of a trained DC-IGN trained on: {a.train} (analysis)", "",
             f"Machine: {machine()}",
             "Command: `python -m bench.half_finetune "
             + shlex.join([str(a.checkpoint), "--train", a.train, "--steps", str(a.steps),
                           "--every", str(a.every), "--lr", str(a.lr)]) + "`", "",
             "| step | " + " | ".join(f"\\|r\\| {f}" for f in factors)
             + " | grid MSE | training seconds |",
             "|---|" + "---|" * len(factors) + "---|---|"]
    # The checkpoint's own training stream, from past the items it has trained on.
    for step, sec in run(model, params, a.data, a.train, a.steps, a.lr, a.every,
                         seed=int(ckpt["params"]["train_seed"]), first=int(ckpt["step"])):
        s = scores(model, inp.grids, factors)
        lines.append(f"| {step} | " + " | ".join(f"{s[f]:.3f}" for f in factors)
                     + f" | {s['mse']:.5f} | {sec:.0f} |")
        print(lines[-1], flush=True)
    publish("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
