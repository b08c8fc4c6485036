"""Splitters: speaker independence, coverage, reproducibility, class balance."""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pytest

from vocalis.data.manifest import Manifest
from vocalis.data.splits import (
    SPLITTERS,
    GroupKFold,
    LeaveOneSpeakerOut,
    SpeakerDependentWarning,
    SpeakerHoldout,
    StratifiedGroupKFold,
    StratifiedHoldout,
    stratified_val_split,
)
from vocalis.errors import DataError


def _corpus(n_speakers=8, per=12, seed=0):
    rng = np.random.default_rng(seed)
    speakers, labels, genders = [], [], []
    for s in range(n_speakers):
        k = per + int(rng.integers(0, 6))
        speakers += [f"s{s:02d}"] * k
        labels += rng.choice(["a", "b", "c"], size=k, p=[0.5, 0.3, 0.2]).tolist()
        genders += ["female" if s % 2 else "male"] * k
    return np.array(speakers), np.array(labels), np.array(genders)


def _manifest(speakers, labels, genders=None):
    rows = []
    for i, (s, y) in enumerate(zip(speakers, labels, strict=True)):
        row = {"path": f"/w/{i}.wav", "label": y, "speaker": s}
        if genders is not None:
            row["gender"] = genders[i]
        rows.append(row)
    return Manifest(rows)


def test_loso_matches_sklearn_and_tests_each_sample_once():
    from sklearn.model_selection import LeaveOneGroupOut

    spk, y, _ = _corpus()
    ours = list(LeaveOneSpeakerOut().split(np.zeros(len(spk)), y, spk))
    ref = list(LeaveOneGroupOut().split(np.zeros(len(spk)), y, spk))
    assert len(ours) == len(ref) == 8
    for (a, b), (c, d) in zip(ours, ref, strict=True):
        assert np.array_equal(a, c) and np.array_equal(b, d)
    tested = np.concatenate([te for _, te in ours])
    assert np.array_equal(np.sort(tested), np.arange(len(spk)))
    for tr, te in ours:
        assert not set(spk[tr]) & set(spk[te]) and len(set(spk[te])) == 1


def test_loso_folds_name_the_held_out_speaker():
    spk, y, _ = _corpus(4)
    m = _manifest(spk, y)
    folds = list(LeaveOneSpeakerOut().folds(m))
    assert [f.name for f in folds] == ["s00", "s01", "s02", "s03"]
    assert all(f.test_speakers == (f.name,) for f in folds)
    assert LeaveOneSpeakerOut().get_n_splits(m) == 4
    assert LeaveOneSpeakerOut().speakers(m) == ["s00", "s01", "s02", "s03"]


def test_loso_refuses_without_speakers():
    m = Manifest([{"path": "/a.wav", "label": "x"}, {"path": "/b.wav", "label": "y"}])
    with pytest.raises(DataError, match="no 'speaker' column; LOSO needs one"):
        list(LeaveOneSpeakerOut().split(m))
    with pytest.raises(DataError, match="needs speaker ids"):
        list(LeaveOneSpeakerOut().split(np.zeros(3)))
    with pytest.raises(DataError, match="at least 2 speakers"):
        list(LeaveOneSpeakerOut().split(np.zeros(2), groups=["a", "a"]))


def test_group_kfold_matches_sklearn_and_shuffles_reproducibly():
    from sklearn.model_selection import GroupKFold as SkGroupKFold

    spk, y, _ = _corpus(10)
    X = np.zeros(len(spk))
    for (_a, b), (_c, d) in zip(
        GroupKFold(3).split(X, y, spk), SkGroupKFold(3).split(X, y, spk), strict=True
    ):
        assert np.array_equal(np.sort(b), np.sort(d))
    runs = [[te.tolist() for _, te in GroupKFold(3, seed=7).split(X, y, spk)] for _ in range(2)]
    assert runs[0] == runs[1]
    seen = np.zeros(len(spk), dtype=int)
    for tr, te in GroupKFold(3, seed=7).split(X, y, spk):
        assert not set(spk[tr]) & set(spk[te])
        seen[te] += 1
    assert (seen == 1).all()
    with pytest.raises(DataError, match="only 10 speakers"):
        list(GroupKFold(11).split(X, y, spk))


def test_stratified_group_kfold_is_speaker_independent():
    spk, y, _ = _corpus(10)
    m = _manifest(spk, y)
    folds = list(StratifiedGroupKFold(5, seed=1).folds(m))
    assert len(folds) == 5
    for f in folds:
        assert not set(spk[f.train]) & set(spk[f.test])


def test_stratified_holdout_warns_and_keeps_proportions():
    _spk, y, _ = _corpus(6, per=40)
    with pytest.warns(SpeakerDependentWarning, match="speaker-dependent"):
        tr, te = next(StratifiedHoldout(0.25, seed=3).split(np.zeros(len(y)), y))
    assert len(te) == round(0.25 * len(y)) and len(set(tr) & set(te)) == 0
    full, test = Counter(y), Counter(y[te])
    for c in full:
        assert abs(test[c] / len(te) - full[c] / len(y)) < 0.02
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SpeakerDependentWarning)
        again = next(StratifiedHoldout(0.25, seed=3).split(np.zeros(len(y)), y))[1]
        other = next(StratifiedHoldout(0.25, seed=4).split(np.zeros(len(y)), y))[1]
    assert np.array_equal(te, again) and not np.array_equal(te, other)


