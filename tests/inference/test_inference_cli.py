"""Smoke tests of ``vocalis predict | embed | export`` and their one-line errors."""

from __future__ import annotations

import csv
import importlib.util
import json

import numpy as np
import pytest
from _inference_helpers import CLASSES

from vocalis.cli.main import main


def test_predict_one_file_table_and_json(tier1_ckpt, clips_dir, capsys):
    assert main(["predict", str(clips_dir / "a.wav"), "--checkpoint", str(tier1_ckpt)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{clips_dir / 'a.wav'}: ")
    assert all(c in out for c in CLASSES)
    assert (
        main(["predict", str(clips_dir / "a.wav"), "--checkpoint", str(tier1_ckpt), "--json"]) == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["label"] in CLASSES and set(data["probs"]) == set(CLASSES)


def test_predict_folder_to_csv(tier1_ckpt, clips_dir, tmp_path, capsys, caplog):
    out = tmp_path / "p.csv"
    args = ["predict", str(clips_dir), "--checkpoint", str(tier1_ckpt), "--out", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "3 new predictions" in err and "1 file(s) skipped" in err
    assert any("broken.wav" in r.getMessage() for r in caplog.records)
    assert len(list(csv.DictReader(out.open()))) == 3
    assert main(args) == 0
    assert "0 new predictions" in capsys.readouterr().err


def test_predict_without_bundled_model_is_one_line(clips_dir, monkeypatch, capsys):
    import vocalis.inference.locate as locate

    monkeypatch.setattr(locate, "BUNDLED_MODEL", "absent.pt")
    assert main(["predict", str(clips_dir / "a.wav")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no bundled model" in err and "--checkpoint" in err


@pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime not installed"
)
def test_embed_and_export_cli(ecapa_ckpt, clips_dir, tmp_path, capsys):
    npz = tmp_path / "e.npz"
    assert (
        main(
            [
                "embed",
                str(clips_dir / "a.wav"),
                "--checkpoint",
                str(ecapa_ckpt),
                "--type",
                "st",
                "--out",
                str(npz),
            ]
        )
        == 0
    )
    assert np.load(npz)["embeddings"].shape == (1, 12)
    onnx = tmp_path / "m.onnx"
    assert main(["export", "--checkpoint", str(ecapa_ckpt), "--out", str(onnx)]) == 0
    assert "padded batches exact" in capsys.readouterr().out and onnx.stat().st_size > 0


def test_embed_st_without_shared_layer_is_one_line(tier1_ckpt, clips_dir, tmp_path, capsys):
    rc = main(
        [
            "embed",
            str(clips_dir / "a.wav"),
            "--checkpoint",
            str(tier1_ckpt),
            "--type",
            "st",
            "--out",
            str(tmp_path / "x.npz"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.count("\n") == 0 and "shared" in err


@pytest.mark.parametrize("verb", ["predict", "embed", "export", "serve"])
def test_help(verb, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([verb, "--help"])
    assert exit_.value.code == 0
    assert "--checkpoint" in capsys.readouterr().out


def test_bundled_model_predicts_a_bundled_clip_offline(capsys):
    """``vocalis predict CLIP`` with no checkpoint: the shipped EmoDB model, no download."""
    from vocalis.inference.locate import bundled_checkpoint
    from vocalis.testing import sample_manifest

    ckpt = bundled_checkpoint()
    assert ckpt.stat().st_size < 10 * 2**20  # the packaging limit
    rows = list(sample_manifest())
    angry = [r["path"] for r in rows if r["label"] == "anger"]
    assert len(angry) == 2  # one clip of speaker 09 (female), one of speaker 11 (male)
    assert main(["predict", *angry, "--json"]) == 0
    reply = json.loads(capsys.readouterr().out)
    assert isinstance(reply, list) and len(reply) == 2
    for item in reply:
        probs = item["probs"]
        assert len(probs) == 7 and abs(sum(probs.values()) - 1) < 1e-4
        assert set(probs) == {r["label"] for r in rows}  # the 7 EmoDB emotions
        assert item["label"] == max(probs, key=probs.get)
        assert item["label"] == "anger", item  # shouted anger is the clearest EmoDB class


def test_bundled_model_recognises_the_bundled_clips():
    """The shipped model gets (nearly) every bundled clip right, one per emotion per speaker."""
    from vocalis.inference import Predictor
    from vocalis.testing import sample_manifest

    rows = list(sample_manifest())
    preds = Predictor.from_checkpoint().predict_many([r["path"] for r in rows], progress=False)
    assert len(preds) == len(rows) == 14 and not preds.failures
    wrong = [
        (r["path"], p.label) for r, p in zip(rows, preds, strict=True) if p.label != r["label"]
    ]
    assert len(wrong) <= 2, wrong


@pytest.mark.parametrize("kind", ["silence", "white_noise"])
def test_predict_says_no_speech_for_silence_and_noise(kind, tmp_path, capsys):
    """The bundled model on 3 s of digital silence or white noise: no emotion, 'no speech'."""
    from vocalis.testing import write_wav

    rng = np.random.default_rng(0)
    wav = np.zeros(48000, np.float32) if kind == "silence" else rng.uniform(-0.5, 0.5, 48000)
    clip = write_wav(tmp_path / f"{kind}.wav", wav.astype(np.float32))
    assert main(["predict", str(clip)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{clip}: no speech detected (speech 0% of 3.00 s")
    assert not any(f"({c}" in out for c in ("anger", "sadness", "neutral"))
    assert main(["predict", str(clip), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["label"] is None and data["answer"] == "no speech detected"
    assert data["speech"] == 0.0 and data["speech_detected"] is False
    # opting out classifies it anyway (the old behaviour)
    assert main(["predict", str(clip), "--json", "--no-speech-check"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["label"] is not None and data["speech"] is None


def test_predict_reports_the_speech_share_of_a_real_clip(capsys):
    from vocalis.testing import samples_dir

    clip = sorted((samples_dir() / "wav").glob("*.wav"))[0]
    assert main(["predict", str(clip), "--json", "--min-speech", "0.2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["speech_detected"] is True and 0.5 < data["speech"] <= 1.0
    assert data["answer"] == data["label"]
    # a threshold above the clip's share: no answer
    assert main(["predict", str(clip), "--json", "--min-speech", "1.0"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] is None


def test_predict_refuses_bad_options_before_loading(tmp_path, capsys, monkeypatch):
    import vocalis.inference.predictor as predictor

    def boom(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(predictor.Predictor, "from_checkpoint", boom)
    assert main(["predict", str(tmp_path / "absent.wav")]) == 1
    assert "absent.wav: no such file or folder" in capsys.readouterr().err
    clip = tmp_path / "x.wav"
    clip.write_bytes(b"")
    assert main(["predict", str(clip), "--checkpoint", str(tmp_path / "nope")]) == 1
    assert "--checkpoint" in capsys.readouterr().err
