"""`dcign gate`: compare metrics of two commits (or folders) and fail on a regression.

Each metric has a direction: errors and invariance ratios should go down; equivariance, identity
retrieval, MIG and DCI should go up. A gated metric regresses when its new mean is worse than
the base mean by more than its tolerance (relative to the base value) AND by more than the
training seeds' noise: a one-sided Welch's t-test on the two sides' means, sample standard
deviations and seed counts (`metrics/<dataset>.json` holds them: the model's tree, `sd.<model>`,
`n_seeds`) must reject "no worse" at level ALPHA. A side with one seed has no noise estimate;
then the tolerance alone decides, and the table says so. Tolerances live in params.yaml under
`gate.tolerance`, keyed by shell-style patterns on the dotted metric name, e.g.
`faces.dcign.equivariance.*: 0.05`; metrics matching no pattern are reported, never gated.
"""

from __future__ import annotations

import fnmatch
import json
import math
import subprocess
from dataclasses import dataclass
from pathlib import Path

from scipy.stats import ttest_ind_from_stats

ALPHA = 0.05  # one-sided level of the seeds' noise test
LOWER_IS_BETTER = ("test_mse", "invariance", "novel_view_mse", "novel_view_vs_oracle",
                   "floor_mse", "angle_error_deg", "loss", "recon", "kl", "mse")
HIGHER_IS_BETTER = ("equivariance", "identity_retrieval", "detail", "mig", "dci")
NOT_GATED = ("reference", "sd", "n_seeds")  # model-free bars, seed spreads, counts


def direction(key: str) -> int:
    """+1 if larger is better, -1 if smaller is better, 0 if neither (not gated)."""
    parts = key.split(".")
    if any(p in NOT_GATED for p in parts):
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
class Side:
    """One side's value of a metric: mean over seeds, their sample sd (None for one seed)."""

    mean: float
    sd: float | None
    n: int


@dataclass(frozen=True)
class Row:
    key: str
    base: Side | None
    new: Side | None
    tolerance: float | None
    regression: float | None  # relative move in the bad direction (negative = improvement)
    p_value: float | None = None  # one-sided Welch: P(a move this bad | no change); None = n/a

    @property
    def beyond_tolerance(self) -> bool:
        return (self.tolerance is not None and self.regression is not None
                and self.regression > self.tolerance)

    @property
    def failed(self) -> bool:
        return self.beyond_tolerance and (self.p_value is None or self.p_value < ALPHA)

    @property
    def status(self) -> str:
        if self.tolerance is None:
            return ""
        if self.failed:
            return "REGRESSED" + (" (n = 1: tolerance only)" if self.p_value is None else "")
        if self.beyond_tolerance:
            return "ok (within seed noise)"
        return "ok"


def tolerance_for(key: str, tolerance: dict[str, float]) -> float | None:
    """The first matching pattern's tolerance (most specific patterns should come first)."""
    for pattern, tol in tolerance.items():
        if fnmatch.fnmatchcase(key, pattern):
            return tol
    return None


def sides(metrics: dict) -> dict[str, Side]:
    """Dotted metric key (dataset.model.metric...) -> its Side, from {dataset: metrics JSON}."""
    out = {}
    for ds, tree in metrics.items():
        n = int(tree.get("n_seeds", 1)) if isinstance(tree, dict) else 1
        sd = flatten(tree.get("sd", {})) if isinstance(tree, dict) else {}
        for key, mean in flatten({ds: tree}).items():
            rest = key.split(".", 1)[1]
            if rest.split(".")[0] in ("sd", "n_seeds"):
                continue
            out[key] = Side(mean, sd.get(rest) if n > 1 else None, n)
    return out


def noise_p_value(base: Side, new: Side, d: int) -> float | None:
    """One-sided Welch's t-test that the new mean is worse (direction d) than the base mean;
    None when a side has no spread estimate (one seed)."""
    if base.sd is None or new.sd is None or base.n < 2 or new.n < 2:
        return None
    if base.sd == 0.0 and new.sd == 0.0:  # no noise at all: any move is real
        return 0.0 if d * (base.mean - new.mean) > 0 else 1.0
    _, p = ttest_ind_from_stats(new.mean, new.sd, new.n, base.mean, base.sd, base.n,
                                equal_var=False, alternative="less" if d > 0 else "greater")
    return float(p) if math.isfinite(p) else None


def compare(base: dict, new: dict, tolerance: dict[str, float]) -> list[Row]:
    b, n = sides(base), sides(new)
    rows = []
    for key in sorted(set(b) | set(n)):
        bv, nv, d = b.get(key), n.get(key), direction(key)
        tol = tolerance_for(key, tolerance) if d else None
        reg = p = None
        if bv is not None and nv is not None and d:
            reg = d * (bv.mean - nv.mean) / max(abs(bv.mean), 1e-12)
            p = noise_p_value(bv, nv, d) if tol is not None else None
        if tol is not None and nv is None:
            reg = float("inf")  # a gated metric that disappeared is a regression
        rows.append(Row(key, bv, nv, tol, reg, p))
    return rows


def _fmt(v: Side | float | None) -> str:
    if v is None:
        return "-"
    if isinstance(v, Side):
        return f"{v.mean:.5g}" + ("" if v.sd is None else f" ± {v.sd:.2g}") + f" (n={v.n})"
    return f"{v:.5g}"


def markdown(rows: list[Row], base: str, new: str) -> str:
    lines = [f"Metrics: `{base}` -> `{new}` (mean ± sd over training seeds; a gated metric "
             f"regresses when worse than its tolerance and, with >= 2 seeds a side, than the "
             f"seeds' noise: one-sided Welch's t-test, p < {ALPHA})", "",
             "| Metric | base | new | change | tolerance | p (noise) | status |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        change = "-" if r.base is None or r.new is None else f"{r.new.mean - r.base.mean:+.4g}"
        tol = "" if r.tolerance is None else f"{r.tolerance:.0%}"
        p = "" if r.p_value is None else f"{r.p_value:.3g}"
        lines.append(f"| {r.key} | {_fmt(r.base)} | {_fmt(r.new)} | {change} | {tol} | {p} "
                     f"| {r.status} |")
    failed = [r.key for r in rows if r.failed]
    lines += ["", f"**{len(failed)} regression(s)**: {', '.join(failed)}" if failed
              else "No gated metric regressed."]
    return "\n".join(lines)
