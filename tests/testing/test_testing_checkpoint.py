"""The tiny real checkpoint of vocalis.testing: trained by train(), predicted, exported."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vocalis.checkpoint import TRAINING_KEYS, load_checkpoint
from vocalis.inference import Predictor
from vocalis.testing import samples_dir, tiny_run
from vocalis.testing.checkpoints import TRAIN_CLIPS, VAL_CLIPS

CLIPS = [str(samples_dir() / p) for p in (*TRAIN_CLIPS, *VAL_CLIPS)]


@pytest.fixture(scope="module")
def run():
    return tiny_run()


def test_tiny_run_is_a_real_run_folder_with_a_slim_model(run):
    for name in ("config.yaml", "metrics.json", "checkpoints/best.pt", "model.pt"):
        assert (run / name).is_file(), name
    assert tiny_run() is run  # trained once per process
    model = load_checkpoint(run / "model.pt")
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert model.format_version == 2 and model.kind == "neural"
    assert model.classes == ("anger", "sadness") and model.normalization.mode == "global"
    assert not set(TRAINING_KEYS) & set(model.training) and "optimizer" in best.training
    assert all(torch.equal(model.model_state[k], v) for k, v in best.model_state.items())


def test_predictor_computes_what_training_computed(run):
    """The Predictor's probabilities equal the training path's (features, norm, model)."""
    from vocalis.features.normalize import FeatureNormalizer
    from vocalis.features.pipeline import PipelineConfig, extract_many
    from vocalis.inference.neural import first_head_probs, model_from_checkpoint

    ckpt = load_checkpoint(run / "model.pt")
    feats = extract_many(CLIPS, PipelineConfig(tier0=ckpt.tier0, features=ckpt.features)).features
    norm = FeatureNormalizer.from_state(ckpt.normalization.to_dict(), feats[0].shape[0])
    model = model_from_checkpoint(ckpt)
    with torch.no_grad():
        expected = [
            first_head_probs(model, norm.normalize(f)[None], torch.tensor([f.shape[1]]), 2)[0]
            for f in feats
        ]
    got = Predictor.from_checkpoint(run / "model").predict_many(CLIPS, progress=False)
    assert len(got) == len(CLIPS)
    for pred, ref in zip(got, expected, strict=True):
        assert np.abs(np.array(list(pred.probs.values())) - ref.numpy()).max() < 1e-5


def test_onnx_export_of_the_tiny_checkpoint_matches_the_predictor(run, tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from vocalis.inference.export import export, read_metadata

    report = export(run / "model", tmp_path / "tiny.onnx")
    assert report.max_abs_diff < 1e-4
    assert read_metadata(tmp_path / "tiny.onnx")["classes"] == ["anger", "sadness"]
    predictor = Predictor.from_checkpoint(run)
    sess = ort.InferenceSession(str(tmp_path / "tiny.onnx"), providers=["CPUExecutionProvider"])
    from vocalis.audio import load_audio

    for clip in CLIPS:
        wav = load_audio(clip, predictor.sample_rate, normalize="none").numpy()[None]
        (probs,) = sess.run(["probs"], {"waveform": wav, "lengths": np.array([wav.shape[1]])})
        ref = list(predictor.predict_file(clip).probs.values())
        assert np.abs(probs[0] - np.array(ref)).max() < 1e-4
