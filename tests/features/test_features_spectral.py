"""MFCC / fbank: librosa reference, shapes, frame counts, padding invariance, physics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vocalis.dsp import mel_filterbank, mel_to_hz
from vocalis.errors import ConfigError
from vocalis.features import FEATURES, FeatureConfig, build_extractor, extract, frame_lengths

SR = 16000
EXPECTED_DIMS = {
    "mfcc": 40,
    "mfcc_only": 40,
    "fbank": 80,
    "mfbe": 80,
    "mfbe_only": 80,
    "pitch": 2,
    "pitch_only": 1,
    "mfbe_pitch": 81,
    "mfcc_pitch": 41,
}


def _signal(n: int = 24000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / SR
    chirp = np.sin(2 * np.pi * (150 * t + 900 * t**2))
    return (0.5 * chirp + 0.05 * rng.standard_normal(n)).astype(np.float32)


def _librosa_mel(y: np.ndarray, cfg: FeatureConfig, n_mels: int) -> np.ndarray:
    librosa = pytest.importorskip("librosa")
    return librosa.feature.melspectrogram(
        y=y,
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=cfg.window,
        center=True,
        pad_mode="constant",
        power=2.0,
        n_mels=n_mels,
        fmin=cfg.f_min,
        fmax=cfg.f_max,
        htk=cfg.mel_scale == "htk",
        norm="slaney" if cfg.mel_norm == "slaney" else None,
    )


def test_registry_has_every_feature_with_its_dim():
    assert set(EXPECTED_DIMS) <= set(FEATURES.names())
    for name, dim in EXPECTED_DIMS.items():
        ext = build_extractor(FeatureConfig(name=name))
        assert ext.feature_dim == dim, name
        assert ext.frame_shift == pytest.approx(0.01)


def test_unknown_feature_suggests_the_nearest_name():
    with pytest.raises(ConfigError, match="did you mean 'mfcc'"):
        extract(torch.zeros(100), FeatureConfig(name="mfccc"))


@pytest.mark.parametrize(
    "kwargs",
    [{"win_length": 1024}, {"f_max": 9000.0}, {"n_mfcc": 60}, {"pitch_frame_length": 256}],
)
def test_config_rejects_inconsistent_values(kwargs):
    with pytest.raises(ConfigError, match="features\\."):
        FeatureConfig(**kwargs)


def test_mfcc_matches_librosa():
    librosa = pytest.importorskip("librosa")
    cfg = FeatureConfig(name="mfcc")
    y = _signal()
    mel = _librosa_mel(y, cfg, cfg.n_mels_mfcc)
    ref = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=None), n_mfcc=cfg.n_mfcc)
    ours = extract(torch.from_numpy(y), cfg).numpy()
    assert ours.shape == ref.shape == (40, 1 + len(y) // 160)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=2e-3)


@pytest.mark.parametrize(
    "overrides", [{}, {"mel_scale": "slaney", "mel_norm": "slaney", "window": "hann"}]
)
def test_fbank_matches_librosa_log_mel(overrides):
    cfg = FeatureConfig(name="fbank", **overrides)
    y = _signal(seed=1)
    ref = np.log(np.maximum(_librosa_mel(y, cfg, cfg.n_fbank), cfg.log_floor))
    ours = extract(torch.from_numpy(y), cfg).numpy()
    assert ours.shape == ref.shape == (80, 1 + len(y) // 160)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-3)


def test_mel_filterbank_matches_librosa():
    librosa = pytest.importorskip("librosa")
    ours = mel_filterbank(SR, 512, 40, 20.0, 8000.0, "htk", "none").numpy()
    ref = librosa.filters.mel(
        sr=SR, n_fft=512, n_mels=40, fmin=20.0, fmax=8000.0, htk=True, norm=None
    )
    np.testing.assert_allclose(ours, ref, atol=1e-6)


@pytest.mark.parametrize("n", [0, 1, 159, 160, 161, 400, 16000, 16001])
@pytest.mark.parametrize("name", ["mfcc", "fbank", "pitch", "mfbe_pitch"])
def test_frame_count_is_exact(name, n):
    cfg = FeatureConfig(name=name)
    out = extract(torch.randn(n), cfg)
    assert out.shape == (EXPECTED_DIMS[name], 1 + n // 160)
    assert frame_lengths(torch.tensor([n]), cfg).tolist() == [out.shape[1]]
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["mfcc", "fbank", "pitch", "mfbe_pitch", "mfcc_pitch"])
def test_padded_batch_equals_each_item_alone(name):
    cfg = FeatureConfig(name=name)
    torch.manual_seed(0)
    t = torch.arange(12000) / SR
    items = [
        0.5 * torch.sin(2 * math.pi * 180 * t[:12000]) + 0.01 * torch.randn(12000),
        0.5 * torch.sin(2 * math.pi * 260 * t[:7321]) + 0.01 * torch.randn(7321),
        0.3 * torch.randn(2000),
    ]
    lengths = torch.tensor([len(x) for x in items])
    batch = torch.zeros(len(items), int(lengths.max()))
    for i, x in enumerate(items):
        batch[i, : len(x)] = x
    out = extract(batch, cfg, lengths)
    assert out.shape[:2] == (3, EXPECTED_DIMS[name])
    for i, x in enumerate(items):
        alone = extract(x, cfg)
        n = int(frame_lengths(torch.tensor(len(x)), cfg))
        assert alone.shape[-1] == n
        torch.testing.assert_close(out[i, :, :n], alone, rtol=1e-5, atol=1e-4)
        assert (out[i, :, n:] == 0).all()  # padded frames zeroed when lengths are given


def test_1khz_tone_peaks_in_the_1khz_mel_band():
    cfg = FeatureConfig(name="fbank")
    t = torch.arange(SR) / SR
    feats = extract(torch.sin(2 * math.pi * 1000 * t), cfg)
    band = int(feats[:, 5:-5].mean(1).argmax())
    # band centres on the HTK scale: the peak band's centre is the one nearest 1 kHz
    lo = 2595 * math.log10(1 + cfg.f_min / 700)
    hi = 2595 * math.log10(1 + cfg.f_max / 700)
    mels = torch.linspace(lo, hi, cfg.n_fbank + 2, dtype=torch.float64)[1:-1]
    centre_hz = mel_to_hz(mels)
    assert int((centre_hz - 1000).abs().argmin()) == band
    assert abs(float(centre_hz[band]) - 1000) < 40  # within half a band (~80 Hz wide here)


def test_float64_input_keeps_float64():
    out = extract(torch.randn(1600, dtype=torch.float64), FeatureConfig(name="mfcc"))
    assert out.dtype == torch.float64


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name", ["mfcc", "fbank", "mfbe_pitch"])
def test_cpu_and_gpu_give_the_same_numbers(name):
    cfg = FeatureConfig(name=name)
    x = torch.from_numpy(np.stack([_signal(seed=2), _signal(seed=3)]))
    cpu = extract(x, cfg)
    gpu = extract(x.cuda(), cfg).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=1e-4, atol=2e-3)


def test_gradients_flow_to_the_waveform():
    x = torch.randn(800, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda w: extract(w, FeatureConfig(name="fbank")).sum(), (x,), eps=1e-6, atol=1e-4
    )
    y = torch.randn(1600, requires_grad=True)
    extract(y, FeatureConfig(name="mfcc")).square().mean().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


def test_bad_input_shape_is_a_clear_error():
    from vocalis.errors import ModelError

    with pytest.raises(ModelError, match=r"expected a waveform \(T,\) or batch \(B, T\)"):
        extract(torch.zeros(1, 2, 100), FeatureConfig(name="mfcc"))
