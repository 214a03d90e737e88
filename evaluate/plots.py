"""Figures for people: traversals (paper Figs. 4, 5a, 7), inferred vs true (Fig. 6),
DC-IGN vs baseline re-rendering (Fig. 5b), reconstructions, training curves."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
import numpy as np
import torch

from evaluate.data import Batches, decode, encode
from pipeline.atomic import atomic_path
from pipeline.params import EvaluateConfig
from render.views import View
from train.model import DCIGN

LABEL = {"dcign": "DC-IGN", "baseline": "baseline (plain VAE)"}


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
              device: torch.device) -> Path:
    """Rows = inputs, first column the input, then the factor's latent swept over the
    calibrated range with every other latent kept (paper Figs. 4, 5a, 7)."""
    degrees = np.linspace(fl.lo, fl.hi, steps)
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
    fig.suptitle(f"{LABEL[name]}: sweeping z[{fl.latent}] for {fl.factor}", fontsize=10)
    return _save(fig, path)


def scatter(path: Path, test: Batches, codes: dict[str, np.ndarray], calibration: dict,
            factor: str) -> Path:
    """Inferred latent vs true factor on test batches of that kind, with the calibration line
    fitted on train batches (paper Fig. 6)."""
    mask = np.array([k == factor for k in test.kinds])
    truth = test.factor(factor)[mask].ravel()
    fig, axes = plt.subplots(1, len(codes), figsize=(4.2 * len(codes), 3.6), squeeze=False)
    for ax, (name, z) in zip(axes[0], codes.items()):
        fl = calibration[name][factor]
        y = z[mask][..., fl.latent].ravel()
        r = np.corrcoef(truth, y)[0, 1] if np.std(y) > 0 else 0.0
        ax.scatter(truth, y, s=6, alpha=0.6)
        xs = np.array([fl.lo, fl.hi])
        ax.plot(xs, fl.latent_value(xs), color="C3", lw=1.5, label="calibration (train)")
        ax.set_xlabel(f"true {factor} (degrees)")
        ax.set_ylabel(f"inferred z[{fl.latent}]")
        ax.set_title(f"{LABEL[name]}: |r| = {abs(r):.3f}", fontsize=10)
        ax.legend(fontsize=7)
    return _save(fig, path)


def rerender(path: Path, test: Batches, models: dict[str, DCIGN], calibration: dict,
             factor: str, truth: Callable[[int, View], np.ndarray], n_inputs: int,
             targets: np.ndarray, device: torch.device) -> Path:
    """For a few test inputs: ground truth at target angles, then each model's re-rendering
    from the single input by moving only the factor's latent (paper Fig. 5b)."""
    sub = test.of_kind(factor)
    n = min(n_inputs, len(sub))
    rows = n * (1 + len(models))
    fig, axes = _grid(rows, len(targets) + 1)
    for i in range(n):
        img, ident = sub.images[i, 0], int(sub.identity[i, 0])
        view = View(**dict(zip(sub.factor_names, map(float, sub.factors[i, 0]))))
        base = i * (1 + len(models))
        _show(axes[base, 0], img)
        axes[base, 0].set_ylabel("truth", fontsize=7)
        for c, t in enumerate(targets):
            _show(axes[base, c + 1], truth(ident, View(**{**view.__dict__, factor: float(t)})))
        for m, (name, model) in enumerate(models.items()):
            fl = calibration[name][factor]
            code = encode(model, img[None], device)[0]
            sweep = np.repeat(code[None], len(targets), axis=0)
            sweep[:, fl.latent] = fl.latent_value(targets)
            out = decode(model, sweep, device)
            axes[base + 1 + m, 0].axis("off")
            axes[base + 1 + m, 0].text(0.5, 0.5, LABEL[name], ha="center", va="center",
                                       fontsize=7, wrap=True)
            for c in range(len(targets)):
                _show(axes[base + 1 + m, c + 1], out[c])
    for c, t in enumerate(targets):
        axes[0, c + 1].set_title(f"{t:.0f}°", fontsize=7)
    axes[0, 0].set_title("input", fontsize=8)
    fig.suptitle(f"Re-rendering unseen test identities at new {factor} values (columns)",
                 fontsize=10)
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


def write_all(plots_dir: Path, *, dataset: str, test: Batches, codes: dict[str, np.ndarray],
              models: dict[str, DCIGN], calibration: dict, truth, device: torch.device,
              cfg: EvaluateConfig, factors: tuple[str, ...], live_dirs: dict[str, Path],
              intrinsic_kind: str) -> list[Path]:
    """Every figure of the evaluate stage; returns the paths written."""
    written = []
    inputs = inputs_of(test, cfg.traversal_inputs, intrinsic_kind)
    for f in factors:
        for name, model in models.items():
            written.append(traversal(plots_dir / f"traversal-{name}-{f}.png", model, name, inputs,
                                     calibration[name][f], cfg.traversal_steps, device))
        written.append(scatter(plots_dir / f"scatter-{f}.png", test, codes, calibration, f))
        lo, hi = calibration["dcign"][f].lo, calibration["dcign"][f].hi
        written.append(rerender(plots_dir / f"rerender-{f}.png", test, models, calibration, f,
                                truth, min(3, cfg.traversal_inputs),
                                np.linspace(lo, hi, cfg.novel_view_targets), device))
    written.append(reconstructions(plots_dir / "reconstructions.png",
                                   inputs_of(test, 8, intrinsic_kind), models, device))
    c = curves(plots_dir / "curves.png", live_dirs)
    if c is not None:
        written.append(c)
    return written
