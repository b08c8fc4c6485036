"""Fixed parts for vocalis train / eval / embed: split folders, --val-csv and --test-csv."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from _training_helpers import tiny_overrides

from vocalis.cli.main import main
from vocalis.data import read_manifest
from vocalis.errors import ConfigError, DataError


def _ids(path):
    """Ids of a split file, or of a predictions.csv (the stems of its paths)."""
    with open(path, newline="") as fh:
        return [r.get("id") or Path(r["path"]).stem for r in csv.DictReader(fh)]


def _write_ids(path, ids):
    path.write_text("id\n" + "".join(f"{i}\n" for i in ids))


@pytest.fixture(scope="module")
def split(corpus, tmp_path_factory):
    """s1+s2 train (s2 as val.csv), s3 test."""
    ids = read_manifest(corpus).column("id")
    d = tmp_path_factory.mktemp("splits")
    _write_ids(d / "train.csv", [i for i in ids if i.startswith("s1")])
    _write_ids(d / "val.csv", [i for i in ids if i.startswith("s2")])
    _write_ids(d / "test.csv", [i for i in ids if i.startswith("s3")])
    return d


def _overrides(corpus):
    return [o for o in tiny_overrides(corpus, 1) if not o.startswith("dataset.val_fraction")]


def test_train_on_a_split_folder_never_trains_on_test_rows(corpus, split, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--split-dir", str(split), "--out", str(out), "--no-progress",
                 *_overrides(corpus)]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_rows"] == {"train": 6, "val": 6, "test": 6}
    assert metrics["test"] is not None
    assert sorted(_ids(out / "predictions.csv")) == sorted(_ids(split / "test.csv"))
    log = (out / "log.txt").read_text()
    assert f"Parts from split folder {split}: train.csv, val.csv, test.csv" in log
    assert "Test speakers: s3 (scored with the best epoch at the end)" in log
    assert "Validation speakers: s2 (the fixed validation part; none of them in training)" in log

    ev_dir = tmp_path / "ev"
    code = main(["eval", str(out / "model"), "--manifest", str(corpus), "--split-dir",
                 str(split), "--out", str(ev_dir), "--no-visualize", "--no-progress"])  # fmt: skip
    assert code == 0
    ev = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert ev["n_rows"]["test"] == 6
    assert sorted(_ids(tmp_path / "ev" / "predictions.csv")) == sorted(_ids(split / "test.csv"))

    emb = tmp_path / "emb.npz"
    assert main(["embed", "--checkpoint", str(out), "--manifest", str(corpus), "--split-dir",
                 str(split), "--out", str(emb), "--no-progress"]) == 0  # fmt: skip
    for part in ("train", "val", "test"):
        got = np.load(tmp_path / f"emb.{part}.npz")
        assert sorted(got["ids"].tolist()) == sorted(_ids(split / f"{part}.csv"))


def test_val_and_test_manifests(corpus, tmp_path):
    rows = read_manifest(corpus)
    parts = {}
    for name, spk in (("train", "s1"), ("val", "s2"), ("test", "s3")):
        parts[name] = tmp_path / f"{name}.csv"
        rows.filter(lambda r, s=spk: r["speaker"] == s).write(parts[name])
    out = tmp_path / "run"
    over = [o for o in _overrides(corpus) if not o.startswith("dataset.manifest")]
    assert main(["train", "--manifest", str(parts["train"]), "--val-csv", str(parts["val"]),
                 "--test-csv", str(parts["test"]), "--out", str(out), "--no-progress",
                 *over]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["n_rows"] == {"train": 6, "val": 6, "test": 6}
    assert sorted(_ids(out / "predictions.csv")) == sorted(rows.filter(
        lambda r: r["speaker"] == "s3").column("id"))  # fmt: skip
    assert "(--val-csv), test " in (out / "log.txt").read_text()


def test_parts_that_share_rows_are_refused(corpus, split, tmp_path):
    from vocalis.training import load_config, train

    rows = read_manifest(corpus)
    rows.filter(lambda r: r["speaker"] == "s3").write(tmp_path / "t.csv")
    with pytest.raises(DataError, match=r"row\(s\) also in .*must not repeat training rows"):
        extra = f"dataset.test_manifest={tmp_path / 't.csv'}"
        train(load_config(None, [*_overrides(corpus), extra]), None, progress=False)
    with pytest.raises(ConfigError, match=r"dataset\.split_dir and dataset\.test_manifest both"):
        load_config(None, [f"dataset.split_dir={split}", "dataset.test_manifest=x.csv"])
