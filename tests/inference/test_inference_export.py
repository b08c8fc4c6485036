"""Export: the ONNX-friendly spectra, and TorchScript / ONNX parity with the served PyTorch path."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
import torch
from _inference_helpers import CLASSES, synth_clip

from vocalis.errors import ConfigError
from vocalis.inference.export import export, read_metadata
from vocalis.inference.predictor import Predictor

TOL = 1e-4

needs_ort = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None,
    reason="onnx / onnxruntime not installed (pip install 'vocalis[export]')",
)


@pytest.mark.parametrize("name", ["mfcc", "fbank"])
def test_export_friendly_extractor_matches_the_fft_path(name):
    from vocalis.features import FeatureConfig, build_extractor

    x = torch.from_numpy(synth_clip(0.8, 4))
    extractor = build_extractor(FeatureConfig(name=name))
    ref = extractor(x)
    extractor.export_friendly = True
    got = extractor(x)
    assert got.shape == ref.shape
    assert float((got - ref).abs().max()) < 1e-3 * float(ref.abs().max())


def _clips():
    """Synthetic clips of several lengths plus the bundled real samples (16 kHz)."""
    import soundfile as sf

    from vocalis.testing import samples_dir

    clips = [synth_clip(s, i) for i, s in enumerate((0.35, 1.1, 2.7))]
    files = sorted((samples_dir() / "wav").glob("*.wav"))[:3]
    clips += [sf.read(f, dtype="float32")[0] for f in files]
    return clips


def _runner(path, fmt):
    if fmt == "onnx":
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        return lambda x, n: sess.run(["probs"], {"waveform": x, "lengths": n})[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path))
    return lambda x, n: module(torch.from_numpy(x), torch.from_numpy(n)).numpy()


@pytest.mark.parametrize(
    "model,fmt",
    [
        pytest.param("tier1", "onnx", marks=needs_ort),
        ("tier1", "torchscript"),
        pytest.param("ecapa", "onnx", marks=needs_ort),
        ("ecapa", "torchscript"),
    ],
)
def test_exported_graph_matches_the_predictor(request, tmp_path, model, fmt):
    ckpt = request.getfixturevalue(f"{model}_ckpt")
    out = tmp_path / f"m.{'onnx' if fmt == 'onnx' else 'pt'}"
    report = export(ckpt, out, format=fmt)
    assert report.max_abs_diff < TOL and report.padded_batches
    meta = read_metadata(out)
    assert meta["classes"] == list(CLASSES) and meta["sample_rate"] == 16000
    assert meta["input"] == "waveform" and meta["padded_batches"] is True
    run = _runner(out, fmt)
    predictor = Predictor.from_checkpoint(ckpt)
    clips = _clips()
    expected = []
    for clip in clips:  # one clip per call, any length
        ref = np.array(list(predictor.predict_waveform(clip, 16000).probs.values()))
        got = run(clip[None, :].astype(np.float32), np.array([len(clip)], dtype=np.int64))[0]
        assert np.abs(got - ref).max() < TOL, (len(clip), np.abs(got - ref).max())
        expected.append(ref)
    # a zero-padded batch with lengths gives every clip's own probabilities
    n = np.array([len(c) for c in clips], dtype=np.int64)
    batch = np.zeros((len(clips), n.max()), dtype=np.float32)
    for i, c in enumerate(clips):
        batch[i, : len(c)] = c
    assert np.abs(run(batch, n) - np.stack(expected)).max() < TOL


@needs_ort
def test_feature_input_export(tier1_ckpt, tmp_path):
    import onnxruntime as ort

    from vocalis.inference.pipeline import load_pipeline

    report = export(tier1_ckpt, tmp_path / "f.onnx", input="features")
    assert report.max_abs_diff < TOL
    pipe = load_pipeline(tier1_ckpt)
    clip = torch.from_numpy(synth_clip(1.3, 9))
    feats = pipe.extractor(clip / clip.abs().max())[None]
    frames = np.array([feats.shape[-1]], dtype=np.int64)
    sess = ort.InferenceSession(str(tmp_path / "f.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(["probs"], {"features": feats.numpy(), "lengths": frames})[0][0]
    ref = list(Predictor(pipe).predict_waveform(clip.numpy(), 16000).probs.values())
    assert np.abs(got - np.array(ref)).max() < TOL


@needs_ort
def test_pitch_features_need_features_input_for_onnx(ckpt_dir, tmp_path, capfd, checkpoint_builder):
    from vocalis.errors import ModelError

    ckpt = checkpoint_builder(ckpt_dir / "pitch.pt", "ecapa", "mfbe_pitch", "global")
    with pytest.raises(ModelError, match="--input features") as err:
        export(ckpt, tmp_path / "p.onnx")
    assert "\n" not in str(err.value) and not (tmp_path / "p.onnx").exists()
    assert "Torch IR graph" not in capfd.readouterr().out  # the exporter's dump is silenced
    report = export(ckpt, tmp_path / "p.onnx", input="features")
    assert report.max_abs_diff < TOL and report.padded_batches


def test_bad_export_options(tier1_ckpt, tmp_path):
    with pytest.raises(ConfigError, match="format"):
        export(tier1_ckpt, tmp_path / "x", format="tflite")
    with pytest.raises(ConfigError, match="opset"):
        export(tier1_ckpt, tmp_path / "x.onnx", opset=13)


def test_a_graph_that_fails_on_other_lengths_is_one_error_and_no_file(
    tier1_ckpt, tmp_path, monkeypatch
):
    """A traced graph with the example's shapes baked in fails in the parity check."""
    from vocalis.errors import ModelError
    from vocalis.inference import export as export_module

    def baked(self, x, lengths):
        raise RuntimeError("shape '[2, 24, -1]' is invalid for input of size 0\nmore lines")

    monkeypatch.setattr(export_module._Runner, "__call__", baked)
    with pytest.raises(ModelError) as err:
        export(tier1_ckpt, tmp_path / "m.pt", format="torchscript")
    msg = str(err.value)
    assert "fails on clips of other lengths" in msg and "[2, 24, -1]" in msg
    assert "\n" not in msg and not (tmp_path / "m.pt").exists()


