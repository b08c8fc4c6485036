"""Training sanity (issue 14 items 4, 5): bad learning rates refused at config time, a
diverging run stopped with a clear message, unseen test labels recorded instead of failing
a LOSO fold, one-example classes warned about."""

from __future__ import annotations

import csv
import json
import logging

import pytest
from _training_helpers import tiny_overrides, write_corpus

from vocalis.cli.main import main


def _no_lr(manifest, epochs=2):
    return [o for o in tiny_overrides(manifest, epochs) if not o.startswith("train.lr")]


@pytest.mark.parametrize("lr", ["nan", "inf", "-1", "0"])
def test_bad_lr_is_one_line_at_config_time(tmp_path, corpus, capsys, lr):
    code = main(["train", *_no_lr(corpus), f"train.lr={lr}", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1, err
    assert "train.lr: got" in err and "expected a positive finite learning rate" in err
    assert not (tmp_path / "r").exists()  # refused before anything is built
    # the --lr flag is refused by the parser itself (usage + one error line, exit 2)
    with pytest.raises(SystemExit) as stop:
        main(["train", *_no_lr(corpus), "--lr", lr, "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and "Traceback" not in err
    assert err.splitlines()[-1].startswith("vocalis train: error: argument --lr: got")
    assert not (tmp_path / "r").exists()


def test_diverging_run_stops_with_the_remedy(tmp_path, corpus, capsys):
    out = tmp_path / "r"
    code = main(["train", *_no_lr(corpus, 5), "--lr", "1e3", "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert "the run diverged; lower train.lr (now 1000" in err[-1]
    assert "Stopped: epoch 1: the training loss is" in (out / "log.txt").read_text()


def test_a_sane_lr_does_not_trip_the_divergence_check(tmp_path, corpus):
    out = tmp_path / "r"
    assert main(["train", *tiny_overrides(corpus, 3), "--out", str(out), "--no-progress"]) == 0


def _odd_row(manifest, **changes):
    """A copy of the manifest's first row on its own copy of the audio file."""
    import shutil

    with open(manifest, newline="") as fh:
        first = next(csv.DictReader(fh))
    path = manifest.parent / "odd.wav"
    shutil.copy(first["path"], path)
    return {**first, "path": str(path), **changes}


def _with_rows(manifest, extra):
    with open(manifest, newline="") as fh:
        rows = list(csv.DictReader(fh))
    rows += extra
    out = manifest.parent / "manifest_extra.csv"
    with open(out, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out, rows


def test_unseen_test_label_is_recorded_not_fatal(tmp_path):
    from vocalis.evaluation.crossval import loso
    from vocalis.training import load_config

    manifest = write_corpus(tmp_path / "c")
    manifest, _ = _with_rows(manifest, [_odd_row(manifest, label="whisper", speaker="s2")])
    out = tmp_path / "loso"
    cfg = load_config(None, [*tiny_overrides(manifest, 1), "dataset.val_fraction=0.5"])
    cv = loso(cfg, out)
    results = json.loads((out / "training_results.json").read_text())
    assert all(r["status"] == "success" for r in results.values()), results
    assert results["speaker_s2"]["test_skipped"] == {"unseen_label": 1}
    assert results["speaker_s2"]["n_test"] == 6  # of the 7 test rows of s2
    with open(out / "speaker_s2" / "errors.csv", newline="") as fh:
        errors = list(csv.DictReader(fh))
    assert len(errors) == 1 and errors[0]["kind"] == "unseen_label"
    assert "'whisper' is in no training speaker" in errors[0]["reason"]
    fold = json.loads((out / "speaker_s2" / "metrics.json").read_text())
    assert fold["details"]["test_rows"] == {
        "n_rows": 7,
        "n_used": 6,
        "n_skipped": {"unseen_label": 1},
    }
    assert cv["pooled"]["n"] == 18
    # the run's own summary: every fold's skipped rows in one errors.csv, counted
    with open(out / "errors.csv", newline="") as fh:
        assert [r["id"] for r in csv.DictReader(fh)] == [errors[0]["id"]]
    assert cv["test_rows"] == {"n_rows": 19, "n_used": 18, "n_skipped": {"unseen_label": 1}}


def test_train_warns_about_a_one_example_class(tmp_path, caplog):
    from vocalis.training import load_config, train

    manifest = write_corpus(tmp_path / "c", speakers=("s1", "s2"))
    manifest, _ = _with_rows(manifest, [_odd_row(manifest, label="whisper")])
    cfg = load_config(None, [*tiny_overrides(manifest, 1), "dataset.val_protocol=speaker"])
    with caplog.at_level(logging.WARNING):
        train(cfg, tmp_path / "r", progress=False)
    assert any("single training example: 'whisper'" in r.getMessage() for r in caplog.records)


def test_train_and_predict_write_errors_csv_and_honour_max_failures(tmp_path, capsys):
    from vocalis.testing import tiny_run

    manifest = write_corpus(tmp_path / "c")
    broken = _odd_row(manifest)
    with open(broken["path"], "wb") as fh:
        fh.write(b"RIFF\x00\x00\x00\x00WAVEjunk")
    manifest, _ = _with_rows(manifest, [broken])
    run = tmp_path / "r"
    args = ["train", *tiny_overrides(manifest, 1), "--out", str(run), "--no-progress"]
    assert main([*args, "--max-failures", "0"]) == 1
    assert "1 of 19 files failed, more than max_failures=0" in capsys.readouterr().err
    assert main([*args, "--max-failures", "0.1", "--overwrite"]) == 0
    with open(run / "errors.csv", newline="") as fh:
        (row,) = csv.DictReader(fh)
    assert row["path"] == broken["path"] and row["stage"] == "features"
    assert row["kind"] == "unreadable_audio" and "cannot decode" in row["reason"]
    rows = json.loads((run / "metrics.json").read_text())["details"]["rows"]
    assert rows == {"n_rows": 19, "n_used": 18, "n_skipped": {"unreadable_audio": 1}}

    ckpt, out = str(tiny_run()), tmp_path / "p.csv"
    capsys.readouterr()
    code = main(["predict", str(manifest), "--checkpoint", ckpt, "--out", str(out)])
    assert code == 0
    assert f"1 file(s) skipped; listed in {tmp_path / 'p.errors.csv'}" in capsys.readouterr().err
    with open(tmp_path / "p.errors.csv", newline="") as fh:
        (row,) = csv.DictReader(fh)
    assert row["stage"] == "predict" and row["path"] == broken["path"]
    out.unlink()
    code = main(
        ["predict", str(manifest), "--checkpoint", ckpt, "--out", str(out), "--max-failures", "0"]
    )
    assert code == 1
    assert "more than max_failures=0 allows (0)" in capsys.readouterr().err


def test_loso_names_a_broken_file_once_not_once_per_fold(tmp_path, caplog):
    """Each fold meets the broken training file; the log names it once, then one summary line
    names the run's errors.csv (which lists it for every fold that skipped it)."""
    from vocalis.evaluation.crossval import loso
    from vocalis.training import load_config

    manifest = write_corpus(tmp_path / "c")
    broken = tmp_path / "c" / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00")
    manifest, _ = _with_rows(manifest, [{**_odd_row(manifest), "path": str(broken)}])
    out = tmp_path / "loso"
    cfg = load_config(None, [*tiny_overrides(manifest, 1), "dataset.val_fraction=0.5"])
    with caplog.at_level(logging.WARNING):
        cv = loso(cfg, out)
    named = [r.getMessage() for r in caplog.records if str(broken) in r.getMessage()]
    assert len(named) == 1, named
    last = caplog.records[-1].getMessage()
    assert "row(s) skipped over the folds" in last and str(out / "errors.csv") in last
    with open(out / "errors.csv", newline="") as fh:
        assert {r["path"] for r in csv.DictReader(fh)} == {str(broken)}
    assert sum(cv["n_skipped"].values()) >= 1
