"""Figures for people: traversals (paper Figs. 4, 5a, 7), inferred vs true (Fig. 6),
DC-IGN vs baseline re-rendering (Fig. 5b), reconstructions, training curves."""

from __future__ import annotations

import csv
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
import torch

from core.atomic import atomic_path
from core.params import EvaluateConfig
from core.vocab import MODEL_LABELS
from evaluate.data import Batches, decode, encode
from train.model import DCIGN

LABEL = MODEL_LABELS


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def _show(ax: plt.Axes, img: np.ndarray) -> None:
    """img (C, H, W) in [0, 1] or uint8."""
    a = img.astype(np.float32) / 255 if img.dtype == np.uint8 else img
    ax.imshow(a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0), cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])


def _grid(rows: int, cols: int, scale: float = 1.1) -> tuple[plt.Figure, np.ndarray]:
    fig, axes = plt.subplots(rows, cols, figsize=(cols * scale, rows * scale), squeeze=False)
    return fig, axes


def inputs_of(test: Batches, n: int, kind: str) -> np.ndarray:
    """The first image of up to n test minibatches of `kind`: uint8 (n, C, H, W)."""
    sub = test.of_kind(kind)
    return sub.images[:n, 0]


def traversal(path: Path, model: DCIGN, name: str, images: np.ndarray, fl, steps: int,
              device: torch.device, seed: int) -> Path:
    """Rows = inputs, first column the input, then the factor's latent swept over the
    calibrated range with every other latent kept (paper Figs. 4, 5a, 7)."""
    degrees = fl.grid(steps)
    codes = encode(model, images, device)  # (n, D)
    sweep = np.repeat(codes[:, None], steps, axis=1)  # (n, steps, D)
    sweep[..., fl.latent] = fl.latent_value(degrees)[None]
    out = decode(model, sweep, device)  # (n, steps, C, H, W)
    fig, axes = _grid(len(images), steps + 1)
    for r, img in enumerate(images):
        _show(axes[r, 0], img)
        for c in range(steps):
            _show(axes[r, c + 1], out[r, c])
    axes[0, 0].set_title("input", fontsize=8)
    for c, d in enumerate(degrees):
        axes[0, c + 1].set_title(f"{d:.0f}°\nz[{fl.latent}]={fl.latent_value(d):.2f}", fontsize=7)
    fig.suptitle(f"{LABEL[name]} (seed {seed}): sweeping z[{fl.latent}] for {fl.factor}",
                 fontsize=10)
    return _save(fig, path)


def scatter(path: Path, grid, codes: dict[str, np.ndarray], calibration: dict, factor: str,
            scores: dict[str, float]) -> Path:
    """Inferred latent vs true factor on the test grid of that factor, with the calibration
    fitted on train batches (paper Fig. 6); `scores` (model -> equivariance) in the titles."""
    truth = np.broadcast_to(grid.values, (len(grid), len(grid.values))).ravel()
    fig, axes = plt.subplots(1, len(codes), figsize=(4.2 * len(codes), 3.6), squeeze=False)
    for ax, (name, z) in zip(axes[0], codes.items()):
        fl = calibration[name][factor]
        y = z[grid.rows][..., fl.latent].ravel()
        ax.scatter(truth, y, s=6, alpha=0.6)
        xs = np.linspace(fl.lo, fl.hi, 361)
        # A circular calibration wraps once: points, not a line across the seam.
        ax.plot(xs, fl.latent_value(xs), "." if fl.circular else "-", ms=1.5, color="C3",
                lw=1.5, label="calibration (train)")
        ax.set_xlabel(f"true {factor} (degrees)")
        ax.set_ylabel(f"inferred z[{fl.latent}]")
        kind = "circular R" if fl.circular else "|r|"
        ax.set_title(f"{LABEL[name]}: {kind} = {scores[name]:.3f}", fontsize=10)
        ax.legend(fontsize=7)
    return _save(fig, path)


