"""Losses against torch references and their limiting cases."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vocalis.errors import ModelError
from vocalis.training.losses import (
    LOSSES,
    AAMSoftmax,
    BinaryCrossEntropy,
    CrossEntropy,
    FocalLoss,
    Objective,
    SmoothL1Loss,
    build_classification_loss,
    class_weights,
)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 4, generator=g) * 2, torch.tensor([0, 1, 2, 3, 0, 1, 0, 0])


def test_ce_matches_torch_with_weights_and_smoothing(batch):
    logits, y = batch
    w = torch.tensor([0.5, 1.0, 2.0, 1.5])
    ref = F.cross_entropy(logits, y, weight=w, label_smoothing=0.1)
    assert torch.allclose(CrossEntropy(w, 0.1)(logits, y), ref, atol=1e-6)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_focal_gamma0_equals_ce(batch, smoothing):
    logits, y = batch
    ref = F.cross_entropy(logits, y, label_smoothing=smoothing)
    assert torch.allclose(FocalLoss(0.0, label_smoothing=smoothing)(logits, y), ref, atol=1e-6)
    w = torch.tensor([0.5, 1.0, 2.0, 1.5])
    ref_w = F.cross_entropy(logits, y, weight=w)
    assert torch.allclose(FocalLoss(0.0, weight=w)(logits, y), ref_w, atol=1e-6)


def test_focal_matches_formula_and_downweights_easy_items(batch):
    logits, y = batch
    p = torch.softmax(logits, -1)[torch.arange(8), y]
    ref = (-((1 - p) ** 2) * p.log()).mean()
    assert torch.allclose(FocalLoss(2.0)(logits, y), ref, atol=1e-6)
    assert FocalLoss(2.0)(logits, y) < CrossEntropy()(logits, y)


def test_focal_of_the_seed_gamma1_class_weights_smoothing(batch):
    """The seed's loss: gamma 1, class weights, label smoothing 0.05, against the formula."""
    logits, y = batch
    w = torch.tensor([0.5, 1.0, 2.0, 1.5])
    logp = torch.log_softmax(logits, -1)
    q = F.one_hot(y, 4).float() * 0.95 + 0.05 / 4
    per_item = -(q * (1 - logp.exp()) * logp).sum(-1)
    ref = (w[y] * per_item).sum() / w[y].sum()
    got = build_classification_loss("focal", weight=w, label_smoothing=0.05, focal_gamma=1.0)
    assert torch.allclose(got(logits, y), ref, atol=1e-6)


def test_aam_margin0_is_scaled_ce_and_margin_increases_loss():
    g = torch.Generator().manual_seed(1)
    cos = torch.rand(6, 3, generator=g) * 2 - 1
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    ref = F.cross_entropy(30.0 * cos, y)
    assert torch.allclose(AAMSoftmax(0.0, 30.0)(cos, y), ref, atol=1e-5)
    assert AAMSoftmax(0.2, 30.0)(cos, y) > ref
    # the target logit becomes s * cos(theta + m)
    one = torch.tensor([[math.cos(0.5), 0.0]])
    expected = F.cross_entropy(torch.tensor([[30 * math.cos(0.7), 0.0]]), torch.tensor([0]))
    assert torch.allclose(AAMSoftmax(0.2, 30.0)(one, torch.tensor([0])), expected, atol=1e-5)


def test_aam_refuses_non_cosine_logits():
    with pytest.raises(ModelError, match="cosine"):
        AAMSoftmax()(torch.tensor([[3.0, -2.0]]), torch.tensor([0]))


def test_bce_multi_label_and_one_vs_rest(batch):
    logits, y = batch
    multi = (torch.rand(8, 4, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    ref = F.binary_cross_entropy_with_logits(logits, multi)
    assert torch.allclose(BinaryCrossEntropy()(logits, multi), ref, atol=1e-6)
    ref_ids = F.binary_cross_entropy_with_logits(logits, F.one_hot(y, 4).float())
    assert torch.allclose(BinaryCrossEntropy()(logits, y), ref_ids, atol=1e-6)


def test_regression_losses_ignore_missing_targets():
    pred = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    target = torch.tensor([[1.0, float("nan")], [2.0, 3.0]])
    mse = LOSSES.get("mse")()(pred, target)
    assert torch.allclose(mse, torch.tensor((1.0 + 0.0 + 9.0) / 3))
    sl1 = SmoothL1Loss()(pred, target)
    assert torch.allclose(sl1, torch.tensor((0.5 + 0.0 + 2.5) / 3))


def test_objective_adds_weighted_regression(batch):
    logits, y = batch
    va = torch.zeros(8, 2)
    target = torch.ones(8, 2)
    obj = Objective(CrossEntropy(), SmoothL1Loss(), regression_weight=0.5)
    loss, parts = obj(logits, y, {"va": va}, target)
    assert torch.allclose(loss, F.cross_entropy(logits, y) + 0.5 * 0.5, atol=1e-6)
    assert set(parts) == {"cls", "reg"}
    with pytest.raises(ModelError, match="extras"):
        obj(logits, y, {}, target)


def test_class_weights_inverse_frequency():
    w = class_weights([0, 0, 0, 1, 2, 2], 3)
    assert torch.allclose(w, torch.tensor([6 / 9, 6 / 3, 6 / 6]))
    # the average weight over training items is 1, so the loss scale is unchanged
    assert torch.isclose(w[torch.tensor([0, 0, 0, 1, 2, 2])].mean(), torch.tensor(1.0))
    from vocalis.errors import DataError

    with pytest.raises(DataError, match="'b' has no training example"):
        class_weights([0, 0], 2, classes=["a", "b"])
