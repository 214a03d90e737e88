"""Seed streams. Every random draw in the project comes from a generator made here, keyed by
what it is for, never by time, PID or global state, so any image can be reproduced alone."""

from __future__ import annotations

import zlib

import numpy as np


def _key(name: str) -> int:
    # crc32 is stable across processes and Python versions (unlike hash()).
    return zlib.crc32(name.encode("utf-8"))


def stream(seed: int, *keys: str | int) -> np.random.Generator:
    """A generator for (seed, key1, key2, ...); string keys are hashed stably."""
    words = [int(seed)] + [_key(k) if isinstance(k, str) else int(k) for k in keys]
    if any(w < 0 for w in words):
        raise ValueError(f"seed stream keys must be non-negative, got {words}")
    return np.random.default_rng(np.random.SeedSequence(words))


def identity_rng(seed: int, dataset: str, split: str, identity: int) -> np.random.Generator:
    """The stream that draws one identity; train and test draws never share a stream."""
    return stream(seed, "identity", dataset, split, identity)
