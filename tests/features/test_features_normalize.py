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
