"""tier1 (SER_Tier1): shapes, padding invariance, overfitting, options, errors."""

from __future__ import annotations

import pytest
import torch
from _models_helpers import (  # noqa: F401
    assert_padding_invariant,
    few_threads,
    overfit,
    padded_batch,
    randomize_norms,
)

from vocalis.errors import ConfigError, ModelError
from vocalis.models import build_model

SMALL = {"channels": [16, 24], "lstm_hidden": 12, "pooling_hidden": 8, "attention_heads": 2}
LENGTHS = [30, 12, 21, 7]


def small(**overrides):
    torch.manual_seed(0)
    return build_model("tier1", {**SMALL, **overrides}, 13, 4, feature_name="mfcc")


def test_forward_shapes_and_extras():
    model = small(va_head=True).eval()
    x, lengths = padded_batch(13, LENGTHS)
    out = model(x, lengths)
    assert out.logits.shape == (4, 4)
    assert out.embedding.shape == (4, 24) == (4, model.embedding_dim)
    torch.testing.assert_close(out.extras["probs"].sum(1), torch.ones(4))
    torch.testing.assert_close(out.extras["confidence"], out.extras["probs"].amax(1))
    assert out.extras["va"].shape == (4, 2)
    assert out.extras["channel_weights"].shape == (4, 13)


def test_default_config_shapes():
    torch.manual_seed(0)
    model = build_model("tier1", {}, 40, 7).eval()
    out = model(torch.randn(2, 40, 50), torch.tensor([50, 33]))
    assert out.logits.shape == (2, 7) and out.embedding.shape == (2, 256)
    assert 0.5e6 < model.num_parameters() < 2e6


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"conv": "plain"},
        {"pooling": "mean"},
        {"pooling_heads": 3, "va_head": True},
        {"lstm_packed": True},
    ],
)
def test_padded_batch_equals_items_alone(overrides):
    model = randomize_norms(small(**overrides)).eval()
    x, lengths = padded_batch(13, LENGTHS)
    assert_padding_invariant(lambda f, n: model(f, n).logits, x, lengths)
    assert_padding_invariant(lambda f, n: model(f, n).embedding, x, lengths)


def test_overfits_eight_utterances():
    model = small(head_dropout=0.0)
    assert overfit(model, 13, steps=150, lr=5e-3) < 0.1


def test_embed_kinds():
    model = small(head_hidden=6, shared_dim=10).eval()
    x, lengths = padded_batch(13, LENGTHS)
    assert model.embed(x, lengths, kind="pt").shape == (4, 24)
    assert model.embed(x, lengths, kind="st").shape == (4, 10)
    assert model.embed(x, lengths, kind="ft").shape == (4, 6)
    torch.testing.assert_close(model.embed(x, lengths), model(x, lengths).embedding)
    with pytest.raises(ModelError, match="shared_dim=0"):
        small().embed(x, lengths, kind="st")
    with pytest.raises(ModelError, match="'pt', 'ft' or 'st'"):
        model.embed(x, lengths, kind="xx")


def test_multi_head_logits():
    torch.manual_seed(0)
    model = build_model("tier1", SMALL, 13, [2, 1]).eval()
    out = model(*padded_batch(13, LENGTHS))
    assert out.logits.shape == (4, 3)
    torch.testing.assert_close(
        out.logits, torch.cat([out.extras["head_0"], out.extras["head_1"]], 1)
    )
    assert out.extras["probs"].shape == (4, 3)


def test_wrong_feature_dimension_names_the_features():
    model = small()
    with pytest.raises(ModelError) as err:
        model(torch.randn(1, 80, 20), torch.tensor([20]))
    assert str(err.value) == (
        "model expects F=13 input features (built for mfcc), got 80: "
        "use --features that match or retrain"
    )
    with pytest.raises(ModelError, match="unsqueeze"):
        model(torch.randn(13, 20), torch.tensor([20]))


def test_invalid_config_is_rejected():
    with pytest.raises(ConfigError, match="did you mean 'channels'"):
        build_model("tier1", {"channel": [8]}, 13, 4)
    with pytest.raises(ConfigError, match="odd"):
        build_model("tier1", {"kernel_size": 4}, 13, 4)
    with pytest.raises(ConfigError, match="expected one of"):
        build_model("tier1", {"conv": "dilated"}, 13, 4)


def test_temperature_scales_logits_and_is_in_state_dict():
    model = small(temperature=True).eval()
    x, lengths = padded_batch(13, LENGTHS)
    before = model(x, lengths)
    model.set_temperature(2.0)
    after = model(x, lengths)
    torch.testing.assert_close(after.logits, before.logits / 2.0)
    torch.testing.assert_close(after.extras["uncalibrated_logits"], before.logits)
    assert model.state_dict()["temperature"].item() == 2.0
    with pytest.raises(ModelError, match="temperature=false"):
        small().set_temperature(2.0)


def test_length_aware_lstm_equals_packed_sequences():
    """Same weights, packed (torch's reference) vs reversed-within-length: same outputs."""
    fast = small().eval()
    packed = build_model("tier1", {**SMALL, "lstm_packed": True}, 13, 4).eval()
    packed.load_state_dict(fast.state_dict())
    x, lengths = padded_batch(13, LENGTHS)
    with torch.no_grad():
        a, b = fast(x, lengths), packed(x, lengths)
    torch.testing.assert_close(a.logits, b.logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(a.embedding, b.embedding, atol=1e-5, rtol=1e-4)


def test_padding_gets_no_gradient_in_training():
    """With dropout off, the loss of a padded batch does not depend on padded frames."""
    model = small(conv_dropout=0.0, lstm_dropout=0.0, head_dropout=0.0)
    model.train()
    for m in model.modules():  # batch statistics would mix items; use running stats
        if isinstance(m, torch.nn.BatchNorm1d):
            m.eval()
    x, lengths = padded_batch(13, LENGTHS)
    x.requires_grad_(True)
    model(x, lengths).logits.square().sum().backward()
    for i, n in enumerate(LENGTHS):
        assert x.grad[i, :, :n].abs().sum() > 0
        assert x.grad[i, :, n:].abs().sum() == 0
