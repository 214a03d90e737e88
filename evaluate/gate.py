"""`dcign gate`: compare metrics of two commits (or folders) and fail on a regression.

Each metric has a direction: errors and invariance ratios should go down; equivariance, MIG and
DCI should go up. A metric regresses when it moves the wrong way by more than its tolerance
(relative to the base value). Tolerances live in params.yaml under `gate.tolerance`, keyed by
shell-style patterns on the dotted metric name, e.g. `faces.dcign.equivariance.*: 0.05`;
metrics matching no pattern are reported but never fail the gate.
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

LOWER_IS_BETTER = ("test_mse", "invariance", "novel_view_mse", "loss", "recon", "kl", "mse")
HIGHER_IS_BETTER = ("equivariance", "mig", "dci")


def direction(key: str) -> int:
    """+1 if larger is better, -1 if smaller is better, 0 if neither (not gated)."""
    parts = key.split(".")
    if "reference" in parts:
        return 0
    for p in parts:
        if p in HIGHER_IS_BETTER:
            return 1
        if p in LOWER_IS_BETTER:
            return -1
    return 0


def flatten(d: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(flatten(v, key))
        elif isinstance(v, int | float) and not isinstance(v, bool):
            out[key] = float(v)
    return out


def read_metrics(source: str, metrics_dir: str = "metrics", repo: Path = Path(".")) -> dict:
    """Metrics from a folder (`source` is a directory) or from a git revision of `metrics_dir`,
    keyed by dataset (file stem)."""
    path = Path(source)
    if path.is_dir():
        files = sorted(path.glob("*.json"))
        if not files:
            raise FileNotFoundError(f"{path}: no metrics JSON files")
        return {p.stem: json.loads(p.read_text()) for p in files}
    ls = subprocess.run(["git", "ls-tree", "--name-only", f"{source}:{metrics_dir}"], cwd=repo,
                        capture_output=True, text=True)
    if ls.returncode != 0:
        raise ValueError(f"git revision {source!r} has no {metrics_dir}/ folder "
                         f"({ls.stderr.strip() or 'unknown revision'})")
    out = {}
    for name in ls.stdout.split():
        if name.endswith(".json"):
            text = subprocess.run(["git", "show", f"{source}:{metrics_dir}/{name}"], cwd=repo,
                                  capture_output=True, text=True, check=True).stdout
            out[name[:-5]] = json.loads(text)
    if not out:
        raise ValueError(f"git revision {source!r}: no JSON files in {metrics_dir}/")
    return out


@dataclass(frozen=True)
class Row:
    key: str
    base: float | None
    new: float | None
    tolerance: float | None
    regression: float | None  # relative move in the bad direction (negative = improvement)

    @property
    def failed(self) -> bool:
        return (self.tolerance is not None and self.regression is not None
                and self.regression > self.tolerance)


def tolerance_for(key: str, tolerance: dict[str, float]) -> float | None:
    """The first matching pattern's tolerance (most specific patterns should come first)."""
    for pattern, tol in tolerance.items():
        if fnmatch.fnmatchcase(key, pattern):
            return tol
    return None


def compare(base: dict, new: dict, tolerance: dict[str, float]) -> list[Row]:
    b, n = flatten(base), flatten(new)
    rows = []
    for key in sorted(set(b) | set(n)):
        bv, nv, d = b.get(key), n.get(key), direction(key)
        tol = tolerance_for(key, tolerance) if d else None
        reg = None
        if bv is not None and nv is not None and d:
            reg = d * (bv - nv) / max(abs(bv), 1e-12)
        if tol is not None and nv is None:
            reg = float("inf")  # a gated metric that disappeared is a regression
        rows.append(Row(key, bv, nv, tol, reg))
    return rows


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.5g}"


def markdown(rows: list[Row], base: str, new: str) -> str:
    lines = [f"Metrics: `{base}` -> `{new}`", "",
             "| Metric | base | new | change | tolerance | status |", "|---|---|---|---|---|---|"]
    for r in rows:
        change = "-" if r.base is None or r.new is None else f"{r.new - r.base:+.4g}"
        status = "REGRESSED" if r.failed else ("ok" if r.tolerance is not None else "")
        tol = "" if r.tolerance is None else f"{r.tolerance:.0%}"
        lines.append(f"| {r.key} | {_fmt(r.base)} | {_fmt(r.new)} | {change} | {tol} | {status} |")
    failed = [r.key for r in rows if r.failed]
    lines += ["", f"**{len(failed)} regression(s)**: {', '.join(failed)}" if failed
              else "No gated metric regressed."]
    return "\n".join(lines)
