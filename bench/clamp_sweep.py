"""The invariance scale on faces: DC-IGN trained at several `train.clamp_scale` values.

    python -m bench.clamp_sweep --scales 0,0.01,0.03,0.1 [--steps 2000] [--seed 0]
                                [--threads 0] [--root bench/out/clamp] [--out bench/RESULTS.md]

Trains DC-IGN on the default run's faces shards (`data/faces`, made by `dvc repro`) with
params.yaml + `train.clamp_scale=S` (+ `train.steps.faces`), one model per scale under --root
(a finished one is reused: `fit(resume=True)`), scores each as the evaluate stage does
(`evaluate.stage.score_model`) and prints one Markdown row per scale, with the stage's
references (copy the input, the identity-free oracle, chance). Since `clamp_scale` is the
ratio of the invariance gradient's norm to the active latents' (train/clamp.py), the measured
ratio (`clamp_ratio` of train.json) is printed beside it. Lanes: run the script once per subset
of --scales in parallel (`--threads 1` each) and once more with all of them for the table.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path

import numpy as np

from bench import publish
from bench.render import machine
from bench.train import commit
from core.atomic import write_text
from core.device import choose_device
from core.params import load_params
from evaluate.stage import LoadedModel, eval_inputs, score_model
from train import checkpoint
from train.fit import fit

REPO = Path(__file__).resolve().parents[1]
DATASET = "faces"


def train_and_score(scale: float, a: argparse.Namespace) -> dict:
    """Train (or reuse) the model for one scale; its evaluate-stage metrics and clamp ratio."""
    tag = f"scale-{scale:g}"
    out = Path(a.root) / tag
    scores = out / "scores.json"
    if scores.is_file():
        return json.loads(scores.read_text())
    over = [f"train.clamp_scale={scale}", f"train.steps.{DATASET}={a.steps}",
            f"train.threads={a.threads}", f"train.seeds=[{a.seed}]"]
    params = load_params(REPO / "params.yaml", over)
    data = REPO / "data" / DATASET
    fit(params, DATASET, data, out, model_kind="dcign", seed=a.seed, resume=True, progress=False)
    model, ckpt = checkpoint.load_model(out / "model.pt")
    lm = LoadedModel("dcign", model, checkpoint.assignment_of(ckpt), out / "model.pt")
    inp = eval_inputs(params, DATASET, data)
    metrics, _, _ = score_model(lm, inp.train, inp.test, inp.grids, inp.ranges, inp.pairs,
                                inp.refs, params, choose_device("cpu"))
    train_json = json.loads((out / "train.json").read_text())
    result = {"scale": scale, "clamp_ratio": train_json.get("clamp_ratio"), "metrics": metrics,
              "reference": inp.refs}
    write_text(scores, json.dumps(result, indent=2) + "\n")  # atomic: a kill leaves none
    return result


def row(r: dict, factors: list[str]) -> str:
    m = r["metrics"]
    ident = m["identity_retrieval"]
    cells = [f"{r['scale']:g}", f"{r['clamp_ratio']:.4f}", f"{m['test_mse']:.4f}"]
    cells += [f"{m['equivariance'][f]:.2f}" for f in factors]
    cells += [f"{m['angle_error_deg'][f]:.1f}" for f in factors]
    cells += [f"{m['invariance'][f]:.2g}" for f in factors]
    cells += [f"{m['novel_view_vs_oracle'][f]:.2f}" for f in factors]
    cells += [f"{np.mean(list(ident['reconstruction'].values())):.2f}",
              f"{np.mean(list(ident['intrinsic'].values())):.2f}",
              f"{m['dci']['disentanglement']:.2f}"]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scales", default="0,0.01,0.03,0.1")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--root", default=str(REPO / "bench" / "out" / "clamp"))
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    a = ap.parse_args()
    scales = [float(s) for s in a.scales.split(",")]
    results = [train_and_score(s, a) for s in scales]
    factors = list(results[0]["metrics"]["equivariance"])
    ref = results[0]["reference"]
    head = (["clamp_scale", "measured ratio", "test MSE"]
            + [f"\\|r\\| {f}" for f in factors] + [f"err° {f}" for f in factors]
            + [f"invariance {f}" for f in factors] + [f"nv/oracle {f}" for f in factors]
            + ["recon id", "intrinsic id", "DCI D"])
    copy = " / ".join(f"{ref['novel_view_copy_mse'][f] / ref['novel_view_oracle_mse'][f]:.2f}"
                      for f in factors)
    lines = [f"### clamp_scale sweep: faces DC-IGN ({date.today()}, commit {commit()})", "",
             f"Machine: {machine()}", f"Command: `python -m bench.clamp_sweep "
             f"{' '.join(sys.argv[1:])}`", "",
             f"params.yaml defaults with train.steps.faces={a.steps}, training seed {a.seed}, "
             "one model per scale, scored by the evaluate stage's code on the default test "
             f"split. References: copying the input scores nv/oracle {copy} "
             f"({' / '.join(factors)}); identity-retrieval chance "
             f"{max(ref['identity_retrieval_chance'].values()):.3f}.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += [row(r, factors) for r in results]
    publish("\n".join(lines), a.out)


if __name__ == "__main__":
    main()
