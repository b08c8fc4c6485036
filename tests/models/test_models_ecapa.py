"""ecapa (ECAPA-TDNN): presets, shapes, padding invariance, overfitting, options."""

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

SMALL = {
    "channels": [64, 64, 64, 64, 192],
    "se_channels": 16,
    "attention_channels": 16,
    "embedding_dim": 32,
}
LENGTHS = [40, 13, 27, 9]


def small(input_dim: int = 20, num_classes=4, **overrides):
    torch.manual_seed(0)
    return build_model("ecapa", {**SMALL, **overrides}, input_dim, num_classes)


def test_presets_have_the_expected_sizes():
    c512 = build_model("ecapa", {"preset": "c512"}, 80, 7)
    c1024 = build_model("ecapa", {}, 80, 7)
    backbone = c512.num_parameters() - sum(p.numel() for p in c512.head.parameters())
    # SpeechBrain's ECAPA C=512 on 80 fbanks has 6.2 M parameters, C=1024 20.8 M.
    assert backbone == pytest.approx(6.19e6, rel=0.01)
    assert c1024.num_parameters() == pytest.approx(20.77e6, rel=0.01)
    assert c512.config.resolved_channels == [512, 512, 512, 512, 1536]
    with torch.no_grad():
        out = c512.eval()(torch.randn(2, 80, 30), torch.tensor([30, 17]))
    assert out.logits.shape == (2, 7) and out.embedding.shape == (2, 192)


@pytest.mark.parametrize("input_dim", [40, 80])
def test_forward_shapes(input_dim):
    model = small(input_dim).eval()
    out = model(*padded_batch(input_dim, LENGTHS))
    assert out.logits.shape == (4, 4) and out.embedding.shape == (4, 32)
    torch.testing.assert_close(out.extras["probs"].sum(1), torch.ones(4))


@pytest.mark.parametrize(
    "overrides", [{}, {"global_context": False}, {"kernel_sizes": [5, 3, 3, 3, 3]}]
)
def test_padded_batch_equals_items_alone(overrides):
    model = randomize_norms(small(**overrides)).eval()
    x, lengths = padded_batch(20, LENGTHS)
    assert_padding_invariant(lambda f, n: model(f, n).logits, x, lengths)
    assert_padding_invariant(lambda f, n: model(f, n).embedding, x, lengths)


def test_overfits_eight_utterances():
    model = small(head_dropout=0.0)
    assert overfit(model, 20, steps=150, lr=3e-3) < 0.1


def test_cosine_head_logits_are_cosines():
    model = small(head="cosine").eval()
    out = model(*padded_batch(20, LENGTHS))
    assert out.logits.abs().max() <= 1.0 + 1e-6
    # probs use the configured scale: softmax(30 * cos)
    torch.testing.assert_close(out.extras["probs"], torch.softmax(30.0 * out.logits, dim=1))


def test_input_norm_is_applied_and_saved():
    model = small(input_norm=True).eval()
    x, lengths = padded_batch(20, LENGTHS)
    mean, std = torch.randn(20), torch.rand(20) + 0.5
    model.set_input_norm(mean, std)
    state = model.state_dict()
    torch.testing.assert_close(state["input_norm.mean"], mean)
    reference = small(input_norm=False).eval()
    reference.load_state_dict({k: v for k, v in state.items() if not k.startswith("input_norm")})
    normed = (x - mean[:, None]) / std[:, None]
    torch.testing.assert_close(model(x, lengths).logits, reference(normed, lengths).logits)
    with pytest.raises(ModelError, match="input_norm=false"):
        reference.set_input_norm(mean, std)
    with pytest.raises(ModelError, match="one per input feature"):
        model.set_input_norm(torch.zeros(3), torch.ones(3))


def test_embed_kinds_with_multi_head():
    model = small(num_classes=[3, 2], head_hidden=8, shared_dim=12).eval()
    x, lengths = padded_batch(20, LENGTHS)
    assert model(x, lengths).logits.shape == (4, 5)
    assert model.embed(x, lengths, kind="pt").shape == (4, 32)
    assert model.embed(x, lengths, kind="st").shape == (4, 12)
    ft_mean = model.embed(x, lengths, kind="ft", pooling="mean")
    ft_sum = model.embed(x, lengths, kind="ft", pooling="sum")
    torch.testing.assert_close(ft_sum, 2 * ft_mean)


def test_config_validation():
    with pytest.raises(ConfigError, match="disagree"):
        build_model("ecapa", {"preset": "c512", "channels": [64, 64, 64, 64, 192]}, 80, 4)
    with pytest.raises(ConfigError, match="expected one of"):
        build_model("ecapa", {"preset": "c256"}, 80, 4)
    with pytest.raises(ConfigError, match="divisible"):
        build_model("ecapa", {"channels": [60, 60, 60, 60, 180]}, 80, 4)
    with pytest.raises(ConfigError, match="same length"):
        build_model("ecapa", {"channels": [64, 64, 192]}, 80, 4)


def test_wrong_feature_dimension():
    model = build_model("ecapa", SMALL, 40, 4, feature_name="mfcc")
    with pytest.raises(ModelError, match=r"F=40 input features \(built for mfcc\), got 80"):
        model(torch.randn(1, 80, 20), torch.tensor([20]))


class LogitsOnly(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, features, lengths):
        return self.model(features, lengths).logits


@pytest.mark.parametrize("name", ["ecapa", "tier1"])
def test_traced_model_keeps_masking_when_fast_path_is_off(name):
    """Tracing on an unpadded example must not bake in the no-mask fast path."""
    import warnings

    if name == "ecapa":
        model = randomize_norms(small()).eval()
    else:
        torch.manual_seed(0)
        model = build_model("tier1", {"channels": [16], "lstm_hidden": 8}, 20, 4)
        model = randomize_norms(model).eval()
    x, lengths = padded_batch(20, LENGTHS)
    full = torch.full((4,), x.shape[2])
    model.skip_masks_when_unpadded = False
    torch.testing.assert_close(model(x, full).logits, model(x, None).logits)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(LogitsOnly(model), (x, full), check_trace=False)
        torch.testing.assert_close(traced(x, lengths), model(x, lengths).logits)
