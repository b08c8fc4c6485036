"""``vocalis sv`` and ``vocalis verify`` end to end on tiny synthetic data."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from vocalis.cli.main import main
from vocalis.data import Manifest
from vocalis.metrics.verification import compute_eer, compute_min_dcf


def _manifest(path, speakers="abcd", n=4):
    rows = [
        {"path": f"/audio/{s}{i}.wav", "id": f"{s}{i}", "label": "x", "speaker": s}
        for s in speakers
        for i in range(n)
    ]
    Manifest(rows).write(path)
    return path


def test_sv_trials_writes_the_list_and_refuses_training_speakers(tmp_path, capsys):
    m = _manifest(tmp_path / "m.csv")
    train = _manifest(tmp_path / "train.csv", speakers="bx")
    out = tmp_path / "trials.tsv"
    assert main(["sv", "trials", str(m), "--out", str(out), "--per-speaker", "3"]) == 0
    assert "24 trials (12 target, 12 non-target) among 4 speakers" in capsys.readouterr().out
    assert len(out.read_text().splitlines()) == 24
    assert json.loads(out.with_suffix(".json").read_text())["n_target"] == 12
    argv = ["sv", "trials", str(m), "--out", str(out), "--exclude-speakers-of", str(train)]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "1 of its 4 speakers were seen in training" in err and len(err.splitlines()) == 1
    assert main([*argv, "--drop-seen"]) == 0
    assert "among 3 speakers" in capsys.readouterr().out


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """4 trial speakers x 4 clips and 2 cohort speakers x 3 clips of speech-like signals."""
    from vocalis.testing import synth_speechlike, write_wav

    root = tmp_path_factory.mktemp("sv_corpus")

    def clips(speakers, n, name):
        rows = []
        for k, (spk, f0) in enumerate(speakers):
            for i in range(n):
                sig = synth_speechlike(0.6 + 0.1 * i, f0=f0, seed=10 * k + i)
                path = write_wav(root / spk / f"{i}.wav", sig)
                rows.append({"path": str(path), "id": f"{spk}{i}", "label": "x", "speaker": spk})
        Manifest(rows).write(root / name)
        return root / name

    trials = clips([("s1", 90), ("s2", 140), ("s3", 200), ("s4", 260)], 4, "m.csv")
    cohort = clips([("c1", 110), ("c2", 230)], 3, "cohort.csv")
    return trials, cohort


@pytest.fixture
def model(tmp_path):
    from vocalis.testing.checkpoints import tiny_run

    return shutil.copy(tiny_run() / "model.pt", tmp_path / "model.pt")


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def _read_scores(path):
    with open(path) as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    return np.array([float(r["score"]) for r in rows]), np.array([int(r["label"]) for r in rows])


def test_score_calibrate_verify_end_to_end(corpus, model, tmp_path, capsys):
    manifest, cohort = corpus
    trials = tmp_path / "trials.tsv"
    assert main(["sv", "trials", str(manifest), "--out", str(trials), "--per-speaker", "4"]) == 0
    out = tmp_path / "scores" / "test.tsv"
    base = ["--checkpoint", str(model), "--trials", str(trials), "--no-progress"]
    assert main(["sv", "score", *base, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "32 trials (16 target, 16 non-target), norm none: EER" in printed
    scores, labels = _read_scores(out)
    metrics = json.loads(out.with_suffix(".json").read_text())
    assert metrics["eer"] == pytest.approx(compute_eer(scores, labels)[0], abs=1e-5)
    assert metrics["min_dcf"] == pytest.approx(compute_min_dcf(scores, labels)[0], abs=1e-5)
    assert (tmp_path / "scores" / "test.det.png").stat().st_size > 1000
    assert list((tmp_path / "scores" / "embeddings").rglob("*.vfeat"))  # per-clip cache

    # adaptive s-norm with a cohort; a norm without one is one line
    assert (
        main(["sv", "score", *base, "--norm", "as", "--cohort", str(cohort), "--top-k", "3"]) == 0
    )
    assert "norm as (top 3): EER" in capsys.readouterr().out
    assert main(["sv", "score", *base, "--norm", "s"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith("--norm s needs a cohort: pass --cohort COHORT.csv")

    # no threshold yet: one clear line, exit 1
    rows = _rows(out)
    a, b, pair_score = rows[0]["enrol"], rows[0]["test"], float(rows[0]["score"])
    assert main(["verify", a, b, "--checkpoint", str(model)]) == 1
    err = capsys.readouterr().err.strip()
    assert "no calibrated threshold" in err and "vocalis sv calibrate" in err
    assert len(err.splitlines()) == 1

    # calibrate at a false-accept rate, stored in the checkpoint
    assert main(["sv", "calibrate", *base, "--at", "far=0.1"]) == 0
    assert "at far=0.1 (norm none)" in capsys.readouterr().out
    from vocalis.checkpoint import load_checkpoint

    record = load_checkpoint(model).training["extras"]["verification"]
    assert record["at"] == "far=0.1" and record["far"] <= 0.1
    assert record["trials"] == str(trials.resolve())
    non = scores[labels == 0]
    assert np.mean(non >= record["threshold"]) <= 0.1
    assert main(["verify", a, b, "--checkpoint", str(model)]) == 0
    line = capsys.readouterr().out
    verdict = "accept" if pair_score >= record["threshold"] else "reject"
    assert f"score {pair_score:.4f}  {verdict}  (threshold {record['threshold']:.4f}" in line
    assert "calibrated at far=0.1 on" in line and str(trials.resolve()) in line
    # score reports the rates at the stored threshold (same norm)
    assert main(["sv", "score", *base, "--out", str(out)]) == 0
    assert (
        f"at the stored threshold {record['threshold']:.4f} (far=0.1 on" in capsys.readouterr().out
    )
    stored = json.loads(out.with_suffix(".json").read_text())["stored_threshold"]
    assert stored["far"] == pytest.approx(record["far"]) and stored["frr"] == pytest.approx(
        record["frr"]
    )


def test_calibration_with_a_norm_stores_the_cohort(corpus, model, tmp_path, capsys):
    manifest, cohort = corpus
    trials = tmp_path / "trials.tsv"
    main(["sv", "trials", str(manifest), "--out", str(trials), "--per-speaker", "3"])
    argv = ["sv", "calibrate", "--checkpoint", str(model), "--trials", str(trials)]
    assert main([*argv, "--norm", "s", "--cohort", str(cohort), "--no-progress"]) == 0
    out = tmp_path / "s.tsv"
    score = ["sv", "score", "--checkpoint", str(model), "--trials", str(trials), "--out", str(out)]
    assert main([*score, "--norm", "s", "--cohort", str(cohort), "--no-progress"]) == 0
    rows = _rows(out)
    capsys.readouterr()
    assert main(["verify", rows[0]["enrol"], rows[0]["test"], "--checkpoint", str(model)]) == 0
    line = capsys.readouterr().out
    assert line.startswith(f"score {float(rows[0]['score']):.4f}") and "norm s," in line
    # the same into a verifier folder (the model file stays as it is), with adaptive s-norm
    folder = tmp_path / "verifier"
    as_norm = ["--norm", "as", "--top-k", "2", "--cohort", str(cohort), "--no-progress"]
    assert main([*argv, *as_norm, "--at", "far=0.2", "--out", str(folder)]) == 0
    assert (folder / "verification.json").is_file() and (folder / "cohort.npy").is_file()
    assert main([*score, *as_norm]) == 0
    rows = _rows(out)
    capsys.readouterr()
    assert main(["verify", rows[1]["enrol"], rows[1]["test"], "--checkpoint", str(folder)]) == 0
    line = capsys.readouterr().out
    got = float(line.split()[1])  # padded batches differ in the last bits, top-2 std is small
    assert got == pytest.approx(float(rows[1]["score"]), rel=1e-3) and "norm as," in line
    assert "calibrated at far=0.2" in line and str(folder) in line
    # a cohort that shares speakers with the trials is refused
    assert main([*score, "--norm", "z", "--cohort", str(manifest)]) == 1
    assert "shares" in capsys.readouterr().err


def test_scoring_speakers_the_model_was_trained_on_is_flagged(corpus, model, tmp_path, caplog):
    import dataclasses

    from vocalis.checkpoint import load_checkpoint, save_checkpoint

    manifest, _ = corpus
    ckpt = load_checkpoint(model)
    extras = {"train_speakers": ["s1", "zz"]}
    save_checkpoint(model, dataclasses.replace(ckpt, training={**ckpt.training, "extras": extras}))
    trials = tmp_path / "trials.tsv"
    argv = ["sv", "trials", str(manifest), "--out", str(trials), "--per-speaker", "2"]
    assert main([*argv, "--exclude-speakers-of", str(model)]) == 1  # refused from the checkpoint
    assert main([*argv, "--exclude-speakers-of", str(model), "--allow-overlap"]) == 0
    out = tmp_path / "scores.tsv"
    assert (
        main(
            ["sv", "score", "--checkpoint", str(model), "--trials", str(trials), "--out", str(out)]
        )
        == 0
    )
    assert json.loads(out.with_suffix(".json").read_text())["training_speakers_in_trials"] == ["s1"]
    assert "1 of the 4 trial speakers were seen in training" in caplog.text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--norm", "as"], "--norm as needs a cohort"),
        (["--cohort", "c.csv"], "--cohort is used by a score normalisation"),
        (["--at", "far=2"], "--at 'far=2': expected eer or far=RATE"),
        (["--at", "frr=0.1"], "expected eer or far=RATE"),
    ],
)
def test_option_mistakes_are_refused_before_loading_anything(extra, message, capsys):
    argv = ["sv", "calibrate", "--checkpoint", "/nonexistent/model.pt", "--trials", "t.tsv"]
    assert main([*argv, *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "nonexistent" not in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("verb", ["score", "calibrate"])
def test_sv_refuses_a_store_url_as_out_before_embedding(tmp_path, monkeypatch, capsys, verb):
    """Scores, plots and verifier folders are local files: a URL is one line, not a 'gs:' dir."""
    monkeypatch.chdir(tmp_path)
    trials = tmp_path / "trials.tsv"
    trials.write_text("1\ta.wav\tb.wav\n0\ta.wav\tc.wav\n")  # clips that do not exist
    argv = ["sv", verb, "--checkpoint", "ge2e", "--trials", str(trials)]
    assert main([*argv, "--out", "gs://bucket/sv/out.tsv"]) == 1
    err = capsys.readouterr().err.strip()
    assert "--out gs://bucket/sv/out.tsv: this output is written to local files only" in err
    assert len(err.splitlines()) == 1
    assert not (tmp_path / "gs:").exists()
