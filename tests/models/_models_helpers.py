"""Shared helpers for the model tests (padded batches, overfitting, thread limits).

Imported by the ``test_models_*.py`` files; not a test module itself.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn


def randomize_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BatchNorm non-trivial running statistics and affine parameters,
    so that a padded frame that leaks into a result would change it."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm1d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g))
    return model


def padded_batch(
    feat_dim: int, lengths: list[int], seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random features (B, F, max(lengths)) whose padded frames hold large noise."""
    g = torch.Generator().manual_seed(seed)
    t = max(lengths)
    x = torch.randn(len(lengths), feat_dim, t, generator=g)
    for i, n in enumerate(lengths):
        x[i, :, n:] = 100.0 * torch.randn(feat_dim, t - n, generator=g)
    return x, torch.tensor(lengths)


def assert_padding_invariant(fn, x: torch.Tensor, lengths: torch.Tensor, atol: float = 1e-5):
    """``fn(x, lengths) -> (B, ...)``: each row equals ``fn`` on the item alone."""
    with torch.no_grad():
        batched = fn(x, lengths)
        for i, n in enumerate(lengths.tolist()):
            alone = fn(x[i : i + 1, :, :n].clone(), torch.tensor([n]))
            torch.testing.assert_close(batched[i : i + 1], alone, atol=atol, rtol=1e-4)


@pytest.fixture(autouse=True)
def few_threads():
    """Run each test on one thread (the machine is shared)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def overfit(model: nn.Module, feat_dim: int, steps: int, lr: float = 3e-3, seed: int = 0):
    """Train on 8 random utterances (varied lengths) with 4 labels; return final CE loss."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    lengths = [60, 48, 36, 60, 52, 40, 44, 56]
    x, lens = padded_batch(feat_dim, lengths, seed)
    labels = torch.arange(8, dtype=torch.long) % 4
    labels = labels[torch.randperm(8, generator=g)]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    loss = torch.tensor(float("inf"))
    for _ in range(steps):
        opt.zero_grad()
        out = model(x, lens)
        loss = nn.functional.cross_entropy(out.logits, labels)
        loss.backward()
        opt.step()
        if loss.item() < 0.05:
            break
    return loss.item()
