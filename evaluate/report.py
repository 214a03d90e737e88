"""`dcign report`: every dataset's metrics, DC-IGN next to the baseline, as a table.

Each cell is the mean over training seeds, with ± their sample standard deviation when there
are several; the number of seeds heads the model columns. References that do not depend on a
model (copying the input, the identity-free oracle, chance) stand in the last column.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.vocab import MODELS

GROUPS = ("equivariance", "angle_error_deg", "invariance", "novel_view_mse",
          "novel_view_vs_oracle", "floor_mse")
RETRIEVAL = ("novel_view", "reconstruction", "intrinsic")
DETAIL = ("novel_view", "reconstruction")


def load_all(metrics_dir: str | Path) -> dict[str, dict]:
    metrics_dir = Path(metrics_dir)
    files = sorted(metrics_dir.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"{metrics_dir}: no metrics JSON files (run `dcign evaluate`)")
    return {p.stem: json.loads(p.read_text()) for p in files}


def _get(tree: object, key: tuple[str, ...]) -> object:
    for k in key:
        tree = tree.get(k) if isinstance(tree, dict) else None
    return tree


def _reference(ref: dict, key: tuple[str, ...]) -> str:
    f = key[-1]
    if key[0] == "novel_view_mse":
        return (f"copy {_fmt(_get(ref, ('novel_view_copy_mse', f)))}, "
                f"oracle {_fmt(_get(ref, ('novel_view_oracle_mse', f)))}")
    if key[0] == "novel_view_vs_oracle":
        return "oracle = 1"
    if key[:2] == ("identity_retrieval", "novel_view"):
        return (f"chance {_fmt(_get(ref, ('identity_retrieval_chance', f)))}, "
                f"copy {_fmt(_get(ref, ('identity_retrieval_copy', f)))}")
    if key[0] == "identity_retrieval":
        return f"chance {_fmt(_get(ref, ('identity_retrieval_chance', f)))}"
    if key[:2] == ("detail", "novel_view"):
        return (f"copy {_fmt(_get(ref, ('detail_copy', f)))}, "
                f"oracle {_fmt(_get(ref, ('detail_oracle', f)))}")
    if key[0] == "detail":
        return f"oracle {_fmt(_get(ref, ('detail_oracle', f)))}, blur 0"
    return ""


def metric_keys(m: dict) -> list[tuple[str, ...]]:
    """The metrics of one model's tree, in table order."""
    keys: list[tuple[str, ...]] = [("test_mse",)]
    for group in GROUPS:
        keys += [(group, f) for f in m.get(group, {})]
    for kind in RETRIEVAL:
        keys += [("identity_retrieval", kind, f)
                 for f in m.get("identity_retrieval", {}).get(kind, {})]
    for kind in DETAIL:
        keys += [("detail", kind, f) for f in m.get("detail", {}).get(kind, {})]
    keys += [("mig",)] + [("dci", k) for k in m.get("dci", {})]
    return keys


def rows(all_metrics: dict[str, dict]) -> list[list[str]]:
    """Header + one row per (dataset, metric): dataset, metric, DC-IGN, baseline, reference."""
    seeds = sorted({m.get("n_seeds", 1) for m in all_metrics.values()})
    n = "/".join(str(s) for s in seeds)
    out = [["dataset", "metric", f"DC-IGN (n = {n})", f"baseline (n = {n})", "reference"]]
    for ds, m in all_metrics.items():
        if not all(k in m for k in MODELS):
            continue
        for key in metric_keys(m["dcign"]):
            vals = [_cell(_get(m[model], key), _get(m.get("sd", {}).get(model), key))
                    for model in MODELS]
            out.append([ds, ".".join(key), *vals, _reference(m.get("reference", {}), key)])
    return out


def _cell(mean: object, sd: object) -> str:
    return _fmt(mean) if sd is None else f"{_fmt(mean)} ± {_fmt(sd)}"


def _fmt(v: object) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def format_table(table: list[list[str]], markdown: bool = False) -> str:
    if markdown:
        lines = ["| " + " | ".join(table[0]) + " |", "|" + "---|" * len(table[0])]
        lines += ["| " + " | ".join(r) + " |" for r in table[1:]]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table)
