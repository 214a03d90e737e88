"""A one-parameter sweep on faces: DC-IGN (and, if asked, its baseline) trained at several values
of one params key, each scored by the evaluate stage's code.

    python -m bench.sweep --key train.kl_weight --value 1 --value 0.1 [--value ...]
                          [--set KEY=VALUE ...] [--models dcign,baseline] [--seed 0]
                          [--threads 0] [--data data/faces] [--root bench/out/sweep]
                          [--out bench/RESULTS.md]

Trains on the default run's faces shards (--data, made by `dvc repro`) with params.yaml
+ every `--set` + `KEY=VALUE`, one model per value and model kind under
--root/<KEY>=<VALUE>/<model> (a finished one is reused: `fit(resume=True)`), scores each as
the evaluate stage does (`evaluate.stage.score_model`) and prints one Markdown row per value and
model, with the stage's references (copy the input, the identity-free oracle, chance) and, for
DC-IGN, the measured invariance ratio (`clamp_ratio` of train.json). Values are YAML, as in
`dcign train --set`. Lanes: run the script once per subset of values in parallel (`--threads 1`
each) and once more with all of them for the table. `--set` applies to every value: a sweep with
other fixed settings wants its own --root.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

from bench import publish
from bench.render import machine
from bench.train import commit
from core.atomic import write_text
from core.device import choose_device
from core.params import load_params
from core.vocab import MODELS
from evaluate.stage import LoadedModel, eval_inputs, score_model
from train import checkpoint
from train.fit import fit

REPO = Path(__file__).resolve().parents[1]
DATASET = "faces"


def run_dir(root: Path, key: str, value: str, model: str) -> Path:
    """--root/<key>=<value>/<model>, the value made safe for a folder name."""
    return root / f"{key}={re.sub(r'[^A-Za-z0-9_.+-]+', '_', value)}" / model


def train_and_score(key: str, value: str, model: str, a: argparse.Namespace) -> dict:
    """Train (or reuse) one model; its evaluate-stage metrics, clamp ratio and training time."""
    out = run_dir(Path(a.root), key, value, model)
    scores = out / "scores.json"
    if scores.is_file():
        return json.loads(scores.read_text())
    over = [*a.set, f"{key}={value}", f"train.threads={a.threads}", f"train.seeds=[{a.seed}]"]
    params = load_params(REPO / "params.yaml", over)
    data = Path(a.data)
    t0 = time.perf_counter()
    fit(params, DATASET, data, out, model_kind=model, seed=a.seed, resume=True, progress=False)
    seconds = time.perf_counter() - t0
    net, ckpt = checkpoint.load_model(out / "model.pt")
    lm = LoadedModel(model, net, checkpoint.assignment_of(ckpt), out / "model.pt")
    inp = eval_inputs(params, DATASET, data)
    metrics, _, _ = score_model(lm, inp.train, inp.test, inp.grids, inp.ranges, inp.pairs,
                                inp.refs, params, choose_device("cpu"))
    train_json = json.loads((out / "train.json").read_text())
    result = {"key": key, "value": value, "model": model, "overrides": over,
              "clamp_ratio": train_json.get("clamp_ratio"), "train_seconds": round(seconds, 1),
              "metrics": metrics, "reference": inp.refs}
    write_text(scores, json.dumps(result, indent=2) + "\n")  # atomic: a kill leaves none
    return result


def row(r: dict, factors: list[str]) -> str:
    m = r["metrics"]
    ident = m["identity_retrieval"]
    ratio = r["clamp_ratio"]
    cells = [r["value"], r["model"], "-" if ratio is None else f"{ratio:.4f}",
             f"{m['test_mse']:.4f}"]
    cells += [f"{m['equivariance'][f]:.2f}" for f in factors]
    cells += [f"{m['angle_error_deg'][f]:.1f}" for f in factors]
    cells += [f"{m['novel_view_vs_oracle'][f]:.2f}" for f in factors]
    cells += [f"{np.mean(list(ident[part].values())):.2f}"
              for part in ("reconstruction", "novel_view", "intrinsic")]
    cells += [f"{m['dci']['disentanglement']:.2f}"]
    return "| " + " | ".join(cells) + " |"


def table(results: list[dict], a: argparse.Namespace) -> str:
    factors = list(results[0]["metrics"]["equivariance"])
    ref = results[0]["reference"]
    head = ([a.key, "model", "measured clamp ratio", "test MSE"]
            + [f"\\|r\\| {f}" for f in factors] + [f"err° {f}" for f in factors]
            + [f"nv/oracle {f}" for f in factors]
            + ["recon id", "novel-view id", "intrinsic id", "DCI D"])
    copy = " / ".join(f"{ref['novel_view_copy_mse'][f] / ref['novel_view_oracle_mse'][f]:.2f}"
                      for f in factors)
    copy_id = np.mean(list(ref["identity_retrieval_copy"].values()))
    fixed = " ".join(f"`{s}`" for s in a.set) or "none"
    return "\n".join([
        f"### {a.key} sweep: faces ({date.today()}, commit {commit()})", "",
        f"Machine: {machine()}", f"Command: `python -m bench.sweep {shlex.join(sys.argv[1:])}`",
        "",
        f"params.yaml defaults with {fixed}, training seed {a.seed}, one model per value and "
        "kind, scored by the evaluate stage's code on the default test split (id columns: "
        "identity retrieval, mean over the factors' grids). References: copying the input "
        f"scores nv/oracle {copy} ({' / '.join(factors)}) and novel-view id {copy_id:.2f}; "
        f"identity-retrieval chance {max(ref['identity_retrieval_chance'].values()):.3f}. "
        "Train seconds per model: "
        + ", ".join(f"{r['value']}/{r['model']} {r['train_seconds']:.0f}" for r in results)
        + ".", "",
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
        *(row(r, factors) for r in results)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--key", required=True, help="the swept params key, e.g. train.kl_weight")
    ap.add_argument("--value", action="append", required=True, help="a YAML value (repeat)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a fixed override for every value (repeat)")
    ap.add_argument("--models", default="dcign", help="comma-separated: dcign,baseline")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--data", default=str(REPO / "data" / DATASET), help="the faces shards")
    ap.add_argument("--root", default=str(REPO / "bench" / "out" / "sweep"))
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    a = ap.parse_args()
    models = a.models.split(",")
    bad = [m for m in models if m not in MODELS]
    if bad:
        ap.error(f"--models: {bad} not among {list(MODELS)}")
    results = [train_and_score(a.key, v, m, a) for v in a.value for m in models]
    publish(table(results, a), a.out)


if __name__ == "__main__":
    main()
