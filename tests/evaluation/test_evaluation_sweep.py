"""``vocalis sweep``: Hydra's multirun grammar, one run folder per combination, resumable,
a mean ± std table grouped by every swept key but the seed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from vocalis.cli.main import main
from vocalis.errors import ConfigError
from vocalis.evaluation.sweep import expand_overrides, group_rows
from vocalis.testing import synth_tone, write_wav
from vocalis.testing.checkpoints import TINY_MODEL_OVERRIDES


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """2 speakers x 2 pitches x 3 tones; a manifest."""
    root = tmp_path_factory.mktemp("sweep")
    rows = [("path", "label", "speaker")]
    for s, spk in enumerate(("s1", "s2")):
        for label, f0 in (("low", 200.0), ("high", 500.0)):
            for k in range(3):
                wav = synth_tone(f0 * (1 + 0.05 * s + 0.01 * k), 0.4)
                rows.append((str(write_wav(root / f"{spk}_{label}_{k}.wav", wav)), label, spk))
    with open(root / "m.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return root / "m.csv"


def _fixed(manifest: Path) -> list[str]:
    return [
        f"dataset.manifest={manifest}", "dataset.val_fraction=0.5", *TINY_MODEL_OVERRIDES,
        "train.epochs=1", "train.batch_size=4", "train.warmup_epochs=0", "train.patience=0",
    ]  # fmt: skip


def test_expand_is_the_cross_product_in_order():
    combos = expand_overrides(["a=1,2", "b=choice(x,y)", "c=3", "seed=range(1,3)"])
    assert [c.name for c in combos][:3] == ["a=1,b=x,seed=1", "a=1,b=x,seed=2", "a=1,b=y,seed=1"]
    assert len(combos) == 8 and combos[0].overrides == ("c=3", "a=1", "b=x", "train.seed=1")
    assert combos[0].group == {"a": "1", "b": "x"}
    assert [c.name for c in expand_overrides(["c=3"])] == ["default"]
    with pytest.raises(ConfigError, match="a given twice"):
        expand_overrides(["a=1,2", "a=3"])
    with pytest.raises(ConfigError, match="sweep overrides"):
        expand_overrides(["a=range(1"])


def test_group_rows_mean_and_sample_std_of_numeric_columns():
    rows = [
        {"run": "1", "m": "a", "uar": 0.5, "eer": 0.1, "model": "x"},
        {"run": "2", "m": "a", "uar": 0.7, "eer": 0.3, "model": "x"},
        {"run": "3", "m": "b", "uar": 0.6, "eer": None, "model": "x"},
    ]
    a, b = group_rows(rows, ["m"], ["uar", "eer", "model"])
    assert a["n"] == 2 and a["runs"] == ["1", "2"] and a["uar"] == pytest.approx(0.6)
    assert a["uar_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert a["eer"] == pytest.approx(0.2) and "model" not in a  # only numeric columns
    assert b["uar_std"] == 0.0 and "eer" not in b  # a missing value: not summarised


def test_sweep_trains_each_combination_resumes_and_tabulates(corpus, tmp_path, capsys):
    out = tmp_path / "sw"
    argv = ["sweep", *_fixed(corpus), "train.lr=0.01,0.02", "seed=1,2", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    names = ["train.lr=0.01,seed=1", "train.lr=0.01,seed=2", "train.lr=0.02,seed=1",
             "train.lr=0.02,seed=2"]  # fmt: skip
    for name in names:
        assert (out / name / "metrics.json").is_file() and (out / name / "config.yaml").is_file()
    cfg = (out / "train.lr=0.02,seed=2" / "config.yaml").read_text()
    assert "lr: 0.02" in cfg and "seed: 2" in cfg
    result = json.loads((out / "sweep.json").read_text())
    assert result["keys"] == ["train.lr", "seed"] and result["group_by"] == ["train.lr"]
    assert [g["train.lr"] for g in result["groups"]] == ["0.01", "0.02"]
    first = result["groups"][0]
    uars = [result["combinations"][i]["row"]["uar"] for i in (0, 1)]
    assert first["n"] == 2 and first["uar"] == pytest.approx(np.mean(uars))
    assert first["uar_std"] == pytest.approx(np.std(uars, ddof=1))
    assert "| train.lr | n | uar |" in printed and " ± " in printed
    assert (out / "sweep.md").read_text().strip() == result["table"]

    stamps = {n: (out / n / "metrics.json").stat().st_mtime_ns for n in names}
    (out / names[3] / "metrics.json").unlink()  # one unfinished combination
    assert main(argv) == 0
    again = {n: (out / n / "metrics.json").stat().st_mtime_ns for n in names}
    assert [again[n] == stamps[n] for n in names] == [True, True, True, False]
    redo = json.loads((out / "sweep.json").read_text())
    assert [c.get("skipped", False) for c in redo["combinations"]] == [True, True, True, False]


def test_sweep_refuses_a_bad_key_before_training_anything(corpus, tmp_path, capsys):
    out = tmp_path / "bad"
    argv = ["sweep", *_fixed(corpus), "train.lrr=0.01,0.02", "--out", str(out)]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "lrr" in err and "Traceback" not in err
    assert not out.exists()
