"""The ablation table: clamp on/off (DC-IGN vs plain VAE) x flip-odd encoder on/off.

    python -m bench.ablation [--results results/ablation] [--out FILE]

Reads the evaluate stage's `metrics/<dataset>.json` of each configuration, as committed under
--results (`<config>/<dataset>.json`, each over n training seeds: results/ablation at the
defaults before GroupNorm, lr 1e-3, the cooldown and 2,400 faces steps, results/ablation-previous-
defaults also before kaiming init, centring and kl_weight 0.1; results/default-6000-xeon the
6,000-step defaults' faces ablation and chairs' clamp on/off, all with the light at the camera's
elevation; results/default-6000-scene-light the same faces ablation with the scene light;
README "Ablation" has the commands that made them), and prints one Markdown table per dataset:
every metric of the evaluate stage as mean ± sample sd, per configuration and model, then for
each configuration the clamp's effect (DC-IGN minus baseline) with the two-sided Welch t-test's
p-value over the seeds, and the model-free references (copy, oracle, chance).
Nothing is trained here.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from scipy.stats import ttest_ind_from_stats

from bench import publish
from evaluate.report import _cell, _get, _reference, metric_keys

REPO = Path(__file__).resolve().parents[1]
MODEL_NAMES = {"dcign": "DC-IGN", "baseline": "VAE"}
# Each result set (a folder under results/) -> its configurations: folder -> (how the table
# names it, its overrides of params.yaml for `dvc exp run -S ...` or `dcign train --set ...`;
# README "Ablation"). Clamp on/off is DC-IGN vs its baseline, trained in every configuration.
# The paper's method is the plain encoder with the paper's kind mix.
SEEDS = "train.seeds=[0,1,2]"
PLAIN = "train.odd_factors.faces=[]"
PAPER_KIND_MIX = "train.kind_mix.faces={azimuth: 1, elevation: 1, light_azimuth: 1, intrinsic: 10}"
# The previous defaults drew kinds by the rendered batch counts, with PyTorch's default init,
# the ELBO and no centring (before train.init, kl_weight 0.1 and center_extrinsic).
COUNTS_MIX = "train.kind_mix.faces=null"
# Both result sets were trained before train.norm: group, lr 1e-3, the cooldown and 2,400 faces
# steps became the defaults; these pin what they were trained with.
BEFORE_NORM = ("train.norm=none", "train.lr=0.0005", "train.lr_schedule=constant",
               "train.steps.faces=1600")
OLD_DEFAULTS = ("train.init=torch", "train.kl_weight=1", "train.center_extrinsic=false",
                *BEFORE_NORM)
# The default of the 6,000-step release, trained per seed on an Intel Xeon with AMX (bf16;
# faces by `bench.identity_curve`, chairs by `dcign train`) and scored by `dcign evaluate` over
# the three seeds (README "DC-IGN and its baseline over 3 seeds"; chairs under paper-method/,
# their default). Pinned like the others.
STEPS_6000 = ("train.norm=group", "train.lr=0.001", "train.lr_schedule=cooldown",
              "train.steps.faces=6000")
# The data: every set before default-6000-scene-light was rendered with the light at the
# camera's elevation (render.light.elevation null, the default until 2026-12-05).
CAMERA_LIGHT = "render.light.elevation=null"
SCENE_LIGHT = "render.light.elevation=30"
RESULT_SETS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "default-6000-scene-light": {
        "paper-method": ("the paper's method: plain encoder",
                         (SEEDS, *STEPS_6000, SCENE_LIGHT, PLAIN)),
        "flip-odd": ("flip-odd encoder (our extension, the default)",
                     (SEEDS, *STEPS_6000, SCENE_LIGHT)),
    },
    "default-6000-xeon": {
        "paper-method": ("the paper's method: plain encoder",
                         (SEEDS, *STEPS_6000, CAMERA_LIGHT, PLAIN)),
        "flip-odd": ("flip-odd encoder (our extension, the default)",
                     (SEEDS, *STEPS_6000, CAMERA_LIGHT)),
    },
    "ablation": {
        "paper-method": ("the paper's method: plain encoder",
                         (SEEDS, *BEFORE_NORM, CAMERA_LIGHT, PLAIN)),
        "flip-odd": ("flip-odd encoder (our extension, the default)",
                     (SEEDS, *BEFORE_NORM, CAMERA_LIGHT)),
    },
    "ablation-previous-defaults": {
        "paper-method": ("the paper's method: plain encoder, kind mix 1:1:1:10",
                         (SEEDS, *OLD_DEFAULTS, CAMERA_LIGHT, PLAIN, PAPER_KIND_MIX)),
        "paper-encoder": ("plain encoder, counts mix",
                          (SEEDS, *OLD_DEFAULTS, CAMERA_LIGHT, PLAIN, COUNTS_MIX)),
        "flip-odd": ("flip-odd encoder (our extension), counts mix",
                     (SEEDS, *OLD_DEFAULTS, CAMERA_LIGHT, COUNTS_MIX)),
    },
}


def welch(m: dict, key: tuple[str, ...]) -> str:
    """DC-IGN minus baseline, with the two-sided Welch p over the seeds."""
    means = [_get(m[k], key) for k in MODEL_NAMES]
    sds = [_get(m.get("sd", {}).get(k), key) for k in MODEL_NAMES]
    n = m.get("n_seeds", 1)
    if any(not isinstance(v, (int, float)) for v in means):
        return ""
    diff = means[0] - means[1]
    if n < 2 or any(not isinstance(s, (int, float)) for s in sds) or sds[0] + sds[1] == 0:
        return f"{diff:+.3g}"
    p = ttest_ind_from_stats(means[0], sds[0], n, means[1], sds[1], n, equal_var=False).pvalue
    return f"{diff:+.3g} (p {p:.2g})" if math.isfinite(p) else f"{diff:+.3g}"


def table(dataset: str, configs: dict[str, dict], labels: dict[str, str]) -> str:
    names = list(configs)
    first = configs[names[0]]
    head = ["metric"]
    for c in names:
        n = configs[c].get("n_seeds", 1)
        head += [f"{MODEL_NAMES[k]}, {labels.get(c, c)} (n = {n})" for k in MODEL_NAMES]
    head += [f"clamp effect, {labels.get(c, c)}" for c in names] + ["reference"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key in metric_keys(first["dcign"]):
        cells = [".".join(key)]
        for c in names:
            m = configs[c]
            cells += [_cell(_get(m[k], key), _get(m.get("sd", {}).get(k), key))
                      for k in MODEL_NAMES]
        cells += [welch(configs[c], key) for c in names]
        cells.append(_reference(first.get("reference", {}), key))
        lines.append("| " + " | ".join(cells) + " |")
    return f"#### {dataset}\n\n" + "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--results", default=str(REPO / "results" / "ablation"))
    ap.add_argument("--out", default=None, help="append the tables to this Markdown file")
    a = ap.parse_args()
    root = Path(a.results)
    found: dict[str, dict[str, dict]] = {}
    for path in sorted(root.glob("*/*.json")):
        found.setdefault(path.stem, {})[path.parent.name] = json.loads(path.read_text())
    if not found:
        ap.error(f"--results {root}: no <config>/<dataset>.json files")
    labels = {c: label for c, (label, _) in RESULT_SETS.get(root.name, {}).items()}
    order = {c: i for i, c in enumerate(labels)}
    parts = [table(ds, dict(sorted(cfgs.items(), key=lambda kv: order.get(kv[0], 99))), labels)
             for ds, cfgs in sorted(found.items())]
    publish("\n\n".join(parts), a.out)


if __name__ == "__main__":
    main()
