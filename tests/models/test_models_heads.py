"""Dense, cosine and multi-task heads; ft / st embeddings."""

from __future__ import annotations

import pytest
import torch
from _models_helpers import few_threads  # noqa: F401

from vocalis.errors import ModelError
from vocalis.models.heads import DenseHead, MultiHead, head_probs


def test_multi_head_concatenates_logits_in_head_order():
    torch.manual_seed(0)
    head = MultiHead(10, [2, 1, 3], hidden=6, shared_dim=8).eval()
    x = torch.randn(5, 10)
    out = head(x)
    assert out.logits.shape == (5, 6)
    assert [p.shape[1] for p in out.per_head] == [2, 1, 3]
    torch.testing.assert_close(out.logits, torch.cat(out.per_head, dim=1))
    torch.testing.assert_close(out.per_head[2], head.heads[2](head.shared(x)))


def test_ft_merges_heads_by_mean_or_sum():
    torch.manual_seed(0)
    head = MultiHead(10, [2, 3], hidden=4).eval()
    x = torch.randn(3, 10)
    parts = torch.stack([h.ft(x) for h in head.heads])
    torch.testing.assert_close(head.ft(x, "mean"), parts.mean(0))
    torch.testing.assert_close(head.ft(x, "sum"), parts.sum(0))
    with pytest.raises(ModelError, match="'mean' or 'sum'"):
        head.ft(x, "max")


def test_missing_layers_raise_model_errors():
    head = MultiHead(10, 3)
    with pytest.raises(ModelError, match="head_hidden=0"):
        head.ft(torch.randn(2, 10))
    with pytest.raises(ModelError, match="shared_dim=0"):
        head.st(torch.randn(2, 10))
    with pytest.raises(ModelError, match="num_classes"):
        MultiHead(10, [])


def test_cosine_head_gives_cosines_of_normalised_vectors():
    torch.manual_seed(0)
    head = DenseHead(8, 4, cosine=True)
    x = torch.randn(6, 8)
    out = head(x)
    assert out.abs().max() <= 1.0 + 1e-6
    torch.testing.assert_close(head(3.0 * x), out)  # scale invariant
    w = head.out.weight[1]
    expected = torch.nn.functional.cosine_similarity(x, w.expand_as(x), dim=1)
    torch.testing.assert_close(out[:, 1], expected)


def test_layernorm_and_activation_options():
    torch.manual_seed(0)
    head = DenseHead(8, 3, hidden=5, activation="gelu", layernorm=True)
    assert isinstance(head.norm, torch.nn.LayerNorm)
    assert isinstance(head.hidden[1], torch.nn.GELU)
    assert head(torch.randn(2, 8)).shape == (2, 3)


def test_head_probs_softmax_and_sigmoid():
    logits = [torch.tensor([[0.0, 2.0]]), torch.tensor([[0.0]])]
    p = head_probs(logits)
    assert p[0, :2].sum().item() == pytest.approx(1.0)
    assert p[0, 2].item() == pytest.approx(0.5)
