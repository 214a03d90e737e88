"""`dcign report`: every dataset's metrics, DC-IGN next to the baseline, as a table."""

from __future__ import annotations

import json
from pathlib import Path

MODELS = ("dcign", "baseline")


def load_all(metrics_dir: str | Path) -> dict[str, dict]:
    metrics_dir = Path(metrics_dir)
    files = sorted(metrics_dir.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"{metrics_dir}: no metrics JSON files (run `dcign evaluate`)")
    return {p.stem: json.loads(p.read_text()) for p in files}


def rows(all_metrics: dict[str, dict]) -> list[list[str]]:
    """Header + one row per (dataset, metric): columns dataset, metric, DC-IGN, baseline."""
    out = [["dataset", "metric", "DC-IGN", "baseline", "reference"]]
    for ds, m in all_metrics.items():
        if not all(k in m for k in MODELS):
            continue
        ref = m.get("reference", {}).get("novel_view_copy_mse", {})
        keys: list[tuple[str, ...]] = [("test_mse",)]
        for group in ("equivariance", "invariance", "novel_view_mse"):
            keys += [(group, f) for f in m["dcign"].get(group, {})]
        keys += [("mig",)] + [("dci", k) for k in m["dcign"].get("dci", {})]
        for key in keys:
            vals = []
            for model in MODELS:
                v = m[model]
                for k in key:
                    v = v.get(k) if isinstance(v, dict) else None
                vals.append(_fmt(v))
            extra = _fmt(ref.get(key[1])) + " (copy input)" if key[0] == "novel_view_mse" else ""
            out.append([ds, ".".join(key), *vals, extra])
    return out


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
