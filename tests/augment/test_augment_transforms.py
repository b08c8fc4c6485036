"""SpecAugment, mixup, noise and gain: physics and seeding."""

from __future__ import annotations

import math

import pytest
import torch

from vocalis.augment import AddNoise, Gain, Mixup, SpecAugment


def test_specaugment_masks_only_valid_frames_and_is_seeded():
    x = torch.ones(3, 20, 50)
    lengths = torch.tensor([50, 30, 10])
    aug = SpecAugment(time_masks=2, time_mask_frames=10, freq_masks=2, freq_mask_bins=5)
    y1 = aug(x, lengths, torch.Generator().manual_seed(0))
    y2 = aug(x, lengths, torch.Generator().manual_seed(0))
    assert torch.equal(y1, y2)
    assert torch.equal(x, torch.ones(3, 20, 50))  # input untouched
    assert (y1 == 0).any()
    for i, n in enumerate(lengths.tolist()):
        assert (y1[i, :, n:] == 1).all()  # padding never masked
    # widths are bounded: at most 2 * 10 frames fully masked per utterance
    fully = (y1[0] == 0).all(dim=0).sum()
    assert fully <= 20


def test_specaugment_rejects_negative_widths():
    with pytest.raises(ValueError, match="time_mask_frames"):
        SpecAugment(time_mask_frames=-1)


def test_mixup_convex_combination_and_lengths():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 8)
    lengths = torch.tensor([8, 6, 4, 2])
    out = Mixup(alpha=0.4)(x, lengths, g)
    assert 0.5 <= out.lam <= 1.0
    assert torch.allclose(out.features, out.lam * x + (1 - out.lam) * x[out.perm])
    assert torch.equal(out.lengths, torch.maximum(lengths, lengths[out.perm]))
    y = torch.tensor([0, 1, 2, 3])
    ce = torch.nn.CrossEntropyLoss()
    logits = torch.randn(4, 4)
    mixed = out.mix_loss(lambda t: ce(logits, t), y)
    assert torch.isclose(mixed, out.lam * ce(logits, y) + (1 - out.lam) * ce(logits, y[out.perm]))
    with pytest.raises(ValueError):
        Mixup(alpha=0.0)


@pytest.mark.parametrize("snr_db", [0.0, 10.0, 25.0])
def test_noise_hits_its_snr(snr_db):
    t = torch.arange(16000) / 16000
    x = 0.3 * torch.sin(2 * math.pi * 440 * t)
    y = AddNoise(snr_db, snr_db)(x, 16000, torch.Generator().manual_seed(1))
    noise = y - x
    measured = 10 * torch.log10(x.pow(2).mean() / noise.pow(2).mean())
    assert abs(float(measured) - snr_db) < 0.5


def test_noise_and_gain_are_seeded_and_in_range():
    x = torch.ones(1000)
    a = AddNoise(5, 20)(x, 16000, torch.Generator().manual_seed(3))
    b = AddNoise(5, 20)(x, 16000, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    for seed in range(20):
        y = Gain(-6.0, 3.0)(x, 16000, torch.Generator().manual_seed(seed))
        gain_db = 20 * math.log10(float(y[0]))
        assert -6.0 - 1e-6 <= gain_db <= 3.0 + 1e-6
    with pytest.raises(ValueError, match="swap"):
        Gain(3.0, -3.0)
    with pytest.raises(ValueError, match="swap"):
        AddNoise(30.0, 10.0)
