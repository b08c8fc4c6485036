"""Trial lists: right pairs, never a speaker against itself as non-target, no training speakers."""

from __future__ import annotations

import numpy as np
import pytest

from vocalis.data import Manifest
from vocalis.errors import ConfigError, DataError
from vocalis.verification.trials import (
    build_trials,
    meta_path,
    read_trials,
    training_speakers,
    write_trials,
)


def _manifest(counts: dict[str, int]) -> Manifest:
    rows = [
        {"path": f"/audio/{spk}/{i}.wav", "id": f"{spk}{i}", "label": "x", "speaker": spk}
        for spk, n in counts.items()
        for i in range(n)
    ]
    return Manifest(rows, source="m.csv")


COUNTS = {"a": 2, "b": 9, "c": 30, "d": 1, "e": 5}


def _speaker(path: str) -> str:
    return path.split("/")[2]


def test_target_and_nontarget_pairs_are_what_they_say():
    trials = build_trials(_manifest(COUNTS), per_speaker=10, seed=1)
    for lab, a, b in zip(trials.labels, trials.enrol, trials.test, strict=True):
        assert a != b
        assert (_speaker(a) == _speaker(b)) == bool(lab)
    pairs = [frozenset(p) for p in zip(trials.enrol, trials.test, strict=True)]
    assert len(set(pairs)) == len(pairs)  # no repeated (or reversed) pair
    # targets: all pairs when fewer than per_speaker (a: 1, e: 10, d: none), else 10
    tgt = [_speaker(a) for lab, a in zip(trials.labels, trials.enrol, strict=True) if lab]
    assert {s: tgt.count(s) for s in COUNTS} == {"a": 1, "b": 10, "c": 10, "d": 0, "e": 10}
    non = [_speaker(a) for lab, a in zip(trials.labels, trials.enrol, strict=True) if not lab]
    assert all(non.count(s) == 10 for s in COUNTS)
    assert trials.meta["n_target"] == trials.n_target == 31
    assert trials.n_nontarget == 50


def test_impostors_are_spread_over_the_other_speakers():
    trials = build_trials(_manifest({"a": 5, "b": 200, "c": 3, "d": 3, "e": 3}), per_speaker=8)
    impostors = [
        _speaker(b)
        for lab, a, b in zip(trials.labels, trials.enrol, trials.test, strict=True)
        if not lab and _speaker(a) == "a"
    ]
    assert sorted(set(impostors)) == ["b", "c", "d", "e"]
    assert max(impostors.count(s) for s in "bcde") == 2  # 8 pairs over 4 impostors


def test_same_seed_same_list_other_seed_other_list():
    m = _manifest(COUNTS)
    one, two = build_trials(m, seed=3), build_trials(m, seed=3)
    assert one.enrol == two.enrol and one.test == two.test
    assert build_trials(m, seed=4).test != one.test


def test_small_speaker_sets_use_every_pair_and_stop():
    trials = build_trials(_manifest({"a": 2, "b": 1}), per_speaker=50)
    assert trials.n_target == 1 and trials.n_nontarget == 2  # a0-b0, a1-b0; b's are repeats


def test_training_speakers_are_refused_dropped_or_allowed(tmp_path):
    m = _manifest(COUNTS)
    with pytest.raises(DataError, match=r"2 of its 5 speakers were seen in training.*b, c"):
        build_trials(m, exclude={"b", "c", "zz"})
    dropped = build_trials(m, exclude={"b", "c"}, overlap="drop")
    assert not {"b", "c"} & {_speaker(p) for p in dropped.files()}
    allowed = build_trials(m, exclude={"b"}, overlap="allow")
    assert allowed.meta["overlapping_speakers"] == ["b"]
    # from a training manifest
    train = tmp_path / "train.csv"
    Manifest([{"path": "/x.wav", "label": "x", "speaker": "e"}]).write(train)
    seen, where = training_speakers(train)
    assert seen == {"e"} and "train.csv" in where
    with pytest.raises(DataError, match="seen in training"):
        build_trials(m, exclude=seen)


def test_bad_requests_are_one_line_errors():
    with pytest.raises(DataError, match="at least 2 speakers"):
        build_trials(_manifest({"a": 4}))
    with pytest.raises(DataError, match="no speaker has 2 clips"):
        build_trials(_manifest({"a": 1, "b": 1}))
    with pytest.raises(ConfigError, match="per-speaker"):
        build_trials(_manifest(COUNTS), per_speaker=0)
    with pytest.raises(DataError, match="'speaker' column"):
        build_trials(Manifest([{"path": "/a.wav", "label": "x"}]))


def test_tsv_round_trip_and_sidecar(tmp_path):
    trials = build_trials(_manifest(COUNTS), per_speaker=4, seed=0)
    out = tmp_path / "trials.tsv"
    write_trials(out, trials)
    first = out.read_text().splitlines()[0].split("\t")
    assert first[0] in ("0", "1") and len(first) == 3
    back = read_trials(out)
    assert back.enrol == trials.enrol and back.test == trials.test
    assert np.array_equal(back.labels, trials.labels)
    assert back.meta["seed"] == 0 and meta_path(out).is_file()


def test_reading_kaldi_style_lists_and_bad_lines(tmp_path):
    f = tmp_path / "voxceleb.txt"
    f.write_text("target id1/a.wav id1/b.wav\nnontarget id1/a.wav id2/c.wav\n")
    t = read_trials(f, audio_root="/wav")
    assert t.labels.tolist() == [1, 0] and t.enrol[0] == "/wav/id1/a.wav"
    f.write_text("1 a.wav\n")
    with pytest.raises(DataError, match="line 1 has 2 field"):
        read_trials(f)
    f.write_text("yes a.wav b.wav\n")
    with pytest.raises(DataError, match="label 'yes'"):
        read_trials(f)
    with pytest.raises(DataError, match="not found"):
        read_trials(tmp_path / "missing.tsv")
