"""Training curves side by side: one test metric of several runs, step by step.

    python -m bench.curves RUN [RUN ...] [--metric test/mse] [--names a,b,...] [--out FILE]

Each RUN is a `dcign train --out` folder (or a `bench.sweep` run folder); the curve is its
dvclive TSV `live/plots/metrics/<metric>.tsv` (or `partial/live/...` while it runs). Prints one
Markdown row per logged step and one column per run, a blank where a run has no point. Nothing
is trained here: this reads what `fit` logged, for A/B runs made with the commands beside the
table.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from bench import publish


def read_curve(run: Path, metric: str) -> dict[int, float]:
    """step -> value of `metric` (e.g. "test/mse") in a run folder's dvclive curves."""
    for live in (run / "live", run / "partial" / "live"):
        tsv = live / "plots" / "metrics" / f"{metric}.tsv"
        if tsv.is_file():
            with tsv.open(newline="") as f:
                rows = list(csv.DictReader(f, delimiter="\t"))
            name = metric.rsplit("/", 1)[-1]
            return {int(r["step"]): float(r[name]) for r in rows}
    raise FileNotFoundError(f"{run}: no curve {metric!r} under live/ or partial/live/")


def table(curves: dict[str, dict[int, float]], metric: str) -> str:
    steps = sorted({s for c in curves.values() for s in c})
    head = ["step", *curves]
    lines = [f"| {' | '.join(head)} |", "|" + "---|" * len(head)]
    for s in steps:
        cells = [str(s)] + [f"{c[s]:.4g}" if s in c else "" for c in curves.values()]
        lines.append(f"| {' | '.join(cells)} |")
    return f"{metric} by training step\n\n" + "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--metric", default="test/mse")
    ap.add_argument("--names", default=None, help="comma-separated column names (default: paths)")
    ap.add_argument("--out", default=None, help="append the table to this Markdown file")
    a = ap.parse_args()
    names = a.names.split(",") if a.names else [str(r) for r in a.runs]
    if len(names) != len(a.runs):
        ap.error(f"--names has {len(names)} names for {len(a.runs)} runs")
    publish(table({n: read_curve(r, a.metric) for n, r in zip(names, a.runs)}, a.metric), a.out)


if __name__ == "__main__":
    main()
