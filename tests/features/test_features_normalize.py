"""Mean/variance normalisation: exact statistics, padding invariance, checkpointing."""

from __future__ import annotations

import pytest
import torch

from vocalis.errors import DataError, ModelError
from vocalis.features.normalize import GlobalMVN, SpeakerMVN, cmvn


def _utts(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [3.0 + 2.0 * torch.randn(4, n, generator=g) for n in (7, 12, 3)]


def _pad(utts: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([u.shape[1] for u in utts])
    batch = torch.full((len(utts), utts[0].shape[0], int(lengths.max())), 99.0)  # junk padding
    for i, u in enumerate(utts):
        batch[i, :, : u.shape[1]] = u
    return batch, lengths


def test_global_stats_are_exact_and_padding_invariant():
    utts = _utts()
    frames = torch.cat(utts, 1).double()
    mvn_list = GlobalMVN(4).fit(utts)
    batch, lengths = _pad(utts)
    mvn_batch = GlobalMVN(4).fit(batch, lengths)
    for mvn in (mvn_list, mvn_batch):
        assert float(mvn.count) == frames.shape[1]
        torch.testing.assert_close(mvn.mean, frames.mean(1).float())
        torch.testing.assert_close(mvn.std, frames.std(1, unbiased=False).float())
    out = mvn_batch(batch, lengths)
    assert (out[1, :, lengths[1] :] == 0).all()
    valid = torch.cat([out[i, :, : lengths[i]] for i in range(3)], 1)
    torch.testing.assert_close(valid.mean(1), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(valid.std(1, unbiased=False), torch.ones(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(out[0, :, : lengths[0]], mvn_list(utts[0]))


def test_global_mvn_state_dict_round_trip_and_streaming_update():
    utts = _utts(1)
    mvn = GlobalMVN(4)
    for u in utts:
        mvn.update(u)
    fresh = GlobalMVN(4)
    fresh.load_state_dict(mvn.state_dict())
    torch.testing.assert_close(fresh.mean, GlobalMVN(4).fit(utts).mean)
    torch.testing.assert_close(fresh(utts[0]), mvn(utts[0]))
    assert set(mvn.state_dict()) == {"count", "sum", "sum_sq"}


def test_unfitted_or_wrong_width_is_a_clear_error():
    with pytest.raises(ModelError, match="fit"):
        GlobalMVN(4)(torch.zeros(4, 3))
    with pytest.raises(ModelError, match="built for 4 features, got 5"):
        GlobalMVN(4).update(torch.zeros(5, 3))


def test_cmvn_per_utterance_ignores_padding():
    utts = _utts(2)
    batch, lengths = _pad(utts)
    out = cmvn(batch, lengths)
    for i, u in enumerate(utts):
        n = u.shape[1]
        torch.testing.assert_close(out[i, :, :n], cmvn(u))
        torch.testing.assert_close(out[i, :, :n].mean(1), torch.zeros(4), atol=1e-5, rtol=0)
        torch.testing.assert_close(
            out[i, :, :n].std(1, unbiased=False), torch.ones(4), atol=1e-4, rtol=0
        )
        assert (out[i, :, n:] == 0).all()
    mean_only = cmvn(utts[0], variance=False)
    torch.testing.assert_close(mean_only, utts[0] - utts[0].mean(1, keepdim=True))


def test_speaker_mvn_uses_each_speakers_stats_and_falls_back_to_pooled():
    a, b = _utts(3), [u + 10 for u in _utts(4)]
    feats, spk = a + b, ["s1"] * 3 + ["s2"] * 3
    norm = SpeakerMVN(4).fit(feats, spk)
    torch.testing.assert_close(norm.transform(b[0], "s2"), GlobalMVN(4).fit(b)(b[0]))
    torch.testing.assert_close(norm.transform(a[1], "s1"), GlobalMVN(4).fit(a)(a[1]))
    torch.testing.assert_close(norm.transform(a[0], "new"), GlobalMVN(4).fit(feats)(a[0]))
    strict = SpeakerMVN(4, unknown="error").fit(feats, spk)
    with pytest.raises(DataError, match=r"speaker 'new'.*known: s1, s2"):
        strict.transform(a[0], "new")
    restored = SpeakerMVN(1).load_state_dict(strict.state_dict())
    assert restored.unknown == "error" and sorted(restored.speakers) == ["s1", "s2"]
    torch.testing.assert_close(restored.transform(b[0], "s2"), strict.transform(b[0], "s2"))
    with pytest.raises(DataError, match="3 feature arrays but 2 speakers"):
        SpeakerMVN(4).fit(a, ["s1", "s2"])


def test_feature_normalizer_global_uses_training_stats_only():
    from vocalis.features.normalize import FeatureNormalizer

    train = [torch.full((2, 4), 2.0), torch.full((2, 4), 4.0)]
    test = torch.full((2, 3), 100.0)
    norm = FeatureNormalizer("global", 2).fit(train)
    assert torch.allclose(norm.normalize(train[0]), torch.full((2, 4), -1.0))
    assert torch.allclose(norm(test), torch.full((2, 3), 97.0))  # (100 - 3) / 1
    again = FeatureNormalizer.from_state(norm.state(), 2)
    assert torch.equal(again(test), norm(test))
    batch = torch.stack([test, torch.full((2, 3), 7.0)])
    out = again(batch, torch.tensor([3, 1]))
    assert torch.allclose(out[0], norm(test)) and float(out[1, :, 1:].abs().sum()) == 0.0


def test_feature_normalizer_speaker_own_stats_per_utterance_pooled_in_batches():
    from vocalis.features.normalize import FeatureNormalizer

    feats = [torch.randn(2, 50) + 5, torch.randn(2, 40) * 3 - 2]
    spk = FeatureNormalizer("speaker", 2).fit([], feats, ["a", "b"])
    for f, s in zip(feats, ["a", "b"], strict=True):
        assert torch.allclose(spk.normalize(f, s).mean(1), torch.zeros(2), atol=1e-4)
    pooled = GlobalMVN(2).fit(feats)
    again = FeatureNormalizer.from_state(spk.state(), 2)
    for norm in (spk, again):  # unknown speaker / batched forward: pooled statistics
        assert torch.allclose(norm(feats[0]), pooled(feats[0]), atol=1e-6)
        assert torch.allclose(norm.normalize(feats[0], "zz"), pooled(feats[0]), atol=1e-6)
    assert torch.allclose(again.normalize(feats[1], "b"), spk.normalize(feats[1], "b"))


def test_feature_normalizer_utterance_none_and_bad_states():
    from vocalis.errors import ConfigError, ModelError
    from vocalis.features.normalize import FeatureNormalizer

    x = torch.randn(2, 40) * 3 - 2
    utt = FeatureNormalizer("utterance", 2)
    assert torch.allclose(utt(x).std(1, unbiased=False), torch.ones(2), atol=1e-3)
    assert FeatureNormalizer("none", 2)(x) is x
    with pytest.raises(ConfigError, match=r"features\.normalization: got 'cmvn'"):
        FeatureNormalizer("cmvn", 2)
    with pytest.raises(ModelError, match="state is empty"):
        FeatureNormalizer.from_state({"mode": "global", "state": None}, 2)
    state = FeatureNormalizer("global", 3).fit([torch.randn(3, 5)]).state()
    with pytest.raises(ModelError, match="have 3 features, the feature extractor gives 2"):
        FeatureNormalizer.from_state(state, 2)
