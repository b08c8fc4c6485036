"""Waveform augmentations on synthetic signals: the physics each one promises, and seeding."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vocalis.augment import (
    AddNoise,
    FileMixup,
    Gain,
    PitchShift,
    SpecNoise,
    SpeedChange,
    TimeShift,
    TimeStretch,
    WaveformAugment,
)
from vocalis.augment.config import AugmentConfig, GainConfig, NoiseConfig, SpeedConfig

SR = 16000


def _sine(freq: float, seconds: float = 1.0, amp: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(SR * seconds), dtype=torch.float64) / SR
    return (amp * torch.sin(2 * math.pi * freq * t)).float()


def _peak_hz(x: torch.Tensor) -> float:
    """Frequency of the spectral peak (Hann window, 8x zero-padded FFT)."""
    y = x.double().numpy()
    n = len(y)
    spec = np.abs(np.fft.rfft(y * np.hanning(n), 8 * n))
    return float(np.argmax(spec)) * SR / (8 * n)


def _g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("snr_db", [5.0, 15.0, 30.0])
def test_noise_hits_its_snr_on_speech_like_signal(snr_db):
    x = _sine(220) * (1 + 0.5 * _sine(3, amp=1.0))  # amplitude-modulated tone
    y = AddNoise(snr_db, snr_db)(x, SR, _g(2))
    measured = 10 * math.log10(float(x.double().pow(2).mean() / (y - x).double().pow(2).mean()))
    assert abs(measured - snr_db) < 0.5


@pytest.mark.parametrize("semitones", [-3.0, 2.0, 5.0])
@pytest.mark.parametrize("high_quality", [True, False])
def test_pitch_shift_moves_a_sine_by_the_semitone_ratio_and_keeps_length(semitones, high_quality):
    x = _sine(300, seconds=1.0)
    y = PitchShift(semitones, semitones, high_quality=high_quality)(x, SR, _g())
    assert y.shape == x.shape
    expected = 300 * 2 ** (semitones / 12)
    measured = _peak_hz(y[2000:-2000])
    assert abs(measured / expected - 1) < 0.003, (measured, expected)  # 5 cents


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_speed_change_scales_length_and_frequency(rate):
    x = _sine(400, seconds=1.0)
    y = SpeedChange(rate, rate)(x, SR, _g())
    assert abs(len(y) - len(x) / rate) <= 1
    assert abs(_peak_hz(y[1000:-1000]) / (400 * rate) - 1) < 0.005


def test_speed_change_with_fixed_rates_plays_only_those_rates_each_often():
    x = _sine(400, seconds=0.5)
    change = SpeedChange(rates=(0.8, 1.25))
    outs = [change(x, SR, _g(seed)) for seed in range(40)]
    lengths = {len(y) for y in outs}
    assert lengths == {round(len(x) / 0.8), round(len(x) / 1.25)}
    slow = [y for y in outs if len(y) == round(len(x) / 0.8)]
    assert 10 <= len(slow) <= 30  # both drawn, about equally often
    assert abs(_peak_hz(slow[0][1000:-1000]) / (400 * 0.8) - 1) < 0.005
    assert torch.equal(change(x, SR, _g(3)), change(x, SR, _g(3)))  # replays from the seed


@pytest.mark.parametrize("rate", [0.8, 1.25])
def test_time_stretch_scales_length_and_keeps_pitch(rate):
    x = _sine(400, seconds=1.0)
    y = TimeStretch(rate, rate)(x, SR, _g())
    assert abs(len(y) - len(x) / rate) <= 0.01 * len(x)
    assert abs(_peak_hz(y[2000:-2000]) / 400 - 1) < 0.01


def test_gain_in_db_is_exact():
    x = _sine(100)
    for db in (-12.0, -3.0, 0.0, 6.0):
        y = Gain(db, db)(x, SR, _g())
        measured = 20 * math.log10(float(y.abs().max() / x.abs().max()))
        assert measured == pytest.approx(db, abs=1e-4)


def test_shift_moves_the_signal_by_the_drawn_seconds():
    x = torch.zeros(SR)
    x[1000] = 1.0
    assert int(TimeShift(0.05, 0.05)(x, SR, _g()).argmax()) == 1000 + 800
    assert int(TimeShift(-0.05, -0.05)(x, SR, _g()).argmax()) == 200
    rolled = TimeShift(-0.1, -0.1, rollover=True)(x, SR, _g())
    assert int(rolled.argmax()) == SR - 600 and rolled.sum() == 1.0
    cut = TimeShift(-0.1, -0.1)(x, SR, _g())
    assert cut.sum() == 0 and cut.shape == x.shape  # shifted out, zeros in
    short = torch.arange(1.0, 1601.0)  # 0.1 s: a 0.3 s shift would leave silence
    for s in (0.3, -0.3):
        kept = TimeShift(s, s)(short, SR, _g())
        assert kept.shape == short.shape and int((kept != 0).sum()) == 800  # capped at T // 2
    assert TimeShift(0.3, 0.3)(short, SR, _g())[800:].tolist() == short[:800].tolist()
    for seed in range(10):  # the shift stays in its range
        moved = int(TimeShift(-0.01, 0.02)(x, SR, _g(seed)).argmax()) - 1000
        assert -160 <= moved <= 320


def test_file_mixup_is_a_convex_mix_that_keeps_each_length():
    a, b, c = torch.ones(100), 3 * torch.ones(50), torch.full((200,), -1.0)
    mixed, perm, lam = FileMixup(0.4)([a, b, c], _g(1))
    assert 0.5 <= lam <= 1.0 and sorted(perm.tolist()) == [0, 1, 2]
    waves = [a, b, c]
    for i, j in enumerate(perm.tolist()):
        assert mixed[i].shape == waves[i].shape
        n = min(len(waves[i]), len(waves[j]))
        expect = lam * waves[i][:n] + (1 - lam) * waves[j][:n]
        assert torch.allclose(mixed[i][:n], expect)
        assert torch.allclose(mixed[i][n:], lam * waves[i][n:])  # shorter partner: zeros


def test_spec_noise_hits_its_snr_and_leaves_padding():
    x = torch.randn(2, 40, 300, generator=_g(0)) * 2.0 + 1.0
    lengths = torch.tensor([300, 120])
    y = SpecNoise(10.0, 10.0)(x, lengths, _g(1))
    assert torch.equal(y[1, :, 120:], x[1, :, 120:])
    noise = (y[0] - x[0]).double()
    snr = 10 * math.log10(float(x[0].double().var(unbiased=False) / noise.pow(2).mean()))
    assert abs(snr - 10.0) < 0.5


def test_chain_is_seeded_per_utterance_and_streams_are_independent():
    x = _sine(200, seconds=0.5)
    both = AugmentConfig(gain=GainConfig(p=1.0), noise=NoiseConfig(p=1.0), speed=SpeedConfig(p=0.5))
    chain = WaveformAugment(both)
    assert torch.equal(chain(x, SR, 7), chain(x, SR, 7))
    assert not torch.equal(chain(x, SR, 7), chain(x, SR, 8))
    # switching speed off leaves the gain and noise draws as they were
    no_speed = WaveformAugment(AugmentConfig(gain=GainConfig(p=1.0), noise=NoiseConfig(p=1.0)))
    seeds = [s for s in range(40) if len(chain(x, SR, s)) == len(x)]  # speed not drawn
    assert seeds
    assert all(torch.equal(chain(x, SR, s), no_speed(x, SR, s)) for s in seeds[:5])
    # p is a probability per utterance
    applied = sum(len(chain(x, SR, s)) != len(x) for s in range(200))
    assert 70 <= applied <= 130


def test_nothing_on_is_the_identity():
    chain = WaveformAugment(AugmentConfig())
    x = _sine(200)
    assert not chain.active and torch.equal(chain(x, SR, 3), x)
    assert chain.mix([x, x], 3) is None


def test_transforms_reject_swapped_ranges():
    for make in (
        lambda: TimeShift(0.2, -0.2),
        lambda: SpeedChange(1.2, 0.8),
        lambda: TimeStretch(0.0, 1.0),
        lambda: PitchShift(3, -3),
        lambda: SpecNoise(30, 10),
        lambda: FileMixup(0.0),
    ):
        with pytest.raises(ValueError):
            make()


def test_missing_pedalboard_is_one_line_with_the_install_command(monkeypatch):
    import sys

    from vocalis.errors import ConfigError

    monkeypatch.setitem(sys.modules, "pedalboard", None)  # import fails as if not installed
    with pytest.raises(ConfigError, match=r"pip install 'vocalis\[augment\]'"):
        PitchShift(1, 1)(_sine(200, 0.1), SR, _g())
    # everything else works without it
    assert Gain(0, 0)(_sine(200, 0.1), SR, _g()).shape == (SR // 10,)
