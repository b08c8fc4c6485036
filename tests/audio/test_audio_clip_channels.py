"""Tier 0's fixed clip length and channel choice: crop, pad, pick, refuse."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vocalis.audio import Tier0Config, tier0_waveform
from vocalis.audio.tier0 import fix_length, iter_tier0, pick_channel
from vocalis.errors import AudioError, ConfigError


def test_fix_length_crops_and_pads_to_exactly_the_length():
    x = torch.arange(1.0, 11.0)
    assert fix_length(x, 4).tolist() == [1, 2, 3, 4]
    assert fix_length(x, 4, crop="center").tolist() == [4, 5, 6, 7]
    assert fix_length(x, 10).tolist() == x.tolist()
    padded = fix_length(x[:3], 8)
    assert padded.tolist() == [1, 2, 3, 0, 0, 0, 0, 0]
    assert fix_length(x[:3], 8, pad="repeat").tolist() == [1, 2, 3, 1, 2, 3, 1, 2]


def test_clip_seconds_gives_every_recording_the_same_length_before_levelling():
    cfg = Tier0Config(sample_rate=16000, clip_seconds=0.5)
    long, short = torch.full((24000,), 0.25), torch.full((3200,), 0.25)
    assert tier0_waveform(long, 16000, cfg).shape == (8000,)
    out = tier0_waveform(short, 16000, cfg)
    assert out.shape == (8000,) and float(out[:3200].min()) == 1.0  # peak-levelled after the clip
    assert float(out[3200:].abs().max()) == 0.0  # zeros at the end
    names = [s.name for s in iter_tier0(long, 16000, cfg)]
    assert names == ["mono", "resample", "denoise", "clip", "normalize"]
    # resampled first: 0.5 s at 16 kHz from a 48 kHz file too
    assert tier0_waveform(torch.randn(96000), 48000, cfg).shape == (8000,)


def test_channel_keeps_one_channel_instead_of_the_mix():
    left = np.full(1600, 0.5, dtype=np.float32)
    stereo = np.stack([left, np.zeros_like(left)], axis=1)
    mixed = tier0_waveform(stereo, 16000, Tier0Config(normalize="none"))
    picked = tier0_waveform(stereo, 16000, Tier0Config(normalize="none", channel=1))
    assert float(mixed.max()) == 0.25 and float(picked.abs().max()) == 0.0
    with pytest.raises(AudioError, match=r"a\.wav: has 2 channel\(s\), tier0\.channel=2"):
        pick_channel(torch.as_tensor(stereo), 2, "a.wav")


def test_bad_values_and_keep_channels_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="clip_seconds=0"):
        Tier0Config(clip_seconds=0)
    with pytest.raises(ConfigError, match="clip_crop='end', expected start or center"):
        Tier0Config(clip_crop="end")
    with pytest.raises(ConfigError, match="keep_channels=true: no Vocalis feature extractor"):
        Tier0Config(keep_channels=True)
    with pytest.raises(ConfigError, match="channel=-1"):
        Tier0Config(channel=-1)
