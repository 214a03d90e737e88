"""What reconstruction error keeps identity, and draws the face? Model-free references for part
4's retrieval target and for the evaluate stage's `detail`.

    python -m bench.retrieval_floor [CHECKPOINT ...] [--data data/faces] [--out FILE]

The evaluate stage's reconstruction retrieval asks, per test grid view, whether a test
identity's reconstruction is nearest (squared Euclidean) its own image among the test
identities at that view. Two families of degraded *truth* images, scored the same way on the
same grids, say what MSE a reconstruction may have and still keep identity, and what `detail`
(the share of the fine structure inside the outline it redraws; evaluate/metrics.py) a given
blur leaves:

- `blur sigma=s`: a Gaussian blur of s pixels (scipy.ndimage). Error that loses detail but
  keeps each identity's own low frequencies: what a smooth renderer would do.
- `keep a`: a * image + (1 - a) * the view's mean over the other test identities. Error that
  loses identity itself; a = 0 is the identity-free oracle.

Each CHECKPOINT (e.g. models/faces-dcign/seed-0/model.pt) is scored beside them, so a model's
(MSE, retrieval, detail) can be read against both curves: a model on the blur curve
reconstructs like a blur of that sigma; one on the shrink curve keeps only a share of each
identity. A second table splits each detail into the energy of the fine structure drawn and
its cosine with the truth's: a flat rendering and a misplaced face both score detail ~0.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from bench import publish
from bench.render import machine
from core.params import load_params
from evaluate import metrics as M
from evaluate.data import decode, encode
from evaluate.stage import Detail, eval_inputs, leave_one_out_mean
from train import checkpoint

REPO = Path(__file__).resolve().parents[1]
SIGMAS = (0.5, 1.0, 1.5, 2.0, 3.0)
KEEPS = (0.0, 0.25, 0.5, 0.75, 0.9)


def grid_score(pred: np.ndarray, truth: np.ndarray,
               detail: Detail) -> tuple[float, float, float | None]:
    """(MSE, reconstruction retrieval, detail) of pred against truth, both (n, B, C, H, W) in
    [0, 1]: retrieval among the n identities at each of the B views, averaged over views;
    detail as the evaluate stage scores it, pooled over every grid image."""
    labels = np.arange(len(truth))
    r = [M.top1_retrieval(pred[:, b], truth[:, b], labels) for b in range(truth.shape[1])]
    return float(np.mean((pred - truth) ** 2)), float(np.mean(r)), detail.score(pred, truth)


def fine_structure(pred: np.ndarray, truth: np.ndarray,
                   detail: Detail) -> tuple[float, float] | None:
    """What a `detail` near 0 is made of, on the pixels it scores: (E, the energy of pred's fine
    structure as a share of the truth's; c, the cosine of the two, a correlation about 0 since
    a high-pass has mean ~0). detail = 2 c sqrt(E) - E exactly, so a flat output (E ~ 0) and
    structure in the wrong places (c ~ 0, E > 0) both score ~0. None where no pixel lies
    inside the outline."""
    inside = M.interior(truth.max(axis=-3, keepdims=True), detail.margin)
    inside = np.broadcast_to(inside, truth.shape)
    if not inside.any():
        return None
    hp, ht = (M.high_pass(a, detail.sigma)[inside] for a in (pred, truth))
    ep, et = float(np.sum(hp**2)), float(np.sum(ht**2))
    return ep / et, (float(np.sum(hp * ht) / np.sqrt(ep * et)) if ep > 0 else 0.0)


def blurred(truth: np.ndarray, sigma: float) -> np.ndarray:
    return gaussian_filter(truth, sigma=(0, 0, 0, sigma, sigma), mode="nearest")


def shrunk(truth: np.ndarray, keep: float) -> np.ndarray:
    others = np.stack([leave_one_out_mean(truth[:, b]) for b in range(truth.shape[1])], axis=1)
    return keep * truth + (1 - keep) * others


Scores = list[tuple[float, float, float | None, tuple[float, float] | None]]


def rows(grids: dict, checkpoints: list[Path], detail: Detail) -> list[tuple[str, Scores]]:
    """One (label, [(MSE, retrieval, detail, fine structure) per grid]) per reference and per
    checkpoint."""
    truths = {f: g.images.astype(np.float32) / 255 for f, g in grids.items()}

    def scores(pred: np.ndarray, t: np.ndarray):
        return (*grid_score(pred, t, detail), fine_structure(pred, t, detail))

    out = [(f"blur sigma={s:g} px", [scores(blurred(t, s), t) for t in truths.values()])
           for s in SIGMAS]
    out += [(f"keep {k:g} of the identity", [scores(shrunk(t, k), t) for t in truths.values()])
            for k in KEEPS]
    cpu = torch.device("cpu")
    for path in checkpoints:
        model, _ = checkpoint.load_model(path)  # in eval mode
        out.append((f"`{path}`", [scores(decode(model, encode(model, g.images, cpu), cpu),
                                         truths[f]) for f, g in grids.items()]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("checkpoints", nargs="*", type=Path)
    ap.add_argument("--data", type=Path, default=REPO / "data" / "faces")
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    a = ap.parse_args()
    torch.set_num_threads(1)
    params = load_params(REPO / "params.yaml")
    inp = eval_inputs(params, "faces", a.data)
    grids = inp.grids
    factors = list(grids)
    n = {len(g) for g in grids.values()}
    detail = Detail.of(params.evaluate, inp.test_idx.image_size)
    head = ["images"] + [f"{f}: MSE / retrieval / detail" for f in factors]
    lines = ["### reconstruction retrieval and detail against degraded truths (analysis, not a "
             "timing)", "",
             f"Machine: {machine()}",
             "Command: `python -m bench.retrieval_floor "
             + shlex.join([*map(str, a.checkpoints), "--data", str(a.data)]) + "`", "",
             f"Test grids of {a.data}: {'/'.join(map(str, sorted(n)))} identities per view "
             f"(chance {1 / min(n):.3f}). Detail: blur sd {detail.sigma:g} px, "
             f"{detail.margin} px inside the outline.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    table = rows(grids, a.checkpoints, detail)
    lines += ["| " + " | ".join([label] + [f"{m:.4f} / {r:.2f} / "
                                          + ("n/a" if d is None else f"{d:.3f}")
                                          for m, r, d, _ in cells])
              + " |" for label, cells in table]
    head = ["images"] + [f"{f}: energy / cosine" for f in factors]
    lines += ["", "What the detail is made of: the fine structure's energy inside the outline "
              "as a share of the truth's (E), and its cosine with the truth's (c; detail = "
              "2 c sqrt(E) - E).", "",
              "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join([label] + ["n/a" if fs is None else f"{fs[0]:.3f} / {fs[1]:.2f}"
                                          for *_, fs in cells])
              + " |" for label, cells in table]
    publish("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
