"""Does a decoder that knows where it draws learn the face inside the head? (a prototype)

    python -m bench.coordconv [--steps 6000] [--every 1500] [--control] [--data data/faces]
                              [--out FILE]

Every faces decoder at this budget draws a head's outline and nothing inside it (`detail` ~0),
not even the average face's eyes and mouth, which sit at nearly fixed places in the frame and
which the identity-free oracle draws (detail 0.25-0.36). With nothing drawn inside the head
below the horizon at the frontal view, the elevation latent has nothing to control there
(bench.code_swap). This prototype gives every decoder conv two more input maps, the pixel's
row and column in [-1, 1] (CoordConv, Liu et al. 2018), so a conv can draw by place as well as
by pattern; the rest of the network, its init and the training loop are those of
bench.seeded_features --control (a new faces DC-IGN, seed 0, the training step, the kind-mix
stream, Adam at a constant train.lr). --control runs that arm here, with `detail` scored
beside it. Not in the model: a prototype, kept only if it wins.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import torch
from torch import Tensor, nn

from bench import publish
from bench.half_finetune import new_dcign, run, scores
from bench.render import machine
from core.params import load_params
from core.shards import SplitIndex
from evaluate.stage import Detail, eval_inputs
from train.model import DCIGN

REPO = Path(__file__).resolve().parents[1]


class CoordConv2d(nn.Module):
    """A Conv2d whose input gets two more maps: the row and the column, each in [-1, 1]."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = nn.Conv2d(conv.in_channels + 2, conv.out_channels, conv.kernel_size,
                              conv.stride, conv.padding)
        with torch.no_grad():  # the image channels keep the drawn weights; the new ones start at 0
            self.conv.weight.zero_()
            self.conv.weight[:, : conv.in_channels] = conv.weight
            self.conv.bias.copy_(conv.bias)

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        rows = torch.linspace(-1, 1, h, dtype=x.dtype, device=x.device).view(1, 1, h, 1)
        cols = torch.linspace(-1, 1, w, dtype=x.dtype, device=x.device).view(1, 1, 1, w)
        coords = torch.cat([rows.expand(n, 1, h, w), cols.expand(n, 1, h, w)], dim=1)
        return self.conv(torch.cat([x, coords], dim=1))


def with_coordconv(model: DCIGN) -> DCIGN:
    """`model` with each decoder conv made a CoordConv2d (the same function at the start)."""
    body = model.decoder.body
    for i, layer in enumerate(body):
        if isinstance(layer, nn.Conv2d):
            body[i] = CoordConv2d(layer)
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--every", type=int, default=1500)
    ap.add_argument("--control", action="store_true", help="the paper's decoder convs")
    ap.add_argument("--data", type=Path, default=REPO / "data" / "faces")
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    a = ap.parse_args()
    if a.steps < 1 or a.every < 1:
        raise SystemExit("--steps and --every must be >= 1")
    torch.set_num_threads(1)
    params = load_params(REPO / "params.yaml")
    inp = eval_inputs(params, "faces", a.data)
    train_idx = SplitIndex.scan(a.data / "train")
    model = new_dcign(params, train_idx)  # as bench.seeded_features --control draws it
    if not a.control:
        with_coordconv(model)
    detail = Detail.of(params.evaluate, inp.test_idx.image_size)
    lines = ["### a new DC-IGN with " + ("the paper's decoder convs (control)" if a.control
                                         else "a CoordConv decoder") + " (prototype)", "",
             f"Machine: {machine()}", "Command: `python -m bench.coordconv "
             + shlex.join(["--steps", str(a.steps), "--every", str(a.every)]
                          + ["--control"] * a.control) + "`", "",
             "| step | " + " | ".join(f"\\|r\\| {f}" for f in inp.factors)
             + f" | grid MSE | detail ({inp.factors[0]} grid) | training seconds |",
             "|---|" + "---|" * len(inp.factors) + "---|---|---|"]
    for step, sec in run(model, params, a.data, "both", a.steps, params.train.lr, a.every):
        s = scores(model, inp.grids, inp.factors, detail)
        d = s["detail"]
        lines.append(f"| {step} | " + " | ".join(f"{s[f]:.3f}" for f in inp.factors)
                     + f" | {s['mse']:.5f} | " + ("n/a" if d is None else f"{d:.3f}")
                     + f" | {sec:.0f} |")
        print(lines[-1], flush=True)
    publish("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
