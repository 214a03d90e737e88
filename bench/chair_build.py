"""Building a parametric chair vs rendering it: milliseconds per chair, in one run.

    python -m bench.chair_build [--chairs 300] [--out bench/RESULTS.md]

The chairs stage builds each identity once per process (then caches it) and renders it in many
views, so its cost over the raw backend is about build time / (images per build x render time).
Runs on any commit whose render.chairs has ParametricChairs (for a before/after comparison).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

try:
    from core.seeds import identity_rng
except ImportError:  # commits before the core/ floor
    from render.seeds import identity_rng  # type: ignore[no-redef]
from bench import publish
from render.chairs import ParametricChairs


def build_ms(n: int, rounds: int = 3) -> float:
    """Median over rounds of the mean build time of n chairs (ms per chair)."""
    src = ParametricChairs(0, "chairs")
    params = [src.sample_identity(identity_rng(0, "chairs", "train", i)) for i in range(n)]
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for p in params:
            src.build(p)
        times.append((time.perf_counter() - t0) / n * 1e3)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chairs", type=int, default=300)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    ms = build_ms(a.chairs)
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                .splitlines() if ln.startswith("model name")), platform.processor())
    publish(f"| {a.chairs} | {ms:.2f} | {cpu} |", a.out)


if __name__ == "__main__":
    main()
