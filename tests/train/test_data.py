"""The training stream: a pure function of (seed, item), following the kind mix, the same through
loader workers, laid out across DDP ranks, with a bounded number of open shard files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.shards import ShardReader, SplitIndex
from train.data import MinibatchStream, StepItems, kind_weights, make_loader


def test_stream_is_a_pure_function_of_seed_and_item(faces) -> None:
    _, shards = faces
    index = SplitIndex.scan(shards / "train")
    assert len(index.files) == 3 and sum(index.count(k) for k in index.kinds) == 7
    a, b = MinibatchStream(index, seed=3), MinibatchStream(index, seed=3)
    items = [5, 0, 1000, 7, 5]
    assert [a.locate(i) for i in items] == [b.locate(i) for i in reversed(items)][::-1]
    for i in items:
        x, y = a[i], b[i]
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
        assert x["images"].dtype == torch.uint8 and x["images"].shape == (4, 1, 38, 38)
        assert x["factors"].shape == (4, 3) and int(x["item"]) == i
    other = MinibatchStream(index, seed=4)
    assert [a.locate(i) for i in range(50)] != [other.locate(i) for i in range(50)]
    a.close()
    b.close()


def test_stream_follows_the_kind_mix(faces) -> None:
    _, shards = faces
    index = SplitIndex.scan(shards / "train")
    only = MinibatchStream(index, seed=0, mix={"light_azimuth": 1.0})
    assert {index.kinds[only.locate(i)[0]] for i in range(40)} == {"light_azimuth"}
    # Default: in proportion to the stored counts (2 : 1 : 1 : 3).
    np.testing.assert_allclose(kind_weights(index, None), np.array([2, 1, 1, 3]) / 7)
    with pytest.raises(ValueError, match=r"'train.kind_mix.faces': kinds \['pose'\] are not"):
        kind_weights(index, {"pose": 1.0})


def test_step_items_layout_across_ranks() -> None:
    world, group = 3, 2
    per_rank = [list(StepItems(4, 7, group, rank=r, world=world)) for r in range(world)]
    for r, steps in enumerate(per_rank):
        assert steps == [[(s * world + r) * group + g for g in range(group)] for s in (4, 5, 6)]
    # Step s of W ranks x G covers exactly step s of one process x W*G, each item once.
    single = list(StepItems(4, 7, group * world))
    for i, items in enumerate(single):
        assert sorted(x for r in range(world) for x in per_rank[r][i]) == items
    assert len(StepItems(4, 7, 1)) == 3 and list(StepItems(5, 5, 2)) == []


def test_loader_workers_give_the_same_batches(faces) -> None:
    _, shards = faces
    index = SplitIndex.scan(shards / "train")
    ds = MinibatchStream(index, seed=1)
    ds[0]  # the parent holds open handles before the workers fork
    runs = []
    for workers in (0, 2):
        loader = make_loader(ds, start=3, stop=9, group=2, rank=1, world=2, workers=workers)
        runs.append(list(loader))
    assert len(runs[0]) == len(runs[1]) == 6
    for a, b in zip(*runs):
        assert a["images"].shape == (2, 4, 1, 38, 38) and a["kind"].shape == (2,)
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert runs[0][0]["item"].tolist() == [14, 15]  # step 3, rank 1 of 2: (3*2 + 1)*2 + g
    ds.close()


def test_stream_keeps_a_bounded_number_of_files_open(faces) -> None:
    _, shards = faces
    index = SplitIndex.scan(shards / "train")
    ds = MinibatchStream(index, seed=0)
    ds.reader = ShardReader(index, max_open=1)
    want = MinibatchStream(index, seed=0)
    for fi in (0, 1, 2, 0, 2):
        assert np.array_equal(ds.read(fi, 0)["images"], want.read(fi, 0)["images"])
        assert ds.reader._files.keys() == [fi]
    ds.close()
    want.close()
