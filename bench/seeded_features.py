"""If the encoder already sees elevation, does DC-IGN training keep it? (analysis)

    python -m bench.seeded_features [--pretrain 2000] [--steps 4000] [--every 1000]
                                    [--control] [--data data/faces] [--out FILE]

bench.code_swap finds the default decoder drawing nothing below the horizon that the elevation
latent controls, and bench.decoder_finetune a new decoder drawing less on the encoder's codes
than on free ones: the encoder does not carry what the decoder does not draw, and the decoder
does not learn what the codes do not carry. This tests that reading from the encoder's side. A
new faces DC-IGN (params.yaml's config and init, seed 0) gets encoder convs that already read
the factors: those of the default encoder trained --pretrain steps on the true factors
(bench.supervised_ceiling, |r| 0.97-0.99 there); its mu / log-variance heads and decoder stay
as drawn. It then trains --steps DC-IGN steps (bench.half_finetune's loop: the training step
itself, the kind-mix stream, Adam at a constant train.lr), scored every --every steps. --control
runs the same with the convs as drawn, so the two differ only in the convs' start.

Not a method: the convs are seeded with labels DC-IGN never sees. If elevation's read-out stays
above the control's, an encoder that carries elevation makes the decoder learn to use it; if it
falls back to the control's, the objective alone brings it there.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import torch

from bench import publish
from bench.half_finetune import new_dcign, run, scores
from bench.render import machine
from bench.supervised_ceiling import factor_targets, regress, regressor
from core.device import bf16_autocast
from core.params import load_params
from core.shards import SplitIndex
from evaluate.stage import eval_inputs
from train.model import DCIGN

REPO = Path(__file__).resolve().parents[1]


def seed_features(model: DCIGN, source: torch.nn.Module) -> None:
    """Copy `source`'s conv stack (an Encoder's ``features``) into `model`'s encoder."""
    model.encoder.features.load_state_dict(source.features.state_dict())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--pretrain", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=4000)
    ap.add_argument("--every", type=int, default=1000)
    ap.add_argument("--control", action="store_true", help="convs as drawn, no pretraining")
    ap.add_argument("--data", type=Path, default=REPO / "data" / "faces")
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    a = ap.parse_args()
    if a.pretrain < 1 or a.steps < 1 or a.every < 1:
        raise SystemExit("--pretrain, --steps and --every must be >= 1")
    torch.set_num_threads(1)
    params = load_params(REPO / "params.yaml")
    t = params.train
    inp = eval_inputs(params, "faces", a.data)
    train_idx = SplitIndex.scan(a.data / "train")
    model = new_dcign(params, train_idx)
    if not a.control:
        x, y = factor_targets(train_idx, inp)
        torch.manual_seed(1)
        told = regressor(model.cfg, len(inp.factors), t.init)
        for _ in regress(told.encoder, x, y, a.pretrain, batch=train_idx.batch_size, lr=t.lr,
                         betas=tuple(t.betas), amp=bf16_autocast(torch.device("cpu"), t.amp),
                         every=a.pretrain):
            pass
        seed_features(model, told.encoder)
    lines = ["### a new DC-IGN " + ("with its convs as drawn (control)" if a.control else
                                    f"with convs pretrained {a.pretrain} steps on the factors")
             + " (analysis)", "", f"Machine: {machine()}",
             "Command: `python -m bench.seeded_features "
             + shlex.join(["--steps", str(a.steps), "--every", str(a.every)]
                          + (["--control"] if a.control else ["--pretrain", str(a.pretrain)]))
             + "`", "",
             "| step | " + " | ".join(f"\\|r\\| {f}" for f in inp.factors)
             + " | grid MSE | training seconds |",
             "|---|" + "---|" * len(inp.factors) + "---|---|"]
    for step, sec in run(model, params, a.data, "both", a.steps, t.lr, a.every):
        s = scores(model, inp.grids, inp.factors)
        lines.append(f"| {step} | " + " | ".join(f"{s[f]:.3f}" for f in inp.factors)
                     + f" | {s['mse']:.5f} | {sec:.0f} |")
        print(lines[-1], flush=True)
    publish("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
