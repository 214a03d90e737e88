"""The project's vocabulary, in one place: factors, batch kinds, splits, datasets, models, which
factors are circular, and where a trained model lives. Every stage names things from here."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

import numpy as np

FACTORS = ("azimuth", "elevation", "light_azimuth")  # canonical order of the stored factors
INTRINSIC = "intrinsic"  # the batch kind (and latent group) of identity
VIEW_FACTORS = ("azimuth", "elevation")  # the camera's factors (light_azimuth is the light's)
SPLITS = ("train", "test")
# Splits whose extrinsic minibatches lie on one shared grid of their factor's values (the other
# factors at one shared setting), so every identity is seen at every grid view: the evaluation's
# novel-view ground truth is in the shards themselves.
GRID_SPLITS = ("test",)
DATASETS = ("faces", "chairs")
MODELS = ("dcign", "baseline")  # clamped DC-IGN; the same network trained as a plain VAE
# Weight-init schemes (train.init; train/model.py init_weights says what each draws).
InitScheme = Literal["torch", "kaiming"]
INITS: tuple[str, ...] = get_args(InitScheme)
# Feature normalisation inside the network (train.norm; train/model.py Encoder and Decoder):
# none (the paper) | group (GroupNorm, Wu & He 2018, after every inner conv).
NormKind = Literal["none", "group"]
NORMS: tuple[str, ...] = get_args(NormKind)
# Learning-rate schedules (train.lr_schedule; train/fit.py lr_at says what each does).
LrSchedule = Literal["constant", "cosine", "cooldown"]
LR_SCHEDULES: tuple[str, ...] = get_args(LrSchedule)
MODEL_LABELS = {"dcign": "DC-IGN", "baseline": "baseline (plain VAE)"}  # in plots and tables
# Elevation beyond +-89 degrees puts the camera on the vertical axis, where "up" is undefined.
FACTOR_LIMITS = {"azimuth": (-360.0, 360.0), "elevation": (-89.0, 89.0),
                 "light_azimuth": (-360.0, 360.0)}


def is_circular(lo_hi: tuple[float, float]) -> bool:
    """A factor whose range spans a full turn is an angle on a circle: lo and hi are one value."""
    lo, hi = lo_hi
    return hi - lo >= 360.0


def grid_values(lo_hi: tuple[float, float], n: int) -> np.ndarray:
    """n evenly spaced values of a factor (degrees, float64): both ends of a linear range, or
    a circular one's start and n - 1 more steps of 360/n (its end is its start again)."""
    lo, hi = lo_hi
    if is_circular(lo_hi):
        return lo + (hi - lo) * np.arange(n) / n
    return np.linspace(lo, hi, n)


def model_dir(root: str | Path, dataset: str, model: str, seed: int) -> Path:
    """Where one trained model lives: <root>/<dataset>-<model>/seed-<seed> (dvc.yaml agrees)."""
    return Path(root) / f"{dataset}-{model}" / f"seed-{seed}"
