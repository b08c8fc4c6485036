"""Collation, crops, seeded batch plans, normalisation and splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vocalis.errors import DataError
from vocalis.training.config import DatasetConfig
from vocalis.training.data import EpochBatchSampler, FeatureDataset, collate, make_loader
from vocalis.training.pipeline import split_rows


def _ds(lengths, crop=None):
    feats = [torch.arange(3 * t, dtype=torch.float32).reshape(3, t) + 1 for t in lengths]
    return FeatureDataset(feats, [i % 2 for i in range(len(lengths))], crop_frames=crop)


def test_collate_pads_with_zeros_and_integer_lengths():
    ds = _ds([2, 5, 3])
    b = collate([ds[0], ds[1], ds[2]])
    assert b.features.shape == (3, 3, 5)
    assert b.lengths.dtype == torch.long and b.lengths.tolist() == [2, 5, 3]
    assert torch.equal(b.features[0, :, :2], ds.features[0])
    assert (b.features[0, :, 2:] == 0).all() and (b.features[2, :, 3:] == 0).all()
    assert b.indices.tolist() == [0, 1, 2] and b.targets.tolist() == [0, 1, 0]


def test_random_crop_is_seeded_and_inside_the_utterance():
    ds = _ds([10, 3], crop=4)
    a, b = ds[(0, 123)]["features"], ds[(0, 123)]["features"]
    assert torch.equal(a, b) and a.shape == (3, 4)
    start = int(a[0, 0]) - 1
    assert torch.equal(a, ds.features[0][:, start : start + 4])
    assert ds[(1, 5)]["features"].shape == (3, 3)  # shorter than the crop: kept whole
    assert ds[0]["features"].shape == (3, 10)  # no seed: the whole utterance
    starts = {int(ds[(0, s)]["features"][0, 0]) for s in range(40)}
    assert len(starts) > 3


def test_batch_plan_depends_only_on_seed_and_epoch():
    frames = list(range(5, 45))
    s1 = EpochBatchSampler(frames, 4, seed=3, crop=True)
    s2 = EpochBatchSampler(frames, 4, seed=3, crop=True)
    s1.set_epoch(2)
    s2.set_epoch(2)
    assert s1.plan() == s2.plan()
    s2.set_epoch(3)
    assert s1.plan() != s2.plan()
    items = sorted(i for b in s1.plan() for i, _ in b)
    assert items == list(range(40))  # every item once per epoch
    s1.set_epoch(2, skip_batches=3)
    assert list(s1) == [[(i, c) for i, c in b] for b in s1.plan()[3:]]
    assert len(s1) == len(s1.plan()) - 3


def test_bucketing_reduces_padding():
    rng = np.random.default_rng(0)
    frames = rng.integers(10, 400, size=400).tolist()

    def padding(bucketing):
        s = EpochBatchSampler(frames, 16, seed=0, bucketing=bucketing)
        return sum(
            max(frames[i] for i, _ in b) * len(b) - sum(frames[i] for i, _ in b) for b in s.plan()
        )

    assert padding(True) < 0.25 * padding(False)


def test_ddp_shards_are_disjoint_and_equal_length():
    frames = list(range(1, 23))
    plans = []
    for rank in range(2):
        s = EpochBatchSampler(frames, 4, seed=0, rank=rank, world_size=2)
        s.set_epoch(1)
        plans.append(s.plan())
    assert len(plans[0]) == len(plans[1])
    seen = [i for p in plans for b in p for i, _ in b]
    assert set(seen) == set(range(22))


def test_single_item_batch_is_merged():
    s = EpochBatchSampler([5] * 9, 4, seed=0)
    assert sorted(len(b) for b in s.plan()) == [4, 5]


def test_loader_with_workers_matches_in_process():
    ds = _ds([4, 7, 2, 9, 5, 6], crop=3)
    s = EpochBatchSampler([ds.num_frames(i) for i in range(6)], 2, seed=1, crop=True)
    a = [b.features for b in make_loader(ds, s)]
    b = [b.features for b in make_loader(ds, s, num_workers=1)]
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_dataset_rejects_bad_input():
    with pytest.raises(DataError, match="empty"):
        FeatureDataset([], [])
    with pytest.raises(DataError, match="different dimensions"):
        FeatureDataset([torch.zeros(3, 4), torch.zeros(4, 4)], [0, 1])


def _manifest(n_speakers=5, per=4, split=None):
    from vocalis.data import Manifest

    rows = []
    for s in range(n_speakers):
        for k in range(per):
            row = {"path": f"/x/{s}_{k}.wav", "label": "ab"[k % 2], "speaker": f"s{s}"}
            if split:
                row["split"] = split(s, k)
            rows.append(row)
    return Manifest(rows)


def test_speaker_split_holds_out_whole_speakers():
    m = _manifest()
    tr, va, te = split_rows(m, DatasetConfig(val_fraction=0.4), seed=0)
    spk = m.column("speaker")
    assert {spk[i] for i in tr}.isdisjoint({spk[i] for i in va})
    assert len({spk[i] for i in va}) == 2 and len(te) == 0
    assert sorted([*tr, *va]) == list(range(20))
    _, va2, _ = split_rows(m, DatasetConfig(val_fraction=0.4), seed=0)
    assert np.array_equal(va, va2)


def test_split_column_and_given_indices():
    m = _manifest(split=lambda s, k: ["train", "dev", "test"][min(s, 2)] if s < 3 else "train")
    tr, va, te = split_rows(m, DatasetConfig(val_protocol="split_column"), seed=0)
    assert len(va) == 4 and len(te) == 4 and len(tr) == 12
    tr, va, te = split_rows(m, DatasetConfig(), seed=0, train=range(0, 16), test=range(16, 20))
    assert len(te) == 4 and not set(va) & set(te) and set(tr) | set(va) == set(range(16))


def test_split_errors_name_the_fix():
    from vocalis.data import Manifest

    m = Manifest([{"path": f"/x/{k}.wav", "label": "ab"[k % 2]} for k in range(6)])
    with pytest.raises(DataError, match=r"no 'speaker' column.*val_protocol=stratified"):
        split_rows(m, DatasetConfig(), seed=0)
    with pytest.raises(DataError, match="training split is empty"):
        split_rows(m, DatasetConfig(), seed=0, train=[], val=[0, 1])