def rerender(path: Path, grid, models: dict[str, DCIGN], codes: dict[str, np.ndarray],
             calibration: dict, n_identities: int, n_targets: int, device: torch.device,
             seed: int) -> Path:
    """Truth / DC-IGN / baseline at target views of the grid for a few test identities, each
    from one input view by moving only the factor's latent (paper Fig. 5b). Every re-render is
    labelled with the test identity whose truth at that view it is nearest (green = its own)."""
    from evaluate.stage import novel_views, positions

    size = grid.images.shape[1]
    src = size // 2  # the middle of the grid as the input view
    targets = [int(j) for j in positions(size, n_targets)]
    pairs = [(src, j) for j in targets]
    truth = grid.images.astype(np.float32) / 255  # (n, B, C, H, W)
    gallery = truth[:, targets].reshape(len(grid), len(targets), -1)  # (n, T, P)
    n = min(n_identities, len(grid))
    fig, axes = _grid(n * (1 + len(models)), len(targets) + 1)
    for m, (name, model) in enumerate(models.items()):
        fl = calibration[name][grid.factor]
        pred = novel_views(model, grid, codes[name][grid.rows], fl, pairs, device)[:n]
        flat = pred.reshape(n, len(targets), -1)
        for r in range(n):
            row = r * (1 + len(models)) + 1 + m
            axes[row, 0].axis("off")
            axes[row, 0].text(0.5, 0.5, LABEL[name], ha="center", va="center", fontsize=7,
                              wrap=True)
            for c in range(len(targets)):
                d = ((gallery[:, c] - flat[r, c]) ** 2).sum(1)
                hit = int(np.argmin(d))
                _show(axes[row, c + 1], pred[r, c])
                axes[row, c + 1].set_xlabel(f"→ id {grid.identity[hit]}", fontsize=6,
                                            color="green" if hit == r else "red", labelpad=1)
    for r in range(n):
        row = r * (1 + len(models))
        _show(axes[row, 0], grid.images[r, src])
        axes[row, 0].set_ylabel(f"id {grid.identity[r]}", fontsize=7)
        for c, j in enumerate(targets):
            _show(axes[row, c + 1], grid.images[r, j])
    axes[0, 0].set_title(f"input\n{grid.values[src]:.0f}°", fontsize=7)
    for c, j in enumerate(targets):
        axes[0, c + 1].set_title(f"truth\n{grid.values[j]:.0f}°", fontsize=7)
    fig.suptitle(f"Re-rendering test identities at new {grid.factor} values (seed {seed}); "
                 f"under each: nearest test identity at that view", fontsize=9)
    return _save(fig, path)


def reconstructions(path: Path, images: np.ndarray, models: dict[str, DCIGN],
                    device: torch.device) -> Path:
    """Inputs (top row) and each model's reconstruction from mu."""
    fig, axes = _grid(1 + len(models), len(images))
    for c, img in enumerate(images):
        _show(axes[0, c], img)
    axes[0, 0].set_ylabel("input", fontsize=7)
    for m, (name, model) in enumerate(models.items()):
        out = decode(model, encode(model, images, device), device)
        for c in range(len(images)):
            _show(axes[1 + m, c], out[c])
        axes[1 + m, 0].set_ylabel(LABEL[name], fontsize=7)
    return _save(fig, path)


def _read_tsv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with open(path) as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    key = next(k for k in rows[0] if k not in ("step", "timestamp")) if rows else None
    if key is None:
        return np.zeros(0), np.zeros(0)
    return (np.array([float(r["step"]) for r in rows]), np.array([float(r[key]) for r in rows]))


def curves(path: Path, live_dirs: dict[str, Path]) -> Path | None:
    """Train and held-out loss per image from the dvclive logs of each model."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    drawn = False
    for i, (name, live) in enumerate(live_dirs.items()):
        for metric, style in (("train/loss", "-"), ("test/loss", "--")):
            tsv = live / "plots" / "metrics" / f"{metric}.tsv"
            if tsv.is_file():
                steps, values = _read_tsv(tsv)
                ax.plot(steps, values, style, color=f"C{i}", label=f"{LABEL[name]} {metric}")
                drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.set_xlabel("step")
    ax.set_ylabel("negative ELBO per image (nats)")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    return _save(fig, path)


def write_all(plots_dir: Path, *, dataset: str, seed: int, test: Batches, grids: dict,
              codes: dict[str, np.ndarray], models: dict[str, DCIGN], calibration: dict,
              device: torch.device, cfg: EvaluateConfig, factors: tuple[str, ...],
              live_dirs: dict[str, Path], intrinsic_kind: str,
              scores: dict[str, dict[str, float]]) -> list[Path]:
    """Every figure of the evaluate stage (one training seed's models); returns the paths.
    scores: model -> factor -> equivariance, for the scatter titles."""
    written = []
    inputs = inputs_of(test, cfg.traversal_inputs, intrinsic_kind)
    for f in factors:
        for name, model in models.items():
            written.append(traversal(plots_dir / f"traversal-{name}-{f}.png", model, name, inputs,
                                     calibration[name][f], cfg.traversal_steps, device, seed))
        written.append(scatter(plots_dir / f"scatter-{f}.png", grids[f], codes, calibration, f,
                               {n: scores[n][f] for n in models}))
        written.append(rerender(plots_dir / f"rerender-{f}.png", grids[f], models, codes,
                                calibration, cfg.plot_identities, cfg.novel_view_targets,
                                device, seed))
    written.append(reconstructions(plots_dir / "reconstructions.png",
                                   inputs_of(test, 8, intrinsic_kind), models, device))
    c = curves(plots_dir / "curves.png", live_dirs)
    if c is not None:
        written.append(c)
    return written
