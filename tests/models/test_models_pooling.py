"""Pooling layers and masked reductions: shapes, references, padding invariance."""

from __future__ import annotations

import pytest
import torch
from _models_helpers import assert_padding_invariant, few_threads, padded_batch  # noqa: F401

from vocalis.errors import ConfigError, ModelError
from vocalis.models.masking import check_lengths, masked_max, masked_mean_std
from vocalis.models.pooling import POOLINGS, build_pooling

LENGTHS = [17, 5, 11, 1]


@pytest.mark.parametrize(
    ("name", "kwargs", "factor"),
    [
        ("mean", {}, 1),
        ("stats", {}, 2),
        ("attentive_stats", {"attention_channels": 6}, 2),
        ("attentive_stats", {"attention_channels": 6, "global_context": False}, 2),
        ("attention", {"heads": 1, "hidden": 5}, 1),
        ("attention", {"heads": 3, "hidden": 5}, 3),
    ],
)
def test_pooling_shape_and_padding_invariance(name, kwargs, factor):
    torch.manual_seed(0)
    pool = build_pooling(name, 8, **kwargs).eval()
    x, lengths = padded_batch(8, LENGTHS)
    out = pool(x, lengths)
    assert out.shape == (len(LENGTHS), factor * 8)
    assert pool.output_dim(8) == factor * 8
    assert torch.isfinite(out).all()
    assert_padding_invariant(pool, x, lengths)
    mask = torch.arange(x.shape[2]) < lengths[:, None]
    torch.testing.assert_close(pool.pool(x, mask), out)


def test_all_registered_poolings_are_covered():
    assert POOLINGS.names() == ["attention", "attentive_stats", "mean", "stats"]


def test_stats_pooling_matches_numpy_reference():
    x, lengths = padded_batch(3, LENGTHS, seed=1)
    out = build_pooling("stats", 3)(x, lengths)
    for i, n in enumerate(LENGTHS):
        valid = x[i, :, :n].double().numpy()
        mean, std = valid.mean(axis=1), valid.std(axis=1)
        std = std.clip(min=1e-5**0.5)
        torch.testing.assert_close(out[i, :3].double(), torch.from_numpy(mean), atol=1e-5, rtol=0)
        torch.testing.assert_close(out[i, 3:].double(), torch.from_numpy(std), atol=1e-5, rtol=0)


def test_attention_pooling_is_a_convex_combination_of_valid_frames():
    torch.manual_seed(0)
    pool = build_pooling("attention", 4, heads=2, hidden=3)
    x, lengths = padded_batch(4, [6, 3])
    out = pool(x, lengths).view(2, 2, 4)
    for i, n in enumerate([6, 3]):
        lo = x[i, :, :n].amin(dim=1)
        hi = x[i, :, :n].amax(dim=1)
        assert ((out[i] >= lo - 1e-5) & (out[i] <= hi + 1e-5)).all()


def test_masked_max_and_std_ignore_padding():
    x = torch.tensor([[[1.0, 5.0, 1000.0]]])
    mask = torch.tensor([[True, True, False]])
    assert masked_max(x, mask).item() == 5.0
    mean, std = masked_mean_std(x, mask)
    assert mean.item() == pytest.approx(3.0) and std.item() == pytest.approx(2.0)


def test_lengths_are_validated():
    with pytest.raises(ModelError, match="integer frame counts"):
        check_lengths(torch.tensor([0.5, 1.0]), 2, 4)
    with pytest.raises(ModelError, match=r"lie in \[1, 4\]"):
        check_lengths(torch.tensor([0, 4]), 2, 4)
    with pytest.raises(ModelError, match=r"lie in \[1, 4\]"):
        check_lengths(torch.tensor([5, 4]), 2, 4)
    with pytest.raises(ModelError, match="shape"):
        check_lengths(torch.tensor([4]), 2, 4)
    assert check_lengths(torch.tensor([4, 4]), 2, 4) is None


def test_unknown_pooling_suggests_a_name():
    with pytest.raises(ConfigError, match="did you mean 'stats'"):
        build_pooling("stat", 4)


def test_attentive_stats_global_context_equals_explicit_concatenation():
    """The factorised global context gives what the paper's concatenation gives."""
    torch.manual_seed(0)
    pool = build_pooling("attentive_stats", 6, attention_channels=5).eval()
    x, lengths = padded_batch(6, [9, 4])
    out = pool(x, lengths)
    for i, n in enumerate([9, 4]):
        xi = x[i : i + 1, :, :n]
        mean, std = xi.mean(2, keepdim=True), xi.std(2, unbiased=False, keepdim=True)
        context = torch.cat([xi, mean.expand_as(xi), std.expand_as(xi)], dim=1)
        hidden = torch.tanh(pool.norm(torch.relu(pool.conv(context))))
        w = torch.softmax(pool.attention(hidden), dim=2)
        mu = (w * xi).sum(2)
        sigma = ((w * (xi - mu.unsqueeze(2)) ** 2).sum(2)).clamp(min=1e-5).sqrt()
        torch.testing.assert_close(out[i : i + 1], torch.cat([mu, sigma], 1), atol=1e-5, rtol=1e-4)
