"""Checkpoints: everything later stages need to use a model, and everything a resume needs.

A checkpoint holds the model weights (and, with train.ema, their moving average: the weights that
are evaluated) and config, the latent assignment, the params that trained
it, the optimiser state, the step, and the RNG states. `load_model` rebuilds the model from the
checkpoint alone; a checkpoint whose weights do not fit its recorded architecture (or an
architecture a caller insists on) fails with a message saying what differs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path
from typing import Any

import torch

from core.atomic import write_bytes
from core.device import conv_layout
from train.clamp import LatentAssignment
from train.model import DCIGN, ModelConfig

FORMAT = 1


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable, or does not fit the model asked for."""


def rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: str | Path, *, model: torch.nn.Module, cfg: ModelConfig,
         assignment: LatentAssignment, model_kind: str, dataset: str, params: dict,
         step: int, optimizer: torch.optim.Optimizer | None = None,
         data: dict[str, str] | None = None, extra: dict[str, Any] | None = None,
         ema: torch.nn.Module | None = None) -> Path:
    """Write a checkpoint atomically. data: the fingerprints of the shards it was trained on
    ({split: SplitIndex.fingerprint}), so other data is not mistaken for its own. ema: the
    weights' moving average, which `load_model` then returns (a resume reads both)."""
    payload = {
        "format": FORMAT,
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "model_config": dataclasses.asdict(cfg),
        "assignment": assignment.to_dict(),
        "model_kind": model_kind,
        "dataset": dataset,
        "params": params,
        "step": step,
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "rng": rng_state(),
        "data": data,
        "extra": extra or {},
    }
    if ema is not None:  # absent, not None, without it: train.ema 0 leaves the file as it was
        payload["ema_state"] = {k: v.detach().cpu() for k, v in ema.state_dict().items()}
    # Serialised in memory, then written with plain file I/O: a full disk is one error naming
    # the file (torch's own writer reports "enforce fail at inline_container.cc").
    buf = io.BytesIO()
    torch.save(payload, buf)
    path = Path(path)
    write_bytes(path, buf.getvalue())
    return path


def read(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict; raises CheckpointError for a missing or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint (run `dcign train` first)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises several types for a damaged file
        raise CheckpointError(f"{path}: not a readable checkpoint ({e})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a dcign checkpoint of format {FORMAT}")
    return ckpt


def model_config(ckpt: dict[str, Any]) -> ModelConfig:
    d = dict(ckpt["model_config"])
    for k in ("enc_channels", "dec_channels"):
        d[k] = tuple(d[k])
    return ModelConfig(**d)


def load_model(path: str | Path, expect: ModelConfig | None = None,
               device: torch.device | str = "cpu") -> tuple[DCIGN, dict[str, Any]]:
    """Rebuild the model a checkpoint describes, in eval mode, in `device`'s convolution layout
    (core.device.conv_layout, as in training); returns (model, checkpoint). The weights are the
    moving average where training kept one (train.ema), else the trained weights."""
    ckpt = read(path)
    cfg = model_config(ckpt)
    if expect is not None and expect != cfg:
        diff = {f.name: (getattr(cfg, f.name), getattr(expect, f.name))
                for f in dataclasses.fields(cfg) if getattr(cfg, f.name) != getattr(expect, f.name)}
        raise CheckpointError(f"{path}: architecture differs from the one asked for "
                              f"(checkpoint vs expected): {diff}")
    model = DCIGN(cfg)
    try:
        model.load_state_dict(ckpt.get("ema_state", ckpt["model_state"]))
    except RuntimeError as e:
        raise CheckpointError(f"{path}: weights do not fit the architecture {cfg}: {e}") from None
    return model.to(device).to(memory_format=conv_layout(device)).eval(), ckpt


def digest(path: str | Path) -> str:
    """A short content hash of a checkpoint file (tells a retrained model from the old one)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def assignment_of(ckpt: dict[str, Any]) -> LatentAssignment:
    return LatentAssignment.from_dict(ckpt["assignment"])
