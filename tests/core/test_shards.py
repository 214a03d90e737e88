from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from core.shards import (
    SCHEMA_VERSION,
    ShardArrays,
    ShardError,
    is_current,
    list_shards,
    read_shard,
    shard_path,
    validate,
    write_shard,
)
from core.vocab import FACTORS

KINDS = ("azimuth", "elevation", "light_azimuth", "intrinsic")


def _arrays(n=3, b=4, c=1, s=8, seed=0) -> ShardArrays:
    rng = np.random.default_rng(seed)
    return ShardArrays(
        images=rng.integers(0, 256, (n, b, c, s, s), dtype=np.uint8),
        factors=rng.uniform(-90, 90, (n, b, len(FACTORS))).astype(np.float32),
        identity=rng.integers(0, 10, (n, b)),
        kind=np.arange(n, dtype=np.uint8) % len(KINDS),
    )


def _attrs(fp="abc", s=8, b=4, c=1) -> dict:
    return {"dataset": "faces", "split": "train", "renderer": "test", "image_size": s,
            "channels": c, "batch_size": b, "seed": 0, "latent_factors": list(FACTORS),
            "factor_ranges": {f: [-90.0, 90.0] for f in FACTORS},
            "params": {"x": 1}, "software": {"numpy": np.__version__}, "fingerprint": fp,
            "shard_index": 0, "first_batch": 0}


def _write(path, arrays=None, **kw):
    write_shard(path, arrays or _arrays(), factor_names=FACTORS, kind_names=KINDS,
                attrs=_attrs(**kw))


def test_roundtrip_matches_the_schema(tmp_path):
    path = shard_path(tmp_path, 7)
    a = _arrays()
    _write(path, a)
    assert path.name == "shard-00007.h5" and list_shards(tmp_path) == [path]
    b, info = read_shard(path)
    for name in ("images", "factors", "identity", "kind"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert info.factor_names == FACTORS and info.kind_names == KINDS
    assert info.latent_factors == FACTORS and info.attrs["params"] == {"x": 1}
    with h5py.File(path) as f:
        assert f["images"].chunks == (1, 4, 1, 8, 8)  # one minibatch per chunk
        assert f["images"].compression == "gzip"
        assert f["factors"].attrs["units"] == "degrees"
        assert f["identity"].dtype == np.int64
        assert f.attrs["schema_version"] == SCHEMA_VERSION


def test_failed_write_leaves_nothing(tmp_path):
    bad = _arrays()
    bad = ShardArrays(bad.images.astype(np.float32), bad.factors, bad.identity, bad.kind)
    with pytest.raises(ValueError, match="uint8"):
        _write(tmp_path / "shard-00000.h5", bad)
    assert list(tmp_path.iterdir()) == []


def test_is_current_needs_a_valid_file_and_the_same_fingerprint(tmp_path):
    path = shard_path(tmp_path, 0)
    assert not is_current(path, "abc")
    _write(path, fp="abc")
    assert is_current(path, "abc")
    assert not is_current(path, "other")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # a shard cut short
    assert not is_current(path, "abc")


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda f: f.__delitem__("kind"), "missing dataset 'kind'"),
        (lambda f: f.attrs.__delitem__("fingerprint"), "missing root attributes"),
        (lambda f: f.attrs.__setitem__("schema_version", 99), "schema_version 99"),
        (lambda f: f.attrs.__setitem__("image_size", 9), "disagrees with its attributes"),
        (lambda f: f["kind"].__setitem__(0, 9), "kind values outside"),
    ],
)
def test_validation_names_the_file_and_the_problem(tmp_path, mutate, words):
    path = shard_path(tmp_path, 0)
    _write(path)
    with h5py.File(path, "a") as f:
        mutate(f)
    with pytest.raises(ShardError) as info:
        validate(path)
    assert str(path) in str(info.value) and words in str(info.value)


def test_not_hdf5_and_missing(tmp_path):
    p = tmp_path / "shard-00000.h5"
    with pytest.raises(ShardError, match="no such shard"):
        validate(p)
    p.write_text("hello")
    with pytest.raises(ShardError, match="not a readable HDF5"):
        validate(p)


def test_kind_names_are_json(tmp_path):
    path = shard_path(tmp_path, 0)
    _write(path)
    with h5py.File(path) as f:
        assert json.loads(f["kind"].attrs["names"]) == list(KINDS)
