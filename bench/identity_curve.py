"""How fast a faces model learns identity: reconstruction retrieval step by step.

    python -m bench.identity_curve --name NAME [--set KEY=VALUE ...] [--model dcign]
                                   [--steps 3000] [--every 400] [--seed 0] [--threads 1]
                                   [--data data/faces] [--root bench/out/identity] [--no-curves]
    python -m bench.identity_curve --table NAME [NAME ...] [--root ...] [--out bench/RESULTS.md]

Trains one model (params.yaml + every `--set`, `train.steps.faces` = --steps) in chunks of
--every steps (`fit(stop_after=...)`, which resumes to the same weights as an unbroken run) and
after each chunk scores the checkpoint on what part 4 of issue 13 asks of identity:

- `grid`: the evaluate stage's reconstruction retrieval (a test identity's reconstruction is
  nearest its own image among the 40 test identities at that view), mean over the factors' grids;
- `intrinsic_test` / `intrinsic_train`: the same within intrinsic minibatches (20 identities at
  one view; chance 1/20), on test and on training identities: a gap between them is
  generalisation, a low training figure is underfitting;
- `test_mse` on the test grids, and the identity-free oracle's MSE there for scale;
- `detail`: the evaluate stage's detail of the reconstructions on the test grids (the share of
  the fine structure inside the outline they redraw; 0 = a blur), mean over the grids.

The finished model is then scored as the evaluate stage scores it (`score_model`), into
curve.json's "final". A rerun with more --steps extends the run (and rescores its end).

Points go to --root/NAME/curve.json as they come (a rerun continues). `--table` prints one
Markdown table per run. Training and scoring use `train.device` (auto: CUDA where present);
`--no-curves` trains without dvclive's curves, for a machine without DVC (bench/gpu.sh);
`--score-only` trains nothing and scores the run's newest checkpoint (a model trained there).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from bench import publish
from bench.render import machine
from bench.retrieval_floor import grid_score
from bench.train import commit
from core.atomic import write_text
from core.device import choose_device
from core.params import load_params
from evaluate import metrics as M
from evaluate.data import Batches, decode, encode
from evaluate.stage import Detail, LoadedModel, eval_inputs, leave_one_out_mean, score_model
from train import checkpoint
from train.fit import FINAL, LAST, fit

REPO = Path(__file__).resolve().parents[1]
DATASET = "faces"


def in_batch_retrieval(model, batches: Batches, device) -> float:
    """Mean over minibatches of top-1 retrieval of each reconstruction among its batch's images."""
    recon = decode(model, encode(model, batches.images, device), device)
    truth = batches.images.astype(np.float32) / 255
    labels = np.arange(truth.shape[1])
    return float(np.mean([M.top1_retrieval(recon[i], truth[i], labels)
                          for i in range(len(truth))]))


def grid_oracle_mse(inp) -> float:
    """The identity-free oracle's MSE over every test-grid view (data only: computed once)."""
    per_grid = []
    for g in inp.grids.values():
        truth = g.images.astype(np.float32) / 255  # (n, B, C, H, W)
        per_grid.append(np.mean([np.mean((leave_one_out_mean(truth[:, b]) - truth[:, b]) ** 2)
                                 for b in range(truth.shape[1])]))
    return float(np.mean(per_grid))


def score(model, inp, device, detail: Detail) -> dict:
    grid_mse, grid_r, grid_detail = zip(*(
        grid_score(decode(model, encode(model, g.images, device), device),
                   g.images.astype(np.float32) / 255, detail)
        for g in inp.grids.values()), strict=True)
    return {"grid": float(np.mean(grid_r)),
            "intrinsic_test": in_batch_retrieval(model, inp.test.of_kind("intrinsic"), device),
            "intrinsic_train": in_batch_retrieval(model, inp.train.of_kind("intrinsic"), device),
            "test_mse": float(np.mean(grid_mse)),
            "detail": (float(np.mean(d)) if (d := [x for x in grid_detail if x is not None])
                       else None)}


def score_final(record: dict, lm: LoadedModel, inp, params, device, step: int) -> None:
    """The model scored as the evaluate stage scores it, into record["final"]."""
    record["final"], _, _ = score_model(lm, inp.train, inp.test, inp.grids, inp.ranges,
                                        inp.pairs, inp.refs, params, device)
    record["reference"], record["final_step"] = inp.refs, step