def test_speaker_holdout_whole_speakers_balanced_by_gender():
    spk, y, g = _corpus(10)
    m = _manifest(spk, y, g)
    sh = SpeakerHoldout(0.2, seed=5)
    held = sh.held_out(m)
    assert len(held) == 2
    gender_of = dict(zip(spk, g, strict=True))
    assert sorted(gender_of[s] for s in held) == ["female", "male"]
    tr, va = next(sh.split(m))
    assert set(spk[va]) == set(held) and not set(spk[tr]) & set(held)
    assert len(tr) + len(va) == len(spk)
    assert SpeakerHoldout(0.2, seed=5).held_out(m) == held
    choices = {tuple(SpeakerHoldout(0.2, seed=s).held_out(m)) for s in range(10)}
    assert len(choices) > 1
    # a Generator works too, and the result is reproducible from its seed
    a = SpeakerHoldout(0.3, seed=np.random.default_rng(1)).held_out(spk.tolist(), spk)
    b = SpeakerHoldout(0.3, seed=np.random.default_rng(1)).held_out(spk.tolist(), spk)
    assert a == b and len(a) == 3


def test_stratified_val_split_proportions_and_reproducibility():
    rng = np.random.default_rng(0)
    labels = rng.choice(["a", "b", "c"], size=300, p=[0.6, 0.3, 0.1])
    idx = np.arange(1000, 1300)
    tr, va = stratified_val_split(idx, labels, 0.2, seed=11)
    assert len(va) == 60 and len(tr) == 240
    assert np.array_equal(np.sort(np.concatenate([tr, va])), idx)
    full, val = Counter(labels), Counter(labels[va - 1000])
    for c in full:
        assert abs(val[c] - 0.2 * full[c]) <= 1
    _tr2, va2 = stratified_val_split(idx, labels, 0.2, seed=11)
    assert np.array_equal(va, va2)
    # full-length labels indexed by a subset of indices
    sub = np.array([3, 5, 7, 9, 11, 13])
    all_labels = np.array(["x", "y"] * 10)
    _t, v = stratified_val_split(sub, all_labels, 0.34, seed=0)
    assert len(v) == 2 and sorted(all_labels[v].tolist()) == ["y", "y"][: len(v)]


def test_stratified_val_split_keeps_every_class_in_train():
    labels = ["a", "a", "b", "c", "c", "c"]
    tr, va = stratified_val_split(range(6), labels, 0.5, seed=0)
    assert {labels[i] for i in tr} == {"a", "b", "c"}
    assert len(va) == 3
    with pytest.raises(DataError, match="single row"):
        stratified_val_split(range(2), ["a", "b"], 0.5)
    with pytest.raises(DataError, match="expected an int"):
        stratified_val_split(range(4), ["a"] * 4, 0.5, seed="x")


def test_registry_names():
    assert SPLITTERS.get("loso") is LeaveOneSpeakerOut
    assert "speaker_holdout" in SPLITTERS.names()


@pytest.mark.parametrize("n_speakers", [3, 10, 24])
def test_train_val_test_split_puts_whole_speakers_in_each_part(n_speakers):
    from vocalis.data.splits import TrainValTestSplit

    speakers, labels, genders = _corpus(n_speakers)
    split = TrainValTestSplit(train=0.7, val=0.15, test=0.15)
    parts = split.parts(_manifest(speakers, labels, genders), seed=3)
    idx = np.concatenate([parts.train, parts.val, parts.test])
    assert sorted(idx.tolist()) == list(range(len(speakers)))  # every row once
    spk = {k: set(speakers[getattr(parts, k)].tolist()) for k in ("train", "val", "test")}
    assert not (spk["train"] & spk["val"]) and not (spk["train"] & spk["test"])
    assert not (spk["val"] & spk["test"])
    assert {k: sorted(v) for k, v in spk.items()} == parts.speakers
    counts = split.speaker_counts(n_speakers)
    assert {k: len(v) for k, v in spk.items()} == counts
    assert min(counts.values()) >= 1 and abs(counts["train"] - 0.7 * n_speakers) < 1.5
    if n_speakers >= 10:  # two or more test speakers mix the genders
        assert len(set(genders[parts.test].tolist())) == 2
    again = split.parts(_manifest(speakers, labels, genders), seed=3)
    assert again.speakers == parts.speakers
    other = split.parts(_manifest(speakers, labels, genders), seed=4)
    assert n_speakers == 3 or other.speakers != parts.speakers


def test_train_val_test_split_by_utterance_warns_and_stratifies():
    from vocalis.data.splits import TrainValTestSplit

    speakers, labels, _ = _corpus(6, per=40)
    with pytest.warns(SpeakerDependentWarning):
        parts = TrainValTestSplit(by="utterance").parts(
            np.arange(len(labels)), y=labels, groups=speakers, seed=0
        )
    n = len(labels)
    assert abs(len(parts.test) - 0.15 * n) <= 1 and abs(len(parts.val) - 0.15 * n) <= 2
    for part in (parts.val, parts.test):
        share = Counter(labels[part].tolist())["a"] / len(part)
        assert abs(share - Counter(labels.tolist())["a"] / n) < 0.08


def test_train_val_test_split_refuses_bad_shares_and_too_few_speakers():
    from vocalis.data.splits import TrainValTestSplit
    from vocalis.errors import ConfigError

    with pytest.raises(ConfigError, match="expected 1"):
        TrainValTestSplit(train=0.7, val=0.2, test=0.2)
    with pytest.raises(ConfigError, match="val > 0"):
        TrainValTestSplit(train=0.85, val=0.0, test=0.15)
    with pytest.raises(DataError, match="at least 3 speakers"):
        TrainValTestSplit().parts(range(4), groups=["a", "a", "b", "b"])
