"""Label maps and the label encoder."""

from __future__ import annotations

import pytest

from vocalis.data import corpora  # noqa: F401  (registers the corpora)
from vocalis.data.corpora import crema_d, emodb, ravdess, savee, tess
from vocalis.data.labels import (
    LabelEncoder,
    LabelMap,
    apply_label_map,
    builtin_label_maps,
    load_label_map,
)
from vocalis.data.manifest import Manifest
from vocalis.errors import DataError


def test_builtin_4class_covers_corpus_spellings():
    m = load_label_map("4class")
    assert set(m.classes) == {"happy", "neutral", "sad", "angry"}
    expected = {
        "happiness": "happy",
        "surprised": "happy",
        "excited": "happy",
        "HAP": "happy",
        "sadness": "sad",
        "fearful": "sad",
        "fear": "sad",
        "anger": "angry",
        "disgust": "angry",
        "Angry": "angry",
        "neutral": "neutral",
    }
    for src, tgt in expected.items():
        assert m[src] == tgt
    for dropped in ("boredom", "calm", "fru", "xxx", "oth"):
        assert dropped not in m
    # every label produced by the corpus preparers is either mapped or deliberately dropped
    produced = set(emodb.EMOTIONS.values()) | set(ravdess.EMOTIONS.values())
    produced |= set(crema_d.EMOTIONS.values()) | set(tess.EMOTIONS.values())
    produced |= set(savee.EMOTIONS.values())
    assert {p for p in produced if p not in m} == {"boredom", "calm"}
    assert "iemocap4" in builtin_label_maps()


def test_load_from_yaml_file_and_errors(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text("pos: [happy, Calm]\nneg: sad\n")
    m = load_label_map(p)
    assert dict(m) == {"happy": "pos", "calm": "pos", "sad": "neg"}
    (tmp_path / "bad.yaml").write_text("a: [x]\nb: [X]\n")
    with pytest.raises(DataError, match="'X' is listed under both 'a' and 'b'"):
        load_label_map(tmp_path / "bad.yaml")
    with pytest.raises(DataError, match=r"neither a builtin .*did you mean '4class'"):
        load_label_map("4clas")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(DataError, match="expected a mapping"):
        load_label_map(tmp_path / "list.yaml")


def _m():
    return Manifest(
        [
            {"path": "/c/03a01Wa.wav", "label": "anger"},
            {"path": "/c/03a01La.wav", "label": "boredom"},
            {"path": "/c/03a01Fa.wav", "label": "happiness"},
        ]
    )


def test_apply_error_names_label_file_and_map():
    with pytest.raises(DataError, match=r"03a01La\.wav: label 'boredom' is not in 4class"):
        apply_label_map(_m(), "4class")


def test_apply_drop_and_keep_preserve_originals():
    out = apply_label_map(_m(), "4class", unmapped="drop")
    assert out.labels() == ["angry", "happy"]
    assert out.column("label_orig") == ["anger", "happiness"]
    kept = apply_label_map(_m(), {"neg": ["anger"]}, unmapped="keep")
    assert kept.labels() == ["neg", "boredom", "happiness"]
    with pytest.raises(DataError, match="unmapped='maybe'"):
        apply_label_map(_m(), "4class", unmapped="maybe")


def test_label_map_is_a_mapping():
    m = LabelMap.from_dict({"a": ["x", "y"]})
    assert len(m) == 2 and sorted(m) == ["x", "y"] and m.get("Y ") == "a"


def test_encoder_contiguous_sorted_round_trip(tmp_path):
    labels = ["sad", "angry", "neutral", "sad", "happy"]
    enc = LabelEncoder.from_labels(labels)
    assert enc.classes == ("angry", "happy", "neutral", "sad")
    ids = enc.encode(labels)
    assert ids.dtype.name == "int64" and ids.tolist() == [3, 0, 2, 3, 1]
    assert enc.decode(ids) == labels and enc.decode(2) == "neutral"
    assert LabelEncoder.from_dict(enc.to_dict()) == enc
    assert LabelEncoder.from_dict({"b": 1, "a": 0}).classes == ("a", "b")
    enc.save(tmp_path / "label_map.json")
    assert LabelEncoder.load(tmp_path / "label_map.json") == enc


def test_encoder_errors():
    enc = LabelEncoder(["angry", "happy"])
    with pytest.raises(
        DataError,
        match=r"unknown label 'hapy' \(did you mean 'happy'\?\); known classes: angry, happy",
    ):
        enc.encode("hapy")
    with pytest.raises(DataError, match="out of range"):
        enc.decode(5)
    with pytest.raises(DataError, match=r"must be 0\.\.1"):
        LabelEncoder.from_dict({"a": 0, "b": 2})
    with pytest.raises(DataError, match="duplicate"):
        LabelEncoder(["a", "a"])
