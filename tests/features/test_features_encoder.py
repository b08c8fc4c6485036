"""``encoder`` frames and ``encoder_stats`` of any encoder: GE2E presets, tiny HF models, CLI."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from vocalis.encoders.ge2e import GE2EEncoder, save_weights, weights_digest
from vocalis.errors import ConfigError
from vocalis.features import FeatureConfig, PipelineConfig, build_extractor, extract
from vocalis.features.config import cache_identity
from vocalis.features.functionals import (
    FunctionalsConfig,
    compute_functionals,
    functionals_dim,
    functionals_key,
)
from vocalis.testing import synth_tone

HAS_TRANSFORMERS = importlib.util.find_spec("transformers") is not None
needs_transformers = pytest.mark.skipif(
    not HAS_TRANSFORMERS, reason="transformers not installed (pip install 'vocalis[ssl]')"
)


@pytest.fixture
def ge2e_weights(tmp_path: Path) -> str:
    torch.manual_seed(0)
    path = tmp_path / "ge2e.pt"
    save_weights(GE2EEncoder(), path)
    return str(path)


@pytest.fixture(scope="module")
def tiny_hf(tmp_path_factory) -> str:
    pytest.importorskip("transformers")
    from vocalis.testing import save_tiny_hf_encoder

    return str(save_tiny_hf_encoder(tmp_path_factory.mktemp("hf") / "w2v", "wav2vec2", "group"))


def _ge2e(weights: str, **kw) -> FeatureConfig:
    return FeatureConfig(name="encoder", encoder_source="ge2e", ge2e_weights=weights, **kw)


def _batch(*clips: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(c) for c in clips])
    batch = torch.zeros(len(clips), int(lengths.max()))
    for i, c in enumerate(clips):
        batch[i, : len(c)] = torch.as_tensor(c)
    return batch, lengths


def test_ge2e_is_the_encoder_preset_bit_for_bit(ge2e_weights: str):
    a, b = synth_tone(220.0, 0.5), synth_tone(440.0, 0.8, amplitude=0.01)
    batch, lengths = _batch(a, b)
    for layer in (1, 2, 3):
        preset = FeatureConfig(name="ge2e", ge2e_layer=layer, ge2e_weights=ge2e_weights)
        generic = _ge2e(ge2e_weights, encoder_layers=(layer,))
        assert torch.equal(extract(batch, preset, lengths), extract(batch, generic, lengths))
    stats = FunctionalsConfig("ge2e_stats", layers=(1, 3), weights=ge2e_weights)
    same = FunctionalsConfig("encoder_stats", layers=(1, 3), weights=ge2e_weights)
    assert torch.equal(compute_functionals(a, 16000, stats), compute_functionals(a, 16000, same))
    assert functionals_dim(same) == functionals_dim(stats) == 1024


def test_layers_are_mixed_as_asked(ge2e_weights: str):
    wav = torch.as_tensor(synth_tone(300.0, 0.4))
    enc = GE2EEncoder.from_pretrained(ge2e_weights)
    with torch.no_grad():
        h = [x[0].T for x in enc(wav[None]).hidden_states]  # (256, N) per layer
    mean12 = extract(wav, _ge2e(ge2e_weights, encoder_layers=(1, 2)))
    torch.testing.assert_close(mean12, (h[0] + h[1]) / 2)
    weighted = extract(
        wav, _ge2e(ge2e_weights, encoder_layers=(1, 3), encoder_layer_weights=(3, 1))
    )
    torch.testing.assert_close(weighted, 0.75 * h[0] + 0.25 * h[2])
    assert torch.equal(extract(wav, _ge2e(ge2e_weights, encoder_layers=(-1,))), h[2])
    assert torch.equal(extract(wav, _ge2e(ge2e_weights, encoder_layers=(-3,))), h[0])


def test_bad_layer_choices_are_one_line_config_errors(ge2e_weights: str):
    with pytest.raises(ConfigError, match=r"encoder layer 4: GE2EEncoder has layers 1 to 3"):
        build_extractor(_ge2e(ge2e_weights, encoder_layers=(4,)))
    with pytest.raises(ConfigError, match=r"features\.encoder_layers"):
        FeatureConfig(name="encoder", encoder_layers=(2, 2))
    with pytest.raises(ConfigError, match=r"features\.encoder_layer_weights.*one weight >= 0"):
        FeatureConfig(name="encoder", encoder_layers=(1, 2), encoder_layer_weights=(1.0,))
    with pytest.raises(ConfigError, match=r"functionals\.layers"):
        FunctionalsConfig("encoder_stats", layers=())
    with pytest.raises(ConfigError, match=r"layer 0: GE2EEncoder has layers 1 to 3") as err:
        compute_functionals(
            synth_tone(220.0, 0.3), 16000, FunctionalsConfig("encoder_stats", layers=(0,))
        )
    assert "\n" not in str(err.value)


def test_cache_keys_name_the_weights_and_the_layers(ge2e_weights: str):
    def key(**kw):
        return cache_identity(PipelineConfig(features=_ge2e(ge2e_weights, **kw)))

    first = key(encoder_layers=(2,))
    assert first["weights_identity"] == weights_digest(ge2e_weights)
    assert key(encoder_layers=(1, 2)) != first
    assert key(encoder_layers=(1, 2), encoder_layer_weights=(1, 3)) != key(encoder_layers=(1, 2))
    stats = functionals_key(FunctionalsConfig("encoder_stats", weights=ge2e_weights))
    assert stats["weights"] == weights_digest(ge2e_weights) and stats["encoder"] == "ge2e"
    weights_digest.cache_clear()
    torch.manual_seed(5)
    save_weights(GE2EEncoder(), ge2e_weights)  # same path, new weights: new keys
    assert key(encoder_layers=(2,)) != first
    assert functionals_key(FunctionalsConfig("encoder_stats", weights=ge2e_weights)) != stats


def test_features_that_read_no_encoder_keep_their_keys():
    """The encoder fields join no other extractor's or functionals set's key."""
    key = cache_identity(PipelineConfig(features=FeatureConfig(name="mfcc")))
    assert key["features"]["name"] == "mfcc"
    assert not any(k.startswith("encoder_") for k in key["features"])
    for name in ("lld_stats", "compare_2016", "ge2e_stats"):
        assert not {"encoder", "revision"} & set(functionals_key(FunctionalsConfig(name)))


@needs_transformers
def test_hf_encoder_frames_follow_the_encoder(tiny_hf: str):
    from vocalis.encoders import open_encoder

    cfg = FeatureConfig(
        name="encoder", encoder_source=tiny_hf, encoder_layers=(1, 2), hop_length=320
    )
    ext = build_extractor(cfg)
    assert ext.feature_dim == 32 and ext.frame_shift == 0.02 and not ext.training
    a, b = synth_tone(220.0, 0.5), synth_tone(440.0, 0.9, amplitude=0.05)
    batch, lengths = _batch(a, b)
    out = ext(batch, lengths)
    n = ext.frame_lengths(lengths)
    assert out.shape == (2, 32, int(n[1])) and n.tolist() == [24, 44]  # 20 ms, no padding
    alone = ext(torch.as_tensor(a))
    assert alone.shape == (32, int(n[0]))
    torch.testing.assert_close(out[0, :, : n[0]], alone, atol=1e-5, rtol=1e-5)
    assert out[0, :, n[0] :].abs().max() == 0
    enc = open_encoder(tiny_hf)
    with torch.no_grad():
        h = enc(torch.as_tensor(a)[None]).hidden_states
    torch.testing.assert_close(alone, ((h[1] + h[2]) / 2)[0].T)
    key = cache_identity(PipelineConfig(features=cfg))
    assert key["weights_identity"] == enc.identity and key["pipeline"]["features"]["encoder_layers"]


@needs_transformers
def test_hf_frames_need_the_encoders_hop(tiny_hf: str):
    with pytest.raises(ConfigError, match=r"needs 16000 Hz and hop 320 \(20 ms frames\)") as err:
        build_extractor(FeatureConfig(name="encoder", encoder_source=tiny_hf))
    assert "features.hop_length=320" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match=r"encoder layer 3: HFEncoder has layers 0 to 2"):
        build_extractor(
            FeatureConfig(
                name="encoder", encoder_source=tiny_hf, encoder_layers=(3,), hop_length=320
            )
        )


@needs_transformers
def test_hf_encoder_stats_are_mean_and_std_of_the_layers(tiny_hf: str):
    from vocalis.encoders import open_encoder

    wav = synth_tone(330.0, 0.6)
    cfg = FunctionalsConfig("encoder_stats", encoder=tiny_hf, layers=(0, -1))
    vec = compute_functionals(wav, 16000, cfg)
    assert vec.shape == (functionals_dim(cfg),) == (128,)
    with torch.no_grad():
        h = open_encoder(tiny_hf)(torch.as_tensor(wav)[None]).hidden_states
    ref = torch.cat([h[0][0].mean(0), h[0][0].std(0), h[2][0].mean(0), h[2][0].std(0)])
    torch.testing.assert_close(vec, ref)
    assert functionals_key(cfg)["weights"] == open_encoder(tiny_hf).identity


@needs_transformers
def test_cli_computes_encoder_frames_and_stats_of_the_sample_clips(tiny_hf, tmp_path, capsys):
    from vocalis.audio.io import load_audio
    from vocalis.cli.main import main
    from vocalis.features.pipeline import compute_features
    from vocalis.testing import sample_manifest, sample_manifest_path

    manifest = sample_manifest()
    common = ["features", str(sample_manifest_path()), "--encoder", tiny_hf, "--layers", "1", "2"]
    frames, stats = tmp_path / "frames.npz", tmp_path / "stats.npz"
    argv = [*common, "--features", "encoder", "--hop-length", "320", "--cache", str(tmp_path / "c")]
    assert main([*argv, "--out", str(frames), "--no-progress"]) == 0
    n = len(manifest.paths)
    assert f"{n} files: 0 cache hits, {n} computed" in capsys.readouterr().out
    saved = np.load(frames)
    cfg = FeatureConfig(
        name="encoder", encoder_source=tiny_hf, encoder_layers=(1, 2), hop_length=320
    )
    ref = compute_features(manifest.paths[0], PipelineConfig(features=cfg)).numpy()
    samples = len(load_audio(manifest.paths[0], 16000))
    assert saved["000000"].shape == ref.shape == (32, (samples - 80) // 320)
    np.testing.assert_allclose(saved["000000"], ref, atol=1e-5, rtol=1e-5)
    assert main([*argv, "--no-progress"]) == 0
    assert f"{n} cache hits, 0 computed" in capsys.readouterr().out

    assert main([*common, "--functionals", "encoder_stats", "--out", str(stats)]) == 0
    assert f"{n} files: 128 encoder_stats functionals each" in capsys.readouterr().out
    rows = np.load(stats)
    raw = load_audio(manifest.paths[0], 16000, normalize="none")
    expected = compute_functionals(
        raw, 16000, FunctionalsConfig("encoder_stats", encoder=tiny_hf, layers=(1, 2))
    )
    np.testing.assert_allclose(rows["000000"], expected.numpy(), atol=1e-6, rtol=1e-5)
    assert list(rows["paths"]) == manifest.paths

    assert main([*common, "--functionals", "encoder_stats", "--vad"]) == 1
    assert "drop --vad" in capsys.readouterr().err
