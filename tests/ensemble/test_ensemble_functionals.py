"""Utterance functionals: statistics checked against numpy, openSMILE shapes."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from vocalis.errors import AudioError, ConfigError
from vocalis.features.functionals import (
    FUNCTIONALS,
    STATISTICS,
    FunctionalsConfig,
    compute_functionals,
    deltas,
    frame_statistics,
    functionals_dim,
    functionals_names,
)
from vocalis.testing import synth_tone


def test_statistics_match_numpy_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 50)).astype(np.float64)
    got = frame_statistics(torch.from_numpy(x)).view(len(STATISTICS), 3).numpy()
    stats = dict(zip(STATISTICS, got, strict=True))
    np.testing.assert_allclose(stats["mean"], x.mean(1), atol=1e-10)
    np.testing.assert_allclose(stats["std"], x.std(1), atol=1e-10)
    np.testing.assert_allclose(stats["p25"], np.percentile(x, 25, axis=1), atol=1e-10)
    np.testing.assert_allclose(stats["p99"], np.percentile(x, 99, axis=1), atol=1e-10)
    c = x - x.mean(1, keepdims=True)
    np.testing.assert_allclose(stats["skew"], (c**3).mean(1) / x.std(1) ** 3, atol=1e-10)
    np.testing.assert_allclose(stats["kurtosis"], (c**4).mean(1) / x.std(1) ** 4 - 3, atol=1e-10)
    np.testing.assert_allclose(stats["slope"], np.polyfit(np.arange(50), x.T, 1)[0], atol=1e-10)


def test_padded_batch_equals_items_alone():
    a, b = torch.randn(4, 30), torch.randn(4, 17)
    batch = torch.zeros(2, 4, 30)
    batch[0], batch[1, :, :17] = a, b
    out = frame_statistics(batch, torch.tensor([30, 17]))
    torch.testing.assert_close(out[0], frame_statistics(a))
    torch.testing.assert_close(out[1], frame_statistics(b))


def test_constant_descriptor_has_zero_moments_and_empty_item_raises():
    stats = dict(zip(STATISTICS, frame_statistics(torch.full((1, 10), 2.0)).tolist(), strict=True))
    assert stats["std"] == stats["skew"] == stats["kurtosis"] == stats["slope"] == 0.0
    with pytest.raises(AudioError, match="valid frames"):
        frame_statistics(torch.zeros(1, 2, 5), torch.tensor([0]))


def test_deltas_of_a_ramp_are_its_slope_inside():
    d = deltas(torch.arange(20.0).view(1, 20) * 3.0, window=2)
    torch.testing.assert_close(d[0, 2:-2], torch.full((16,), 3.0))


def test_lld_stats_shape_names_and_loudness_sensitivity():
    cfg = FunctionalsConfig("lld_stats", lld="mfcc")
    tone = torch.from_numpy(synth_tone(300.0, 0.5, 16000))
    v = compute_functionals(tone, 16000, cfg)
    assert v.shape == (functionals_dim(cfg),) == (len(functionals_names(cfg)),)
    assert torch.isfinite(v).all()
    louder = compute_functionals(tone * 4, 16000, cfg)
    c0_mean = functionals_names(cfg).index("mfcc_mean_0")
    assert louder[c0_mean] > v[c0_mean]  # c0 tracks log energy


def test_errors_name_the_fix():
    with pytest.raises(AudioError, match="16000 Hz"):
        compute_functionals(torch.zeros(800), 8000, FunctionalsConfig("lld_stats"))
    with pytest.raises(ConfigError, match="did you mean"):
        compute_functionals(torch.zeros(800), 16000, FunctionalsConfig("lld_stat"))
    with pytest.raises(ConfigError, match="delta_window"):
        FunctionalsConfig(delta_window=0)
    assert {"compare_2016", "egemaps_v02", "lld_stats"} <= set(FUNCTIONALS.names())


@pytest.mark.skipif(importlib.util.find_spec("opensmile") is None, reason="opensmile not installed")
def test_egemaps_has_88_finite_values():
    tone = torch.from_numpy(synth_tone(200.0, 1.0, 16000))
    v = compute_functionals(tone, 16000, FunctionalsConfig("egemaps_v02"))
    assert v.shape == (88,) and torch.isfinite(v).all()
