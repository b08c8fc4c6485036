"""Label heads: the label-group file, head kinds, packed targets, thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from vocalis.data import Manifest
from vocalis.data.targets import (
    HeadSpec,
    best_thresholds,
    decode_outputs,
    encode_targets,
    fit_heads,
    read_label_groups,
)
from vocalis.errors import ConfigError, DataError


def _manifest():
    rows = [
        {"path": "/a.wav", "emo": "ang", "cough": "1", "wheeze": "0", "dur": "1.0"},
        {"path": "/b.wav", "emo": "sad", "cough": "0", "wheeze": "1", "dur": "3.0"},
        {"path": "/c.wav", "emo": "ang", "cough": "1", "wheeze": "1", "dur": ""},
        {"path": "/d.wav", "emo": "neu", "cough": "", "wheeze": "0", "dur": "2.0"},
    ]
    return Manifest(rows, source="m.csv")


def test_label_groups_file_is_read_as_the_seed_writes_it(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("emo\n\n# a comment\n cough , wheeze \n")
    assert read_label_groups(path) == [["emo"], ["cough", "wheeze"]]


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("emo\ncough,,wheeze\n", 2, "empty label name"),
        ("emo\ncough,\n", 2, "empty label name"),
        ("emo,cough\nwheeze,emo\n", 2, "already in the head of line 1"),
    ],
)
def test_a_malformed_label_groups_file_names_file_and_line(tmp_path, text, line, words):
    path = tmp_path / "labels.txt"
    path.write_text(text)
    with pytest.raises(DataError) as err:
        read_label_groups(path)
    message = str(err.value)
    assert message.startswith(f"{path}:{line}: ") and words in message
    assert "\n" not in message


def test_an_empty_or_missing_label_groups_file_is_refused(tmp_path):
    (tmp_path / "empty.txt").write_text("\n# nothing\n")
    with pytest.raises(DataError, match="no label group"):
        read_label_groups(tmp_path / "empty.txt")
    with pytest.raises(DataError, match="not found"):
        read_label_groups(tmp_path / "missing.txt")


def test_head_kinds_follow_the_loss_and_the_columns():
    m = _manifest()
    heads = fit_heads(
        m,
        [0, 1, 2, 3],
        [("emo",), ("cough", "wheeze"), ("dur",)],
        {"cough+wheeze": "bce", "dur": "mse"},
    )
    assert [h.kind for h in heads] == ["multiclass", "multilabel", "regression"]
    assert heads[0].classes == ("ang", "neu", "sad")
    assert heads[1].thresholds == (0.5, 0.5)
    assert heads[2].mean == pytest.approx((2.0,)) and heads[2].std == pytest.approx(
        (np.std([1, 3, 2]),)
    )
    packed = encode_targets(m, heads)
    assert packed.shape == (4, 1 + 2 + 1)
    assert packed[:, 0].tolist() == [0, 2, 0, 1]
    assert np.isnan(packed[3, 1]) and packed[2, 1:3].tolist() == [1, 1]
    assert np.isnan(packed[2, 3]) and packed[1, 3] == pytest.approx(1 / np.std([1, 3, 2]))


def test_a_one_hot_group_with_ce_is_one_class_head():
    m = _manifest().select([0, 1, 3])  # exactly one of cough/wheeze... except row d
    heads = fit_heads(m, [0, 1], [("cough", "wheeze")], "ce")
    assert heads[0].kind == "multiclass" and heads[0].classes == ("cough", "wheeze")
    with pytest.raises(DataError, match="exactly one must be 1"):
        encode_targets(_manifest().select([2]), heads)


def test_bad_targets_are_refused_in_one_line():
    m = _manifest()
    with pytest.raises(DataError, match="expected 0 or 1"):
        fit_heads(m, [0, 1], [("emo", "cough")], "bce")
    with pytest.raises(DataError, match="needs numbers"):
        fit_heads(m, [0, 1], [("emo",)], "mse")
    heads = fit_heads(m, [0, 1], [("emo",)], "ce")  # neu is not in training
    with pytest.raises(DataError, match="never seen in training"):
        encode_targets(m, heads)


def test_thresholds_maximise_f1_and_decode_applies_them():
    y = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, np.nan], [0.0, 0.0]])
    s = np.array([[0.3, 0.2], [0.1, 0.9], [0.35, 0.1], [0.2, 0.6]])
    th = best_thresholds(y, s)
    assert 0.2 < th[0] <= 0.3 and 0.6 < th[1] <= 0.9
    head = HeadSpec("x", "multilabel", ("a", "b"), ("a", "b"), "bce", thresholds=tuple(th))
    out = decode_outputs([head], [0.31, 0.7])
    assert out["x"]["labels"] == ["a"]


def test_experiment_config_checks_head_options():
    from vocalis.training import load_config

    cfg = load_config(
        None,
        [
            "dataset.label_columns=[emotion,gender,[cough,wheeze]]",
            "train.loss={emotion: ce, gender: ce, cough+wheeze: bce}",
            "train.loss_weights={emotion: 1.0, gender: 0.3}",
        ],
    )
    assert cfg.dataset.head_names == ["emotion", "gender", "cough+wheeze"]
    assert cfg.dataset.label_column == "emotion"
    assert load_config(None, ["dataset.label_column=[label,gender]"]).dataset.head_names == [
        "label",
        "gender",
    ]
    with pytest.raises(ConfigError, match="did you mean 'gender'"):
        load_config(None, ["dataset.label_columns=[emotion,gender]", "train.loss={gendr: ce}"])
    with pytest.raises(ConfigError, match="in two heads"):
        load_config(None, ["dataset.label_columns=[a,[a,b]]"])


def test_label_groups_key_fills_the_heads(tmp_path):
    from vocalis.training import load_config

    path = tmp_path / "labels.txt"
    path.write_text("emotion\ncough,wheeze\n")
    cfg = load_config(None, [f"dataset.label_groups={path}", "train.loss=bce"])
    assert cfg.dataset.head_groups == [("emotion",), ("cough", "wheeze")]
    assert cfg.dataset.label_groups is None  # read once; the resolved config holds the heads
