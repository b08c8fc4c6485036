"""An ensemble recipe through the one runner (``vocalis loso`` / ``cv``): layout, skip, parallel."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from vocalis.cli.main import main
from vocalis.testing import synth_speechlike, write_wav

SPEAKERS = ("s0", "s1", "s2")
RECIPE = {
    "kind": "ensemble",
    "ensemble": {
        "normalization": "online",
        "fusion_resolution": 4,
        "members": [
            {
                "functionals": {"name": "lld_stats", "lld": "mfcc", "deltas": False},
                "linear": {"classifier": "svm", "c_grid": [0.01, 1.0]},
                "speed_factors": [],
            },
            {
                "functionals": {"name": "lld_stats", "lld": "fbank", "deltas": False},
                "linear": {"classifier": "svm", "c_grid": [0.1]},
                "speed_factors": [1.1],
            },
        ],
    },
}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    """3 speakers x 2 classes (f0 110 vs 220 Hz) x 3 utterances; the manifest and a recipe."""
    root = tmp_path_factory.mktemp("ens")
    rows = []
    for s, shift in enumerate((1.0, 1.1, 0.92)):
        for label, f0 in (("low", 110.0), ("high", 220.0)):
            for i in range(3):
                wav = synth_speechlike(0.4, f0=f0 * shift, seed=100 * s + 10 * i + int(f0))
                path = write_wav(root / f"{SPEAKERS[s]}_{label}_{i}.wav", wav)
                rows.append({"path": str(path), "label": label, "speaker": SPEAKERS[s]})
    manifest = root / "m.csv"
    with manifest.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["path", "label", "speaker"])
        writer.writeheader()
        writer.writerows(rows)
    recipe = dict(RECIPE, cache_dir=str(root / "cache"))
    path = root / "ens.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return manifest, path


def test_loso_ensemble_writes_layout_and_skips_finished_folds(corpus, tmp_path, capsys):
    manifest, recipe = corpus
    out = tmp_path / "run"
    argv = ["loso", "--config", str(recipe), "--manifest", str(manifest), "--out", str(out)]
    assert main([*argv, "--speaker", "s0"]) == 0
    assert (out / "speaker_s0" / "predictions.csv").is_file()
    assert not (out / "speaker_s1").exists()
    first = (out / "speaker_s0" / "metrics.json").stat().st_mtime_ns

    assert main(argv) == 0  # the rest; s0 is finished and must be skipped
    assert (out / "speaker_s0" / "metrics.json").stat().st_mtime_ns == first
    for spk in SPEAKERS:
        fold = out / f"speaker_{spk}"
        metrics = json.loads((fold / "metrics.json").read_text())
        assert metrics["schema"] == 1 and metrics["model"] == "ensemble"
        assert metrics["fold"] == f"speaker_{spk}" and metrics["n_rows"]["test"] == 6
        weights = metrics["details"]["ensemble"]["weights"]
        assert len(weights) == 2 and abs(sum(weights) - 1) < 1e-6
        with (fold / "predictions.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        assert len(rows) == 6 and {r["speaker"] for r in rows} == {spk}
        assert {"p_high", "p_low"} <= set(rows[0])
    cv = json.loads((out / "cv_results.json").read_text())
    assert cv["model"] == "ensemble" and cv["n_finished"] == 3 and not cv["failed"]
    assert cv["normalization"]["protocol"] == "online"
    assert cv["config"]["ensemble"]["fusion_resolution"] == 4
    assert set(cv["folds"]) == {f"speaker_{s}" for s in SPEAKERS}
    assert cv["pooled"]["uar"] >= 0.75  # f0 110 vs 220 Hz is easy
    assert set(cv["mean"]) >= {"uar", "accuracy"} and "uar" in cv["std"]
    training = json.loads((out / "training_results.json").read_text())
    assert set(training) == {f"speaker_{s}" for s in SPEAKERS}
    assert all(r["status"] == "success" for r in training.values())
    with (out / "predictions.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 18

    capsys.readouterr()
    assert main(["compare", str(out)]) == 0
    assert "ensemble" in capsys.readouterr().out
    assert main(["report", str(out), "--out", str(tmp_path / "r.html")]) == 0
    assert "lld_stats(mfcc)" in (tmp_path / "r.html").read_text()


def test_ensemble_normalization_flag_and_protocol_errors(corpus, tmp_path, capsys):
    manifest, recipe = corpus
    base = ["--config", str(recipe), "--manifest", str(manifest), "--out", str(tmp_path / "o")]
    assert main(["loso", *base, "--normalization", "speaker_norm"]) != 0
    err = capsys.readouterr().err
    assert "fixes ensemble.normalization=online" in err and "Traceback" not in err
    assert main(["cv", "--protocol", "stratified", *base]) != 0
    assert "speaker-independent" in capsys.readouterr().err
    assert main(["loso", *base, "--epochs", "3"]) != 0
    assert "ensemble recipe" in capsys.readouterr().err


def test_ensemble_group_kfold(corpus, tmp_path):
    manifest, recipe = corpus
    out = tmp_path / "gkf"
    argv = ["cv", "--protocol", "group-kfold", "--folds", "3", "--config", str(recipe)]
    argv += ["--manifest", str(manifest), "--out", str(out), "ensemble.fusion_resolution=0"]
    assert main(argv) == 0
    cv = json.loads((out / "cv_results.json").read_text())
    assert cv["protocol"] == "group-kfold" and cv["n_finished"] == 3
    assert cv["config"]["ensemble"]["fusion_resolution"] == 0  # an override of the recipe
    folds = json.loads((out / "training_results.json").read_text())
    assert all(f["weights"] == [0.5, 0.5] for f in folds.values())  # plain average


@pytest.mark.slow
def test_ensemble_parallel_folds_match_serial(corpus, tmp_path):
    from vocalis.metrics.predictions import read_predictions

    manifest, recipe = corpus
    base = ["loso", "--config", str(recipe), "--manifest", str(manifest)]
    assert main([*base, "--out", str(tmp_path / "s")]) == 0
    assert main([*base, "--out", str(tmp_path / "p"), "--parallel", "2"]) == 0
    serial = read_predictions(tmp_path / "s" / "predictions.csv")
    par = read_predictions(tmp_path / "p" / "predictions.csv")
    order = np.argsort(par.path)
    np.testing.assert_allclose(par.probs[order], serial.probs[np.argsort(serial.path)], atol=1e-6)
    records = json.loads((tmp_path / "p" / "training_results.json").read_text())
    assert all(r["status"] == "success" for r in records.values())
