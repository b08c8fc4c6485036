"""Model registry (custom models, defaults) and temperature calibration."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from _models_helpers import few_threads  # noqa: F401

from vocalis.errors import ConfigError
from vocalis.models import (
    MODELS,
    HeadFields,
    MultiHead,
    SpeechClassifier,
    build_model,
    calibrate_temperature,
    default_model_config,
    model_config_class,
)
from vocalis.models.masking import lengths_to_mask


@dataclass(frozen=True)
class TinyConfig(HeadFields):
    hidden: int = 8


class Tiny(SpeechClassifier):
    config_cls = TinyConfig

    def __init__(self, config, input_dim, num_classes, feature_name=None):
        super().__init__(config, input_dim, num_classes, feature_name)
        self.proj = torch.nn.Conv1d(input_dim, config.hidden, 1)
        self.embedding_dim = config.hidden
        self.head = MultiHead.from_config(config, config.hidden, num_classes)

    def encode(self, features, lengths):
        x = self.proj(features)
        mask = lengths_to_mask(lengths, x.shape[2]).unsqueeze(1)
        return (x * mask).sum(2) / lengths[:, None]


def test_register_and_build_a_custom_model():
    if "tiny-test" not in MODELS:
        MODELS.register("tiny-test")(Tiny)
    model = build_model("tiny-test", {"hidden": 5, "head_hidden": 3}, 7, [2, 2])
    assert isinstance(model, Tiny) and model.config == TinyConfig(hidden=5, head_hidden=3)
    out = model(torch.randn(3, 7, 10), torch.tensor([10, 4, 6]))
    assert out.logits.shape == (3, 4) and out.embedding.shape == (3, 5)
    assert model.embed(torch.randn(3, 7, 10), torch.tensor([10, 4, 6]), kind="ft").shape == (3, 3)
    assert default_model_config("tiny-test")["hidden"] == 8
    with pytest.raises(ConfigError, match="did you mean 'hidden'"):
        build_model("tiny-test", {"hiden": 3}, 7, 2)


def test_registered_class_without_config_is_reported():
    class NoConfig(SpeechClassifier):
        pass

    if "no-config-test" not in MODELS:
        MODELS.register("no-config-test")(NoConfig)
    with pytest.raises(ConfigError, match="config_cls"):
        build_model("no-config-test", {}, 7, 2)


def test_unknown_model_suggests_a_name():
    with pytest.raises(ConfigError, match="did you mean 'ecapa'"):
        build_model("ecapaa", {}, 80, 2)


def test_default_configs_round_trip():
    for name in ("tier1", "ecapa"):
        data = default_model_config(name)
        cfg = model_config_class(name)
        assert build_model(name, data, 40, 3).config == cfg()
    assert default_model_config("ecapa")["channels"] == [1024, 1024, 1024, 1024, 3072]
    assert build_model("tier1", {"name": "tier1"}, 40, 3).config == model_config_class("tier1")()


def test_config_instance_is_accepted_and_wrong_type_rejected():
    cfg = model_config_class("tier1")(channels=[8], lstm_hidden=4)
    assert build_model("tier1", cfg, 13, 2).config is cfg
    with pytest.raises(ConfigError, match="expects a Tier1Config"):
        build_model("tier1", model_config_class("ecapa")(), 13, 2)


def test_temperature_calibration_reduces_nll():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (400,), generator=g)
    clean = torch.randn(400, 5, generator=g) + 1.5 * torch.nn.functional.one_hot(labels, 5)
    for factor in (6.0, 0.2):  # over- and under-confident
        logits = factor * clean
        t = calibrate_temperature(logits, labels)
        nll_before = torch.nn.functional.cross_entropy(logits, labels).item()
        nll_after = torch.nn.functional.cross_entropy(logits / t, labels).item()
        assert nll_after < nll_before - 0.05
        assert (t > 1.0) == (factor > 1.5)
        # the accuracy does not change
        assert torch.equal((logits / t).argmax(1), logits.argmax(1))
