"""The hardware: which device to run on, and whether bf16 autocast pays there. Torch only, so
the GPU check (bench/gpu.py, on a machine with only torch and numpy) uses it too."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from pathlib import Path

import torch


def choose_device(pref: str = "auto") -> torch.device:
    """CUDA, then Apple MPS, then CPU (or exactly what params ask for)."""
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if pref == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("params key 'train.device' is 'cuda' but no CUDA device is available")
    if pref == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device(pref)


def conv_layout(device: torch.device | str) -> torch.memory_format:
    """The memory format for a model's convolutions on `device`: channels-last on CUDA (tensor
    cores) and on a CPU (oneDNN's blocked kernels; on a 2-core Xeon 1.57x the training step of
    the default model, 1.9x the paper-size one, 1.3-1.5x evaluation's decoding and 2.5x its
    encoding: bench/RESULTS.md "cpu", "layout", "evaluate layout"); contiguous elsewhere (MPS
    gains nothing from it)."""
    kind = torch.device(device).type
    return torch.channels_last if kind in ("cuda", "cpu") else torch.contiguous_format


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic (avx512_bf16 or AMX), where PyTorch's CPU bf16
    autocast is faster than fp32 (an AMD EPYC with avx512_bf16: 1.44x the channels-last fp32
    step at 64 px, 1.9x at 150 px; issue 13). Without it bf16 is emulated and slower."""
    try:
        return bf16_in_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:
        return False


def bf16_in_cpuinfo(text: str) -> bool:
    """Whether a /proc/cpuinfo text's first ``flags`` line lists avx512_bf16 or amx_bf16."""
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines()
                  if ln.startswith("flags")), [])
    return any(f in flags for f in ("avx512_bf16", "amx_bf16"))


def bf16_autocast(device: torch.device,
                  enabled: bool = True) -> Callable[[], contextlib.AbstractContextManager]:
    """A factory of the autocast context for `device`: bf16 where the hardware has bf16
    arithmetic (CUDA; a CPU with avx512_bf16 or AMX), else fp32 (emulated bf16 would only be
    slower). enabled=False (params train.amp: false) is always fp32."""
    if enabled and (device.type == "cuda" or (device.type == "cpu" and cpu_has_bf16())):
        return lambda: torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext
