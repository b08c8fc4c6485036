"""``vocalis tier0``: smoke tests of the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from vocalis.cli.main import main


@pytest.fixture()
def wav_path(tmp_path):
    sr = 22050
    t = np.arange(sr) / sr
    x = 0.3 * np.sin(2 * np.pi * 220 * t)
    x[: sr // 4] = x[-sr // 4 :] = 0.0  # a tone burst: spectral gating needs pauses
    x = (x + 1e-3 * np.random.default_rng(0).standard_normal(sr)).astype(np.float32)
    path = tmp_path / "tone.wav"
    sf.write(path, np.stack([x, x], axis=1), sr)
    return path


def test_json_report_and_save(wav_path, tmp_path, capsys):
    out = tmp_path / "out" / "clean.wav"
    rc = main(["tier0", str(wav_path), "--denoise", "spectral", "--json", "--save", str(out)])
    assert rc == 0
    report = json.loads(capsys.readouterr().out.strip())
    steps = {row["step"]: row for row in report["steps"]}
    assert list(steps) == ["decode", "mono", "resample", "denoise", "normalize"]
    assert steps["decode"]["sample_rate"] == 22050 and steps["decode"]["channels"] == 2
    assert steps["resample"]["sample_rate"] == 16000
    assert steps["normalize"]["duration_s"] == pytest.approx(1.0)
    assert steps["denoise"]["method"] == "spectral"
    saved, sr = sf.read(out, dtype="float32")
    assert sr == 16000 and saved.shape == (16000,)
    assert np.abs(saved).max() == pytest.approx(1.0, abs=1e-6)


def test_text_report_with_features(wav_path, capsys):
    features = pytest.importorskip("vocalis.features")
    if not hasattr(features, "extract"):
        pytest.skip("vocalis.features.extract not available yet")
    assert main(["tier0", str(wav_path), "--features", "mfcc"]) == 0
    out = capsys.readouterr().out
    assert "tone.wav" in out and "features:mfcc" in out and "shape 40x101" in out


def test_vad_report(wav_path, capsys):
    with pytest.warns(UserWarning, match="tone.wav"):  # a pure tone is not speech
        rc = main(["tier0", str(wav_path), "--vad", "--vad-threshold", "0.6", "--json"])
    assert rc == 0
    steps = json.loads(capsys.readouterr().out)["steps"]
    vad = next(row for row in steps if row["step"] == "vad")
    assert vad["speech_kept_pct"] == 100.0 and vad["fallback"] == "no speech detected"


def test_user_errors_are_one_line(tmp_path, capsys, monkeypatch):
    assert main(["tier0", str(tmp_path / "missing.wav")]) == 1
    err = capsys.readouterr().err.strip()
    assert "missing.wav" in err and "\n" not in err and "Traceback" not in err

    bad = tmp_path / "notes.wav"
    bad.write_text("hello")
    assert main(["tier0", str(bad)]) == 1
    assert "notes.wav: cannot decode" in capsys.readouterr().err

    monkeypatch.delenv("VOCALIS_DEMUCS_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    sf.write(tmp_path / "ok.wav", np.zeros(1600, dtype=np.float32), 16000)
    assert main(["tier0", str(tmp_path / "ok.wav"), "--denoise", "demucs"]) == 1
    assert "VOCALIS_DEMUCS_WEIGHTS" in capsys.readouterr().err

    with pytest.raises(SystemExit) as refused:  # refused while parsing, before any decoding
        main(["tier0", str(tmp_path / "ok.wav"), "--vad-threshold", "2"])
    assert refused.value.code == 2
    assert "--vad-threshold: got 2, expected a share in [0, 1]" in capsys.readouterr().err


def test_bad_choice_is_rejected_by_argparse(wav_path):
    with pytest.raises(SystemExit):
        main(["tier0", str(wav_path), "--denoise", "wiener"])