def run(a: argparse.Namespace) -> None:
    out = Path(a.root) / a.name
    curve_path = out / "curve.json"
    trained = None
    if a.score_only:  # a run trained elsewhere: its newest checkpoint (checked before the data)
        trained = next((p for p in (out / "run" / FINAL, out / "run" / LAST) if p.is_file()), None)
        if trained is None:
            sys.exit(f"bench.identity_curve: {out / 'run'} holds no {FINAL} or {LAST}")
    record = json.loads(curve_path.read_text()) if curve_path.is_file() else {
        "name": a.name, "model": a.model, "seed": a.seed,
        "command": "python -m bench.identity_curve " + shlex.join(sys.argv[1:]),
        "sets": a.set, "points": []}
    over = [*a.set, f"train.steps.{DATASET}={a.steps}", f"train.threads={a.threads}",
            f"train.seeds=[{a.seed}]"]
    params = load_params(REPO / "params.yaml", over)
    inp = eval_inputs(params, DATASET, Path(a.data))
    device = choose_device(params.train.device)
    detail = Detail.of(params.evaluate, inp.test_idx.image_size)
    step = max((p["step"] for p in record["points"]), default=0)
    oracle = grid_oracle_mse(inp)
    t0 = time.perf_counter()
    if trained is not None:  # --score-only: scored at its own step
        net, saved = checkpoint.load_model(trained, device=device)
        record["model"], step = saved["model_kind"], int(saved["step"])
        record["scored_on"] = machine()
        if all(p["step"] != step for p in record["points"]):
            record["points"].append({"step": step, **score(net, inp, device, detail),
                                     "oracle_mse": oracle})
        lm = LoadedModel(record["model"], net, checkpoint.assignment_of(saved), trained)
        score_final(record, lm, inp, params, device, step)
        write_text(curve_path, json.dumps(record, indent=2) + "\n")
        return
    record.setdefault("device", torch.cuda.get_device_name(device) if device.type == "cuda"
                      else machine())
    while step < a.steps:
        chunk = min(a.every, a.steps - step)
        fit(params, DATASET, Path(a.data), out / "run", model_kind=a.model, seed=a.seed,
            resume=True, progress=False, stop_after=chunk, curves=not a.no_curves)
        step += chunk
        ckpt = out / "run" / (FINAL if step >= a.steps else LAST)
        net, _ = checkpoint.load_model(ckpt, device=device)
        net.eval()
        point = {"step": step, "seconds": round(time.perf_counter() - t0, 1),
                 **score(net, inp, device, detail), "oracle_mse": oracle}
        record["points"].append(point)
        write_text(curve_path, json.dumps(record, indent=2) + "\n")
        print(json.dumps(point), flush=True)
    if record.get("final_step") != step:  # the finished model, scored as the stage scores it
        net, ckpt = checkpoint.load_model(out / "run" / FINAL, device=device)
        lm = LoadedModel(a.model, net, checkpoint.assignment_of(ckpt), out / "run" / FINAL)
        score_final(record, lm, inp, params, device, step)
        write_text(curve_path, json.dumps(record, indent=2) + "\n")


def table(names: list[str], root: Path) -> str:
    parts = []
    for name in names:
        r = json.loads((root / name / "curve.json").read_text())
        on = f", on {r['device']}" if "device" in r else ""
        lines = [f"`{name}` ({r['model']}, seed {r['seed']}{on}; `{r['command']}`)", "",
                 "| step | retrieval, 40 test ids (grid) | in-batch, test | in-batch, train "
                 "| grid MSE | oracle MSE | detail |", "|---|---|---|---|---|---|---|"]
        # Points scored before detail was measured have none.
        lines += [f"| {p['step']} | {p['grid']:.3f} | {p['intrinsic_test']:.3f} | "
                  f"{p['intrinsic_train']:.3f} | {p['test_mse']:.4f} | {p['oracle_mse']:.4f} | "
                  + (f"{p['detail']:.3f} |" if p.get("detail") is not None else "n/a |")
                  for p in r["points"]]
        if "final" in r:
            m = r["final"]
            fs = list(m["equivariance"])
            copy = r["reference"]["novel_view_copy_mse"]
            lines += ["", f"At step {r['final_step']}, scored as the evaluate stage does: "
                      f"test MSE {m['test_mse']:.4f}; |r| "
                      + " / ".join(f"{m['equivariance'][f]:.2f}" for f in fs)
                      + "; novel view / oracle "
                      + " / ".join(f"{m['novel_view_vs_oracle'][f]:.2f}" for f in fs)
                      + "; novel view / copy "
                      + " / ".join(f"{m['novel_view_mse'][f] / copy[f]:.2f}" for f in fs)
                      + "; reconstruction identity retrieval "
                      + " / ".join(f"{m['identity_retrieval']['reconstruction'][f]:.2f}"
                                   for f in fs) + f" ({' / '.join(fs)})."]
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--name")
    ap.add_argument("--table", nargs="+")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--model", default="dcign")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--every", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--data", default=str(REPO / "data" / DATASET))
    ap.add_argument("--root", default=str(REPO / "bench" / "out" / "identity"))
    ap.add_argument("--out")
    ap.add_argument("--no-curves", action="store_true", help="train without dvclive's curves")
    ap.add_argument("--score-only", action="store_true",
                    help="no training: score NAME's newest checkpoint (model.pt, else "
                         "partial/last.pt) at its step, e.g. a run bench/gpu.sh brought back")
    a = ap.parse_args(argv)
    if a.table:
        publish(f"### Identity learning curves ({date.today()}, {machine()}; table printed at "
                f"commit {commit()})\n\n" + table(a.table, Path(a.root)), a.out)
        return
    if not a.name:
        ap.error("--name is required to train (or --table to print)")
    run(a)


if __name__ == "__main__":
    main()
