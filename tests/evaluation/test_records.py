"""metrics.json has one schema, written by RunFolder.write_metrics and read by records."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vocalis.errors import DataError
from vocalis.evaluation.records import load_record
from vocalis.training.runfolder import METRICS_SCHEMA, RunFolder, RunMetrics, read_metrics


def test_write_metrics_round_trips_and_fills_every_split(tmp_path):
    run = RunFolder(tmp_path / "r")
    written = run.write_metrics(
        kind="train",
        model="ensemble",
        test={"uar": np.float64(0.75), "confusion": np.eye(2, dtype=np.int64)},
        n_rows={"train": 10, "test": 4},
        classes=("a", "b"),
        fold="speaker_03",
        details={"weights": (0.5, 0.5)},
    )
    raw = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert raw["schema"] == METRICS_SCHEMA == 1
    assert list(raw)[:3] == ["schema", "kind", "model"]
    assert raw["n_rows"] == {"train": 10, "val": 0, "test": 4}
    assert raw["test"]["confusion"] == [[1, 0], [0, 1]] and raw["val"] is None
    back = run.read_metrics()
    assert back == RunMetrics.from_dict(raw)
    assert back.fold == "speaker_03" and back.details == {"weights": [0.5, 0.5]}
    assert written.test["uar"] == back.test["uar"] == 0.75


def test_an_inactive_folder_writes_nothing(tmp_path):
    run = RunFolder(tmp_path / "r", active=False)
    run.write_metrics(kind="eval", model="neural", test={"uar": 1.0})
    assert not (tmp_path / "r").exists()
    assert RunFolder(None).read_metrics() is None


@pytest.mark.parametrize(
    "bad",
    [{"kind": "test", "model": "neural"}, {"kind": "eval", "model": "svm"}],
)
def test_write_metrics_rejects_unknown_kinds(tmp_path, bad):
    with pytest.raises(ValueError, match="expected one of"):
        RunFolder(tmp_path).write_metrics(**bad)
    with pytest.raises(ValueError, match="unknown split"):
        RunFolder(tmp_path).write_metrics(kind="eval", model="neural", n_rows={"dev": 3})


def test_an_older_metrics_file_is_one_line_error(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps({"best_epoch": 3, "test": {"uar": 0.5}}))
    with pytest.raises(DataError, match=r"metrics schema None, this Vocalis reads schema 1") as e:
        read_metrics(tmp_path)
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="schema"):
        load_record(tmp_path)
    (tmp_path / "metrics.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.json").write_text(json.dumps({"schema": 1, "kind": "eval", "x": 1}))
    with pytest.raises(DataError, match="unknown key 'x'"):
        read_metrics(tmp_path)


def test_record_reads_the_schema_without_predictions(tmp_path):
    run = RunFolder(tmp_path / "r")
    run.write_metrics(
        kind="train",
        model="neural",
        val={"uar": 0.6},
        test={"uar": 0.55, "accuracy": 0.6},
        best_epoch=3,
        epochs_run=5,
        seconds=12.5,
    )
    (tmp_path / "r" / "history.csv").write_text("epoch,seconds\n1,100\n")  # the schema wins
    rec = load_record(tmp_path / "r")
    assert rec.kind == "run" and rec.metrics == {"uar": 0.55, "accuracy": 0.6}
    assert rec.epochs() == 5 and rec.seconds() == 12.5 and rec.stored.best_epoch == 3


def test_record_without_metrics_uses_history(tmp_path):
    from vocalis.metrics.predictions import write_predictions

    d = tmp_path / "r"
    rows = [
        {"path": f"{i}.wav", "speaker": "s", "true_label": "a", "pred_label": "a", "p_a": 0.9,
         "p_b": 0.1}
        for i in range(3)
    ]  # fmt: skip
    write_predictions(d / "predictions.csv", rows, classes=["a", "b"])
    (d / "history.csv").write_text("epoch,seconds\n1,1.5\n2,2.5\n")
    rec = load_record(d)
    assert rec.stored is None and rec.metrics["accuracy"] == 1.0
    assert rec.epochs() == 2 and rec.seconds() == 4.0
