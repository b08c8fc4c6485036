"""MemberAverage: the mean of several classifiers' probabilities, as one classifier."""

from __future__ import annotations

import pytest
import torch
from _models_helpers import padded_batch

from vocalis.errors import ModelError
from vocalis.models import build_model
from vocalis.models.members import MemberAverage

SMALL = {"channels": [8], "lstm_hidden": 8, "lstm_layers": 1, "pooling_hidden": 8}


def _members(n: int = 3) -> list[torch.nn.Module]:
    out = []
    for seed in range(n):
        torch.manual_seed(seed)
        out.append(build_model("tier1", SMALL, 13, 4, feature_name="mfcc").eval())
    return out


def test_probabilities_are_the_members_mean_and_logits_give_them_back():
    members = _members()
    model = MemberAverage(members).eval()
    x, lengths = padded_batch(13, [40, 25, 31])
    with torch.no_grad():
        out = model(x, lengths)
        each = torch.stack([m(x, lengths).extras["probs"] for m in members])
    assert torch.allclose(out.extras["probs"], each.mean(0), atol=1e-7)
    assert not torch.allclose(each[0], each[1])  # the members differ
    assert torch.allclose(out.logits.softmax(1), out.extras["probs"], atol=1e-6)
    assert torch.equal(out.extras["confidence"], out.extras["probs"].amax(1))
    assert out.embedding.shape == (3, 3 * members[0](x, lengths).embedding.shape[1])


def test_embeddings_are_the_members_side_by_side():
    members = _members(2)
    model = MemberAverage(members).eval()
    x, lengths = padded_batch(13, [30, 20])
    with torch.no_grad():
        got = model.embed(x, lengths, kind="pt")
        want = torch.cat([m.embed(x, lengths, kind="pt") for m in members], dim=1)
    assert torch.equal(got, want)


def test_the_state_dict_round_trips_and_one_member_is_refused():
    model = MemberAverage(_members(2))
    fresh = MemberAverage(_members(2)[::-1])
    fresh.load_state_dict(model.state_dict())
    x, lengths = padded_batch(13, [30])
    with torch.no_grad():
        assert torch.equal(model.eval()(x, lengths).logits, fresh.eval()(x, lengths).logits)
    assert model.head is model.members[0].head
    with pytest.raises(ModelError, match="at least 2 members, got 1"):
        MemberAverage(_members(1))
