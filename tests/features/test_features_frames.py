"""Every extractor owns its frame-count rule; the base class masks padding with it."""

from __future__ import annotations

import pytest
import torch

from vocalis.features import FEATURES, FeatureConfig, build_extractor, frame_lengths
from vocalis.features.base import FeatureExtractor

#: Extractors with their own frame tests (encoders) or nothing to compute (precomputed inputs).
OWN_TESTS = {"encoder", "ge2e", "waveform", "npy", "precomputed"}


@pytest.mark.parametrize("name", sorted(set(FEATURES.names()) - OWN_TESTS))
def test_each_builtin_counts_the_frames_it_computes(name: str):
    ext = build_extractor(FeatureConfig(name=name))
    for n in (1, 159, 160, 161, 1601):
        assert ext.frame_lengths(torch.tensor([n])).tolist() == [ext(torch.randn(n)).shape[-1]]


class _Strided(FeatureExtractor):
    """Block energies of 320 samples without padding: 20 ms frames, ``T // 320``."""

    feature_dim = 1

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths.long(), 320, rounding_mode="floor")

    def compute(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        n = wav.shape[1] // 320
        return wav[:, : n * 320].reshape(len(wav), 1, n, 320).square().mean(-1) + 1.0


def test_padding_is_masked_with_the_extractor_rule_not_a_formula(monkeypatch):
    monkeypatch.setitem(FEATURES._items, "strided_test_frames", _Strided)  # removed afterwards
    cfg = FeatureConfig(name="strided_test_frames")
    out = build_extractor(cfg)(torch.ones(2, 3200), torch.tensor([3200, 1000]))
    assert out.shape == (2, 1, 10)
    assert (out[1, 0, :3] > 0).all() and (out[1, 0, 3:] == 0).all()  # 1000 // 320 = 3 frames
    assert frame_lengths(torch.tensor([3200, 1000]), cfg).tolist() == [10, 3]


def test_an_extractor_without_a_rule_says_so():
    class NoRule(FeatureExtractor):
        feature_dim = 1

        def compute(self, wav, lengths=None):
            return wav[:, None, ::160]

    with pytest.raises(NotImplementedError, match="NoRule must define frame_lengths"):
        NoRule(FeatureConfig())(torch.ones(1, 320), torch.tensor([320]))