@needs_ort
@pytest.mark.emodb
def test_onnx_parity_on_real_emodb_clips(ecapa_ckpt, emodb_path, tmp_path):
    import soundfile as sf

    export(ecapa_ckpt, tmp_path / "e.onnx")
    run = _runner(tmp_path / "e.onnx", "onnx")
    predictor = Predictor.from_checkpoint(ecapa_ckpt)
    files = sorted((emodb_path / "wav").glob("*.wav"))[::107]
    lengths = set()
    for f in files:
        clip = sf.read(f, dtype="float32")[0]
        lengths.add(len(clip))
        ref = np.array(list(predictor.predict_waveform(clip, 16000).probs.values()))
        got = run(clip[None], np.array([len(clip)], dtype=np.int64))[0]
        assert np.abs(got - ref).max() < TOL
    assert len(lengths) == len(files) >= 4


@needs_ort
def test_encoder_features_of_ge2e_predict_and_export_like_the_ge2e_preset(
    checkpoint_builder, ckpt_dir, tmp_path
):
    """``encoder`` frames (GE2E source, shipped weights) through Predictor and ONNX."""
    from vocalis.features import FeatureConfig, feature_dim

    for cfg in (FeatureConfig(name="ge2e"), FeatureConfig(name="encoder", encoder_layers=(2,))):
        feature_dim(cfg)  # build (and cache) the extractors before the builder seeds torch,
        # so both checkpoints get the same random model whatever ran earlier in the session
    preset = checkpoint_builder(ckpt_dir / "ge2e.pt", "tier1", "ge2e", "global")
    same = checkpoint_builder(
        ckpt_dir / "enc_ge2e2.pt",
        "tier1",
        "encoder",
        "global",
        feature_overrides={"encoder_source": "ge2e", "encoder_layers": (2,)},
    )
    mixed = checkpoint_builder(
        ckpt_dir / "enc_ge2e12.pt",
        "tier1",
        "encoder",
        "global",
        feature_overrides={"encoder_source": "ge2e", "encoder_layers": (1, 2)},
    )
    clips = _clips()
    by_preset, by_encoder = Predictor.from_checkpoint(preset), Predictor.from_checkpoint(same)
    for clip in clips:  # the preset and its encoder spelling give the same numbers
        a = by_preset.predict_waveform(clip, 16000).probs
        assert a == by_encoder.predict_waveform(clip, 16000).probs
    out = tmp_path / "m.onnx"
    report = export(mixed, out, format="onnx")
    assert report.max_abs_diff < TOL and report.padded_batches
    assert read_metadata(out)["features"]["encoder_layers"] == [1, 2]
    run, predictor = _runner(out, "onnx"), Predictor.from_checkpoint(mixed)
    expected = []
    for clip in clips:
        ref = np.array(list(predictor.predict_waveform(clip, 16000).probs.values()))
        got = run(clip[None, :].astype(np.float32), np.array([len(clip)], dtype=np.int64))[0]
        assert np.abs(got - ref).max() < TOL, (len(clip), np.abs(got - ref).max())
        expected.append(ref)
    n = np.array([len(c) for c in clips], dtype=np.int64)
    batch = np.zeros((len(clips), n.max()), dtype=np.float32)
    for i, c in enumerate(clips):
        batch[i, : len(c)] = c
    assert np.abs(run(batch, n) - np.stack(expected)).max() < TOL
