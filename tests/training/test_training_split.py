"""``dataset.split``: a 70/15/15 speaker-independent split, its test part scored by ``train``."""

from __future__ import annotations

import csv
import json

import pytest
from _training_helpers import tiny_overrides, write_corpus

from vocalis.errors import ConfigError
from vocalis.training import load_config, train


def test_three_way_split_trains_validates_and_tests_whole_speakers(tmp_path):
    speakers = tuple(f"s{k}" for k in range(7))
    manifest = write_corpus(tmp_path / "data", speakers=speakers, per_cell=2)
    split = "dataset.split={by: speaker, train: 0.7, val: 0.15, test: 0.15}"
    cfg = load_config(None, [*tiny_overrides(manifest, epochs=1), split])
    out = tmp_path / "run"
    result = train(cfg, out, progress=False)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_rows"] == {"train": 20, "val": 4, "test": 4}  # 5 / 1 / 1 speakers
    assert metrics["test"]["uar"] == pytest.approx(result.test_metrics["uar"])
    with open(out / "predictions.csv") as fh:
        tested = {row["speaker"] for row in csv.DictReader(fh)}
    log = (out / "log.txt").read_text()
    assert f"Test speakers: {tested.pop()} (scored" in log and not tested
    assert "(dataset.split by=speaker; none of them in training)" in log


def test_split_and_split_column_are_one_or_the_other(corpus):
    with pytest.raises(ConfigError, match="keep one"):
        load_config(
            None,
            [
                *tiny_overrides(corpus),
                "dataset.split={by: speaker}",
                "dataset.val_protocol=split_column",
            ],
        )
    with pytest.raises(ConfigError, match=r"dataset\.split: train \+ val \+ test = 1\.1"):
        load_config(None, ["dataset.split={train: 0.8, val: 0.15, test: 0.15}"])
