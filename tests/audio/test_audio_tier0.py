"""The tier-0 pipeline: config serialisation, step order, durations and errors."""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from vocalis.audio import Tier0Config, iter_tier0, load_audio, run_tier0, tier0_waveform
from vocalis.audio.vad import NoSpeechWarning
from vocalis.config import from_dict, to_dict
from vocalis.errors import AudioError, ConfigError


def write_sine(path: Path, sr: int, seconds: float, channels: int = 1, amp: float = 0.3) -> Path:
    t = np.arange(int(seconds * sr)) / sr
    x = (amp * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    sf.write(path, np.stack([x] * channels, axis=1) if channels > 1 else x, sr)
    return path


def speech_wav() -> Path:
    """A real EmoDB utterance shipped with the package."""
    from vocalis.testing import samples_dir

    path = samples_dir() / "wav" / "11a01Wc.wav"
    if not path.is_file():
        pytest.skip(f"bundled sample {path} missing")
    return path


def test_config_roundtrip_and_validation():
    cfg = Tier0Config(sample_rate=8000, normalize="rms", denoise="spectral", vad=True)
    data = to_dict(cfg)
    assert data["denoise"] == "spectral" and data["vad"] is True
    assert from_dict(Tier0Config, data) == cfg
    assert hash(cfg) == hash(from_dict(Tier0Config, data))  # usable as a cache key
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.vad = False  # type: ignore[misc]
    with pytest.raises(ConfigError, match="did you mean 'vad_threshold'"):
        from_dict(Tier0Config, {"vad_treshold": 0.3})
    with pytest.raises(ConfigError, match="did you mean 'spectral'"):
        Tier0Config(denoise="spectal")
    with pytest.raises(ConfigError, match="normalize"):
        from_dict(Tier0Config, {"normalize": "loudness"})
    with pytest.raises(ConfigError, match="threshold"):
        Tier0Config(vad_threshold=1.5)
    with pytest.raises(ConfigError, match="sample_rate"):
        Tier0Config(sample_rate=0)
    assert cfg.vad_config().threshold == 0.5


def test_run_tier0_stereo_44k(tmp_path):
    path = write_sine(tmp_path / "s.wav", 44100, 1.0, channels=2)
    wav = run_tier0(path, Tier0Config())
    assert wav.shape == (16000,) and wav.dtype == torch.float32
    assert float(wav.abs().max()) == pytest.approx(1.0)
    torch.testing.assert_close(wav, load_audio(path))


def test_steps_run_in_order_with_timings(tmp_path):
    samples = np.random.default_rng(0).standard_normal((22050, 2)).astype(np.float32) * 0.1
    t0 = time.perf_counter()
    steps = list(iter_tier0(samples, 22050, Tier0Config(denoise="spectral", vad=False)))
    elapsed = time.perf_counter() - t0
    assert [s.name for s in steps] == ["mono", "resample", "denoise", "normalize"]
    assert steps[1].wav.shape == (16000,) and steps[1].sample_rate == 16000
    # durations in seconds of each step, not timestamps or milliseconds: they fit in the call
    assert all(s.seconds >= 0 for s in steps) and sum(s.seconds for s in steps) <= elapsed
    assert float(steps[-1].wav.abs().max()) == pytest.approx(1.0)  # normalised after denoising


def test_vad_on_silence_keeps_everything_and_warns():
    x = torch.zeros(16000)
    x[::100] = 1e-4
    with pytest.warns(NoSpeechWarning, match="hush.wav"):
        y = tier0_waveform(x, 16000, Tier0Config(vad=True), source="hush.wav")
    assert y.shape == x.shape


def test_min_duration(tmp_path):
    path = write_sine(tmp_path / "blip.wav", 16000, 0.05)
    with pytest.raises(AudioError) as err:
        run_tier0(path)
    assert "blip.wav" in str(err.value) and "min_duration_s" in str(err.value)
    assert run_tier0(path, Tier0Config(min_duration_s=0.0)).shape == (800,)


def test_non_finite_and_empty_inputs():
    with pytest.raises(AudioError, match=r"x\.wav"):
        tier0_waveform(torch.tensor([0.0, math.nan] * 2000), 16000, source="x.wav")
    with pytest.raises(AudioError, match="contains no audio"):
        tier0_waveform(torch.zeros(0), 16000)


def test_rms_normalisation_target():
    from vocalis.audio.level import rms_db

    x = 0.01 * torch.randn(16000, generator=torch.Generator().manual_seed(0))
    y = tier0_waveform(x, 16000, Tier0Config(normalize="rms", target_rms_db=-23.0))
    assert rms_db(y) == pytest.approx(-23.0, abs=1e-3)


def test_tier0_vad_trims_padded_speech(tmp_path):
    x, sr = sf.read(speech_wav(), dtype="float32")
    pad = np.zeros(sr, dtype=np.float32)
    padded = np.concatenate([pad, x, pad])
    path = tmp_path / "padded.flac"
    sf.write(path, np.stack([padded, padded], axis=1), sr)  # stereo FLAC
    with warnings.catch_warnings():
        warnings.simplefilter("error", NoSpeechWarning)
        y = run_tier0(path, Tier0Config(vad=True, denoise="spectral"))
    assert 0.7 * len(x) <= y.shape[0] <= len(x) + 0.1 * sr
    assert float(y.abs().max()) == pytest.approx(1.0)
