"""Pitch: synthetic tones against the truth and librosa.yin, EmoDB against pyin."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vocalis.features import FeatureConfig, estimate_pitch, extract
from vocalis.features.pitch import interpolate_log_f0

SR = 16000


def _tone(f0: float, seconds: float = 1.0, harmonics: int = 4) -> torch.Tensor:
    t = torch.arange(int(seconds * SR), dtype=torch.float64) / SR
    x = sum(torch.sin(2 * math.pi * f0 * k * t) / k for k in range(1, harmonics + 1))
    return (0.3 * x).float()


def _emodb() -> Path | None:
    try:
        from vocalis.testing import emodb_root

        root = emodb_root()
    except (ImportError, AttributeError):
        root = Path("/work/shared/data/emodb")
    wav = Path(root) / "wav" if root else None
    return wav if wav and wav.is_dir() else None


@pytest.mark.parametrize("f0", [80.0, 120.0, 220.0, 330.0, 500.0])
def test_tone_f0_within_2_percent(f0):
    cfg = FeatureConfig()
    est, voiced = estimate_pitch(_tone(f0), cfg)
    inner = slice(5, -5)  # frames whose window lies inside the tone
    assert voiced[inner].float().mean() > 0.95
    rel = (est[inner][voiced[inner]] - f0).abs() / f0
    assert float(rel.max()) < 0.02


def test_tone_agrees_with_librosa_yin():
    librosa = pytest.importorskip("librosa")
    x = _tone(180.0)
    ref = librosa.yin(
        x.numpy(), fmin=50, fmax=550, sr=SR, frame_length=1024, hop_length=160, center=True
    )
    est, voiced = estimate_pitch(x, FeatureConfig())
    assert len(ref) == len(est)
    inner = slice(5, -5)
    ok = voiced[inner].numpy()
    np.testing.assert_allclose(est[inner].numpy()[ok], ref[inner][ok], rtol=0.02)


def test_silence_and_noise_are_mostly_unvoiced():
    cfg = FeatureConfig()
    _, voiced = estimate_pitch(torch.zeros(SR), cfg)
    assert not voiced.any()
    torch.manual_seed(0)
    _, voiced = estimate_pitch(0.3 * torch.randn(SR), cfg)
    assert voiced.float().mean() < 0.2


def test_silence_gap_is_unvoiced_and_interpolated():
    cfg = FeatureConfig(name="pitch")
    x = torch.cat([_tone(150.0, 0.5), torch.zeros(SR // 2), _tone(300.0, 0.5)])
    feats = extract(x, cfg)
    logf, voicing = feats
    assert set(voicing.unique().tolist()) <= {0.0, 1.0}
    assert voicing[20:40].all() and not voicing[65:85].any() and voicing[115:140].all()
    gap = logf[55:95].exp()
    assert (gap >= 150 * 0.98).all() and (gap <= 300 * 1.02).all()
    assert torch.all(gap[1:] >= gap[:-1] - 1e-3)  # a monotone glide across the gap
    only = extract(x, FeatureConfig(name="pitch_only"))
    torch.testing.assert_close(only[0], logf)


def test_interpolation_rules():
    f0 = torch.tensor([[0.0, 0.0, 100.0, 0.0, 0.0, 0.0, 400.0, 0.0], [0.0] * 8])
    out = interpolate_log_f0(f0, f0 > 0, 200.0).exp()
    torch.testing.assert_close(
        out[0], torch.tensor([100.0, 100.0, 100.0, 141.4214, 200.0, 282.8427, 400.0, 400.0])
    )
    torch.testing.assert_close(out[1], torch.full((8,), 200.0))


@pytest.mark.emodb
def test_emodb_gross_error_against_pyin_below_10_percent():
    librosa = pytest.importorskip("librosa")
    import soundfile as sf

    wav_dir = _emodb()
    if wav_dir is None:
        pytest.skip("EmoDB not found (expected ../shared/data/emodb/wav)")
    for name in ["03a01Fa.wav", "13a05Ea.wav"]:
        path = wav_dir / name
        y, sr = sf.read(path, dtype="float32")
        assert sr == SR
        ref, ref_voiced, _ = librosa.pyin(
            y, fmin=50, fmax=550, sr=sr, frame_length=1024, hop_length=160, center=True
        )
        est, voiced = estimate_pitch(torch.from_numpy(y), FeatureConfig())
        est, voiced = est.numpy(), voiced.numpy()
        assert len(est) == len(ref)
        both = voiced & ref_voiced
        assert both.sum() > 30, name
        gross = np.mean(np.abs(est[both] - ref[both]) / ref[both] > 0.2)
        assert gross < 0.10, (name, gross)
        assert np.mean(voiced == ref_voiced) > 0.75, name
