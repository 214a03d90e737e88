"""Benchmarks and experiment drivers; each script prints Markdown and appends it with --out."""

from __future__ import annotations

from pathlib import Path


def publish(text: str, out: str | Path | None) -> None:
    """Print a bench's Markdown and, with --out, append it to that file. Here rather than in
    bench/render.py so that scripts run where no renderer is installed (bench/gpu.py)."""
    print(text)
    if out:
        with open(out, "a") as f:
            f.write("\n" + text + "\n")
