"""The regression gate's noise floor at the CI setting (not a timing).

    python -m bench.gate_noise [--seeds 8] [--changes 6] [--overrides ci/small-overrides.txt]
                               [--out bench/RESULTS.md]

Runs the pipeline's library functions on params.yaml + ci/small-overrides.txt (what
`ci/metrics.sh` runs): renders once, trains DC-IGN and the baseline on both datasets with
--seeds training seeds, and evaluates them. Then, from the per-seed metrics:

- per gated metric (params.yaml `gate.tolerance`): mean, sd and sd/|mean| over the seeds;
- the gate's verdicts on seed-only changes: pairs of disjoint sets of 3 seeds, each side scored
  as the evaluate stage would (mean, sd, n = 3), compared with `evaluate.gate.compare`: every
  failure there is a false alarm;
- its verdict on a real regression: the same setting with a tenth of the training steps, seeds
  0-2, against seeds 3-5 of the full setting.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from bench import publish
from bench.render import machine
from bench.train import commit
from core.params import load_params
from core.vocab import DATASETS, MODELS, model_dir
from evaluate.gate import compare, sides
from evaluate.stage import evaluate_dataset, mean_sd
from render.stage import make_shards
from train.fit import fit

REPO = Path(__file__).resolve().parents[1]
SIDE = 3  # seeds per side, as CI runs


def read_overrides(path: Path) -> list[str]:
    """KEY=VALUE lines of an overrides file (ci/small-overrides.txt's format)."""
    lines = path.read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def run(root: Path, overrides: list[str], seeds: list[int], tag: str) -> dict[str, dict]:
    """Per dataset: {"per_seed": {seed: tree}, "reference": refs}."""
    params = load_params(REPO / "params.yaml", (*overrides, f"train.seeds={seeds}"))
    out = {}
    for ds in DATASETS:
        data = root / "data" / ds
        make_shards(params, ds, data, workers=2, progress=False)  # skipped when current
        ckpts: dict[int, dict[str, Path]] = {}
        for seed in seeds:
            for model in MODELS:
                d = model_dir(root / tag, ds, model, seed)
                fit(params, ds, data, d, model_kind=model, seed=seed, progress=False)
                ckpts.setdefault(seed, {})[model] = d / "model.pt"
        evaluate_dataset(params, ds, data, ckpts, root / tag / f"{ds}.json",
                         root / tag / f"eval-{ds}", progress=False)
        per = json.loads((root / tag / f"eval-{ds}" / "per_seed.json").read_text())
        refs = json.loads((root / tag / f"{ds}.json").read_text())["reference"]
        out[ds] = {"per_seed": {int(s): t for s, t in per["per_seed"].items()},
                   "reference": refs}
    return out


def scored(results: dict[str, dict], seeds: tuple[int, ...]) -> dict[str, dict]:
    """Metrics JSON per dataset as the evaluate stage writes it for these seeds."""
    out = {}
    for ds, r in results.items():
        mean, sd = mean_sd([r["per_seed"][s] for s in seeds])
        out[ds] = {"n_seeds": len(seeds), **mean, "sd": sd, "reference": r["reference"]}
    return out


def seed_only_changes(pool: list[int], n: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """n (base, new) pairs of disjoint SIDE-seed sets from the pool, in a fixed order."""
    triples = list(itertools.combinations(pool, SIDE))
    pairs = [(a, b) for a, b in itertools.product(triples, triples)
             if a < b and not set(a) & set(b)]
    step = max(1, len(pairs) // n)
    return pairs[::step][:n]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=8, help="training seeds at the CI setting")
    ap.add_argument("--changes", type=int, default=6, help="seed-only changes to gate")
    ap.add_argument("--overrides", type=Path, default=REPO / "ci" / "small-overrides.txt",
                    help="KEY=VALUE lines applied to params.yaml (the CI setting)")
    ap.add_argument("--out", type=Path, default=None, help="append the Markdown here")
    args = ap.parse_args(argv)
    if args.seeds < 2 * SIDE:
        ap.error(f"--seeds must be at least {2 * SIDE} (two disjoint sides of {SIDE})")
    overrides = read_overrides(args.overrides)
    params = load_params(REPO / "params.yaml", tuple(overrides))
    tolerance = params.gate.tolerance
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pool = list(range(args.seeds))
        full = run(root, overrides, pool, "full")
        steps = {ds: max(1, params.train.steps_for(ds) // 10) for ds in DATASETS}
        short = run(root, [*overrides, f"train.steps={steps}"], pool[:SIDE], "tenth")
    minutes = (time.perf_counter() - t0) / 60

    everything = scored(full, tuple(pool))
    gated = [r for r in compare(everything, everything, tolerance) if r.tolerance is not None]
    spread = sides(everything)
    lines = [f"### gate noise at the CI setting ({date.today()}, commit {commit()})", "",
             f"Machine: {machine()}",
             f"Command: `python -m bench.gate_noise --seeds {args.seeds}"
             f"{' --out ' + str(args.out) if args.out else ''}` ({minutes:.0f} min); setting: "
             f"params.yaml + {args.overrides.name}, {args.seeds} training seeds", "",
             "| gated metric | mean | sd over seeds | sd / mean | tolerance |",
             "|---|---|---|---|---|"]
    for r in gated:
        s = spread[r.key]
        lines.append(f"| {r.key} | {s.mean:.4g} | {s.sd:.3g} | "
                     f"{s.sd / max(abs(s.mean), 1e-12):.1%} | {r.tolerance:.0%} |")
    lines += ["", f"Seed-only changes ({SIDE} seeds a side, disjoint): gated metrics flagged",
              "", "| base seeds | new seeds | flagged (false alarms) |", "|---|---|---|"]
    alarms, changes = 0, seed_only_changes(pool, args.changes)
    for a, b in changes:
        failed = [r.key for r in compare(scored(full, a), scored(full, b), tolerance) if r.failed]
        alarms += bool(failed)
        lines.append(f"| {a} | {b} | {', '.join(failed) or 'none'} |")
    base = scored(full, tuple(pool[SIDE:2 * SIDE]))
    rows = compare(base, scored(short, tuple(pool[:SIDE])), tolerance)
    caught = [r.key for r in rows if r.failed]
    lines += ["", f"False-alarm rate: {alarms} of {len(changes)} seed-only changes.",
              f"Regression (train.steps a tenth: {steps}, seeds {pool[:SIDE]} vs full setting "
              f"seeds {pool[SIDE:2 * SIDE]}): {len(caught)} of {len(gated)} gated metrics "
              f"flagged: {', '.join(caught) or 'none'}.", ""]
    publish("\n".join(lines), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
