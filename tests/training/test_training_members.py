"""Seed ensembles (``train.members``): layout, averaging, resume, growth, errors, deployment."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from _training_helpers import tiny_overrides

from vocalis.checkpoint import load_checkpoint
from vocalis.errors import ConfigError
from vocalis.inference.predictor import Predictor
from vocalis.models.members import MemberAverage
from vocalis.training import load_config, train
from vocalis.training.estimator import NeuralEstimator

TEST_ROWS = [0, 1, 2, 3]


def _cfg(manifest, *extra, members=3, epochs=2):
    return load_config(
        None, [*tiny_overrides(manifest, epochs), f"train.members={members}", *extra]
    )


@pytest.fixture(scope="module")
def ensemble(corpus, tmp_path_factory):
    """A 3-member run with test rows: (run folder, result)."""
    out = tmp_path_factory.mktemp("members") / "run"
    return out, train(_cfg(corpus), out, test_indices=TEST_ROWS, progress=False)


def _probs(checkpoint: Path, clips: list[np.ndarray]) -> np.ndarray:
    predictor = Predictor.from_checkpoint(checkpoint)
    return np.array([list(predictor.predict_waveform(c, 16000).probs.values()) for c in clips])


def _clips(manifest: Path, n: int = 5) -> list[np.ndarray]:
    paths = [line.split(",")[0] for line in manifest.read_text().splitlines()[1:]][:n]
    return [sf.read(p, dtype="float32")[0] for p in paths]


def test_members_are_runs_of_their_own_and_model_pt_holds_them_all(ensemble):
    out, result = ensemble
    for k in range(3):
        member = out / "members" / str(k)
        assert (member / "model.pt").is_file() and (member / "history.csv").is_file()
        assert f"seed: {k}" in (member / "config.yaml").read_text()
        assert "members: 1" in (member / "config.yaml").read_text()
    assert "members: 3" in (out / "config.yaml").read_text()
    ckpt = load_checkpoint(out / "model.pt")
    assert ckpt.model.members == 3 and ckpt.model.to_dict()["members"] == 3
    assert {k.split(".")[1] for k in ckpt.model_state} == {"0", "1", "2"}
    assert isinstance(result.model, MemberAverage) and len(result.model.members) == 3
    # every member validated on the same rows; their seeds (hence weights) differ
    splits = [json.loads((out / "members" / str(k) / "metrics.json").read_text()) for k in range(3)]
    assert len({json.dumps(m["n_rows"]) for m in splits}) == 1
    w = [load_checkpoint(out / "members" / str(k) / "model.pt").model_state for k in range(3)]
    name = next(iter(w[0]))
    assert not torch.equal(w[0][name], w[1][name])
    metrics = json.loads((out / "metrics.json").read_text())
    folders = [m["folder"] for m in metrics["details"]["members"]]
    assert folders == ["members/0", "members/1", "members/2"]
    assert metrics["val"]["uar"] == pytest.approx(result.best_metrics["val_uar"])
    assert metrics["test"]["uar"] == pytest.approx(result.test_metrics["uar"])
    assert metrics["n_rows"]["test"] == len(TEST_ROWS)
    assert len((out / "predictions.csv").read_text().splitlines()) == len(TEST_ROWS) + 1
    log = (out / "log.txt").read_text()
    assert "Training 3 members" in log and "Test (ensemble of 3)" in log


def test_the_ensemble_predicts_the_mean_of_its_members(ensemble, corpus):
    out, _ = ensemble
    clips = _clips(corpus)
    members = [_probs(out / "members" / str(k) / "model.pt", clips) for k in range(3)]
    got = _probs(out / "model.pt", clips)
    assert np.abs(got - np.mean(members, axis=0)).max() < 1e-6
    assert np.allclose(got.sum(1), 1.0, atol=1e-6)


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max(float((sa[k].float() - sb[k].float()).abs().max()) for k in sa)


def test_a_killed_ensemble_resumes_bit_identically(corpus, tmp_path, monkeypatch):
    # 12 training rows, batch 4: 3 steps per epoch, 9 per member; augmentation draws too
    cfg = _cfg(corpus, "augment.spec_mask.p=1", "augment.mixup.p=1", members=2, epochs=3)
    full = train(cfg, tmp_path / "full", progress=False)
    cut = tmp_path / "cut"
    # member 0 is killed mid-epoch 2; resumed, it finishes and member 1 is killed mid-epoch 3
    for after in (4, 7):
        monkeypatch.setenv("VOCALIS_INTERRUPT_AFTER_STEPS", str(after))
        with pytest.raises(KeyboardInterrupt):
            train(cfg, cut, progress=False)
    assert (cut / "members" / "0" / "model.pt").is_file()
    assert (cut / "members" / "1" / "checkpoints" / "last.pt").is_file()
    assert not (cut / "members" / "1" / "model.pt").exists() and not (cut / "model.pt").exists()
    monkeypatch.delenv("VOCALIS_INTERRUPT_AFTER_STEPS")
    resumed = train(cfg, cut, progress=False)
    assert _max_diff(full.model, resumed.model) == 0.0
    assert resumed.best_metrics == pytest.approx(full.best_metrics)
    assert "Resuming 2 members" in (cut / "log.txt").read_text()


def test_members_can_grow_and_keep_the_trained_ones(corpus, tmp_path):
    out = tmp_path / "run"
    two = train(_cfg(corpus, members=2), out, progress=False)
    history = (out / "members" / "1" / "history.csv").read_text()
    three = train(_cfg(corpus, members=3), out, progress=False)
    assert len(three.model.members) == 3 and (out / "members" / "2" / "model.pt").is_file()
    assert (out / "members" / "1" / "history.csv").read_text() == history  # not retrained
    assert _max_diff(two.model.members[1], three.model.members[1]) == 0.0
    assert load_checkpoint(out / "model.pt").model.members == 3


def test_bad_members_settings_are_one_line_errors(corpus):
    with pytest.raises(ConfigError, match=r"train\.members: got 0, expected a whole number >= 1"):
        _cfg(corpus, members=0)
    with pytest.raises(ConfigError, match=r"train\.members=2 averages one class head"):
        _cfg(corpus, "dataset.label_columns=[label,gender]", members=2)  # before any fold


def test_the_estimator_saves_and_cross_validation_scores_the_ensemble(corpus, tmp_path):
    from vocalis.data import read_manifest

    rows = read_manifest(corpus)
    estimator = NeuralEstimator(_cfg(corpus, members=2), progress=False)
    speakers = np.array(rows.column("speaker"))
    train_idx = np.flatnonzero(speakers != "s1")
    test_idx = np.flatnonzero(speakers == "s1")
    fitted = estimator.fit(rows, train_idx[:-2], train_idx[-2:], tmp_path / "fold")
    proba = fitted.predict_proba(rows, test_idx)
    assert proba.shape == (len(test_idx), 2) and np.allclose(proba.sum(1), 1.0, atol=1e-5)
    fitted.save(tmp_path / "saved.pt")
    saved = load_checkpoint(tmp_path / "saved.pt")
    assert saved.model.members == 2 and "optimizer" not in saved.training


@pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="onnx / onnxruntime not installed (pip install 'vocalis[export]')",
)
def test_the_ensemble_exports_to_onnx_with_parity(ensemble, corpus, tmp_path):
    from vocalis.inference.export import export

    out, _ = ensemble
    report = export(out / "model.pt", tmp_path / "m.onnx")
    assert report.max_abs_diff < 1e-4 and report.padded_batches


def test_cli_trains_and_predicts_with_an_ensemble(corpus, tmp_path, capsys):
    from vocalis.cli.main import main

    out = tmp_path / "cli"
    args = ["train", "--out", str(out), "--no-progress", *tiny_overrides(corpus, 1)]
    assert main([*args, "train.members=2"]) == 0
    assert "best epoch" in capsys.readouterr().out
    clip = _clips(corpus, 1)[0]
    wav = tmp_path / "clip.wav"
    sf.write(wav, clip, 16000)
    assert main(["predict", str(wav), "--checkpoint", str(out / "model.pt")]) == 0
    printed = capsys.readouterr().out
    assert "high" in printed or "low" in printed


def test_an_ensemble_trains_in_memory_without_a_folder(corpus):
    result = train(_cfg(corpus, members=2, epochs=1), None, progress=False)
    assert result.out_dir is None and len(result.model.members) == 2
    assert 0.0 <= result.best_metrics["val_uar"] <= 1.0 and result.history == []
