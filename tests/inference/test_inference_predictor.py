"""Predictor: checkpoint round trip, batching, failures, resumable CSV, inputs."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from _inference_helpers import CLASSES, build_checkpoint, synth_clip

from vocalis.errors import DataError, ModelError
from vocalis.inference.predictor import Predictor, pad_batch, predict


@pytest.fixture(scope="module")
def tier1(tier1_ckpt):
    return Predictor.from_checkpoint(tier1_ckpt)


@pytest.fixture(scope="module")
def ecapa(ecapa_ckpt):
    return Predictor.from_checkpoint(ecapa_ckpt)


def _files(clips_dir):
    return [clips_dir / "a.wav", clips_dir / "sub" / "b.wav", clips_dir / "c.flac"]


@pytest.mark.parametrize("name", ["tier1", "ecapa"])
def test_predict_file_is_a_distribution(request, clips_dir, name):
    predictor = request.getfixturevalue(name)
    pred = predictor.predict_file(clips_dir / "a.wav")
    assert predictor.classes == CLASSES
    assert list(pred.probs) == list(CLASSES)
    assert math.isclose(sum(pred.probs.values()), 1.0, abs_tol=1e-5)
    assert pred.label == max(pred.probs, key=pred.probs.get)
    assert pred.confidence == pred.probs[pred.label]
    assert pred.duration_s == pytest.approx(1.0, abs=1e-3)
    assert pred.id == "a"


@pytest.mark.parametrize("name", ["tier1", "ecapa"])
def test_padded_batch_equals_single_files(request, clips_dir, name):
    predictor = request.getfixturevalue(name)
    batch = predictor.predict_many(_files(clips_dir), batch_size=3, progress=False)
    assert [p.path for p in batch] == [str(p) for p in _files(clips_dir)]
    for pred in batch:
        alone = predictor.predict_file(pred.path)
        diff = max(abs(pred.probs[c] - alone.probs[c]) for c in CLASSES)
        assert diff < 1e-5, (pred.path, diff)


def test_resampled_input_matches_file(tier1, clips_dir):
    import soundfile as sf

    samples, sr = sf.read(clips_dir / "c.flac", dtype="float32")
    assert sr == 22050
    a = tier1.predict_waveform(samples, sr)
    b = tier1.predict_file(clips_dir / "c.flac")
    assert a.duration_s == pytest.approx(0.7, abs=1e-3)
    assert max(abs(a.probs[c] - b.probs[c]) for c in CLASSES) < 1e-6


def test_unreadable_files_are_skipped_and_collected(tier1, clips_dir, caplog):
    paths = [clips_dir / "broken.wav", clips_dir / "a.wav", clips_dir / "missing.wav"]
    result = tier1.predict_many(paths, batch_size=2, progress=False)
    assert [p.id for p in result] == ["a"]
    assert [f.path for f in result.failures] == [str(paths[0]), str(paths[2])]
    for failure in result.failures:
        assert "\n" not in failure.error and failure.path in failure.error
    assert sum("skipped" in r.message for r in caplog.records) == 2


def test_global_normalisation_statistics_are_applied(ckpt_dir, clips_dir):
    from vocalis.checkpoint import load_checkpoint, save_checkpoint

    path = build_checkpoint(ckpt_dir / "norm.pt", "tier1", "fbank", "global", seed=3)
    base = Predictor.from_checkpoint(path).predict_file(clips_dir / "a.wav")
    ckpt = load_checkpoint(path)
    state = ckpt.normalization.state
    state["sum"] += 5.0 * state["count"]
    save_checkpoint(ckpt_dir / "norm_shifted.pt", ckpt)
    shifted = Predictor.from_checkpoint(ckpt_dir / "norm_shifted.pt").predict_file(
        clips_dir / "a.wav"
    )
    assert max(abs(base.probs[c] - shifted.probs[c]) for c in CLASSES) > 1e-4


def test_speaker_normalisation_uses_pooled_statistics(ckpt_dir, clips_dir):
    glob = build_checkpoint(ckpt_dir / "g.pt", "tier1", "fbank", "global", seed=4)
    spk = build_checkpoint(ckpt_dir / "s.pt", "tier1", "fbank", "speaker", seed=4)
    a = Predictor.from_checkpoint(glob).predict_file(clips_dir / "a.wav")
    b = Predictor.from_checkpoint(spk).predict_file(clips_dir / "a.wav")
    assert max(abs(a.probs[c] - b.probs[c]) for c in CLASSES) < 1e-6


def test_missing_and_bad_checkpoints_raise_model_error(tmp_path, monkeypatch):
    with pytest.raises(ModelError, match="not found"):
        Predictor.from_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match="not a checkpoint"):
        Predictor.from_checkpoint(tmp_path / "junk.pt")
    import vocalis.inference.locate as locate

    monkeypatch.setattr(locate, "BUNDLED_MODEL", "no_such_model.pt")
    with pytest.raises(ModelError, match="no bundled model in this install; pass --checkpoint"):
        Predictor.from_checkpoint(None)


def test_checkpoint_resolves_run_folder_run_model_and_file(tier1_ckpt, ecapa_ckpt, tmp_path):
    import shutil

    from vocalis.inference import resolve_checkpoint

    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    shutil.copy(tier1_ckpt, run / "checkpoints" / "best.pt")
    assert resolve_checkpoint(run) == run / "checkpoints" / "best.pt"  # unfinished run
    shutil.copy(ecapa_ckpt, run / "model.pt")
    assert resolve_checkpoint(run) == run / "model.pt"  # model.pt wins
    assert resolve_checkpoint(run / "model") == run / "model.pt"
    assert resolve_checkpoint(str(run / "model.pt")) == str(run / "model.pt")
    assert Predictor.from_checkpoint(run / "model").pipeline.model_name == "ecapa"
    assert Predictor.from_checkpoint(run).pipeline.model_name == "ecapa"
    with pytest.raises(ModelError, match=r"without model\.pt or checkpoints/best\.pt"):
        Predictor.from_checkpoint(tmp_path)


def test_inconsistent_weights_raise_model_error(ckpt_dir, tmp_path):
    from vocalis.checkpoint import load_checkpoint, save_checkpoint

    ckpt = load_checkpoint(build_checkpoint(ckpt_dir / "w.pt", "tier1"))
    ckpt.model.config["lstm_hidden"] = 12
    save_checkpoint(tmp_path / "bad.pt", ckpt)
    with pytest.raises(ModelError, match="weights do not fit"):
        Predictor.from_checkpoint(tmp_path / "bad.pt")


def test_pad_batch_lengths_are_integers():
    batch, lengths = pad_batch([torch.ones(5), torch.ones(2)])
    assert lengths.dtype == torch.int64 and lengths.tolist() == [5, 2]
    assert batch.shape == (2, 5) and float(batch[1, 2:].abs().sum()) == 0.0


def test_level_norm_matches_tier0_normalize():
    from vocalis.audio.level import normalize
    from vocalis.inference.pipeline import LevelNorm

    waves = [torch.from_numpy(synth_clip(s, i)) * 0.3 for i, s in enumerate((0.4, 1.0))]
    waves.append(torch.zeros(3000))
    batch, lengths = pad_batch(waves)
    for method in ("peak", "rms"):
        out = LevelNorm(method, -23.0)(batch, lengths)
        for i, w in enumerate(waves):
            ref = normalize(w, method, target_rms_db=-23.0)
            assert torch.allclose(out[i, : w.shape[0]], ref, atol=1e-6), method


def test_predict_folder_to_resumable_csv(tier1_ckpt, clips_dir, tmp_path):
    out = tmp_path / "preds.csv"
    first = predict(clips_dir, tier1_ckpt, out=out, progress=False, chunk_size=1)
    assert sorted(p.id for p in first) == ["a", "b", "c"]
    assert [f.path for f in first.failures] == [str(clips_dir / "broken.wav")]
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == [
        "id",
        "path",
        "label",
        "confidence",
        "speech",
        *[f"p_{c}" for c in CLASSES],
    ]
    assert all(0.0 <= float(row["speech"]) <= 1.0 for row in rows)
    for row in rows:
        assert math.isclose(sum(float(row[f"p_{c}"]) for c in CLASSES), 1.0, abs_tol=1e-4)
    text = out.read_text()
    again = predict(clips_dir, tier1_ckpt, out=out, progress=False)
    assert len(again) == 0 and out.read_text() == text
    # drop one row: a rerun predicts only that file and appends it
    lines = text.splitlines(keepends=True)
    out.write_text("".join(lines[:-1]))
    third = predict(clips_dir, tier1_ckpt, out=out, progress=False)
    assert len(third) == 1 and len(list(csv.DictReader(out.open()))) == 3


def test_resume_refuses_a_csv_of_another_model(tier1_ckpt, clips_dir, tmp_path):
    out = tmp_path / "other.csv"
    out.write_text("id,path,label,confidence,p_x\n")
    with pytest.raises(DataError, match="existing CSV has columns"):
        predict(clips_dir / "a.wav", tier1_ckpt, out=out, progress=False)


def test_manifest_without_labels_and_with_aliases(tier1, clips_dir, tmp_path):
    from vocalis.inference.inputs import collect_inputs

    m1 = clips_dir / "m1.csv"
    m1.write_text("path,id\na.wav,first\nsub/b.wav,second\n")
    assert collect_inputs(m1) == [
        (str(clips_dir / "a.wav"), "first"),
        (str(clips_dir / "sub" / "b.wav"), "second"),
    ]
    m2 = clips_dir / "m2.csv"
    m2.write_text("file_path,emotion_code\na.wav,W\n")
    preds = predict(m2, predictor=tier1, progress=False)
    assert [p.path for p in preds] == [str(clips_dir / "a.wav")]
    with pytest.raises(DataError, match="no audio files"):
        collect_inputs(tmp_path)


@pytest.mark.emodb
def test_real_clips_batch_equals_single(tier1, emodb_path):
    files = sorted((emodb_path / "wav").glob("*.wav"))[:5]
    batch = tier1.predict_many(files, batch_size=5, progress=False)
    assert len(batch) == 5
    for pred in batch:
        alone = tier1.predict_file(pred.path)
        assert np.allclose(list(pred.probs.values()), list(alone.probs.values()), atol=1e-5)


def test_model_kinds_registry_builds_the_checkpoints_kind(tmp_path, monkeypatch):
    from vocalis.checkpoint import save_checkpoint
    from vocalis.errors import ConfigError
    from vocalis.inference import MODEL_KINDS

    class Constant(torch.nn.Module):
        def __init__(self, probs: torch.Tensor) -> None:
            super().__init__()
            self.register_buffer("probs", probs)

        def forward(self, wav: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            return self.probs.expand(wav.shape[0], -1)

    seen = []

    def build(ckpt):
        seen.append(ckpt.model.config)
        return Constant(ckpt.model_state["probs"])

    monkeypatch.setitem(MODEL_KINDS._items, "constant", build)
    payload = {
        "model": {"kind": "constant", "name": "always", "config": {"k": 2}},
        "model_state": {"probs": torch.tensor([0.25, 0.75])},
        "pipeline": {"tier0": {}, "features": None},
        "normalization": {"mode": "none", "state": None},
        "labels": {"classes": ["no", "yes"]},
    }
    save_checkpoint(tmp_path / "c.pt", payload)
    predictor = Predictor.from_checkpoint(tmp_path / "c.pt")
    pred = predictor.predict_waveform(synth_clip(0.5), 16000)
    assert pred.label == "yes" and pred.probs == {"no": 0.25, "yes": 0.75}
    assert seen == [{"k": 2}] and predictor.info()["kind"] == "constant"
    assert predictor.info()["features"] is None
    with pytest.raises(ModelError, match="'constant' model has no feature extractor"):
        predictor.pipeline.features_to_probs()
    save_checkpoint(tmp_path / "u.pt", {**payload, "model": {"kind": "nope", "name": "x"}})
    with pytest.raises(ConfigError, match=r"unknown model kind 'nope'.*constant.*neural"):
        Predictor.from_checkpoint(tmp_path / "u.pt")
