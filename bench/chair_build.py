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


def build_ms(n: int, rounds: int = 3) -> tuple[float, float]:
    """Medians over rounds of the mean time per chair (ms) of n chairs: building from drawn
    parameters, and the whole `mesh()` a render process calls (draw the parameters, build)."""
    src = ParametricChairs(0, "chairs")
    params = [src.sample_identity(identity_rng(0, "chairs", "train", i)) for i in range(n)]
    build, mesh = [], []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for p in params:
            src.build(p)
        t1 = time.perf_counter()
        for i in range(n):
            src.mesh("train", i)
        t2 = time.perf_counter()
        build.append((t1 - t0) / n * 1e3)
        mesh.append((t2 - t1) / n * 1e3)
    return statistics.median(build), statistics.median(mesh)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--chairs", type=int, default=300)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    build, mesh = build_ms(a.chairs)
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text()
                .splitlines() if ln.startswith("model name")), platform.processor())
    publish(f"| {a.chairs} | {build:.2f} | {mesh:.2f} | {cpu} |", a.out)


if __name__ == "__main__":
    main()
