"""Vocalis models: plain ``nn.Module`` classifiers found by name.

``build_model(name, config, input_dim, num_classes)`` builds a registered model
(``tier1``, ``ecapa``, or your own; see :mod:`vocalis.models.registry` for how to
register one). Every model maps padded features (B, F, T) and integer lengths
(B,) in frames to a :class:`ModelOutput` (logits, embedding, extras) and offers
``embed(features, lengths, kind="pt" | "ft" | "st")``.

Example:
    >>> import torch
    >>> from vocalis.models import build_model, MODELS
    >>> "ecapa" in MODELS and "tier1" in MODELS
    True
    >>> model = build_model("tier1", {"channels": [16], "lstm_hidden": 8}, 13, [3, 2]).eval()
    >>> out = model(torch.randn(1, 13, 20), torch.tensor([20]))
    >>> out.logits.shape, out.extras["head_1"].shape
    (torch.Size([1, 5]), torch.Size([1, 2]))
"""

from vocalis.models.base import InputNorm, ModelOutput, SpeechClassifier
from vocalis.models.calibration import calibrate_temperature

# Built-in models register themselves on import (after MODELS exists).
from vocalis.models.ecapa import Ecapa, EcapaConfig
from vocalis.models.heads import DenseHead, HeadFields, MultiHead
from vocalis.models.pooling import (
    POOLINGS,
    AttentionPooling,
    AttentiveStatisticsPooling,
    MeanPooling,
    StatisticsPooling,
    build_pooling,
)
from vocalis.models.registry import (
    MODELS,
    build_model,
    check_model_resources,
    default_model_config,
    model_config_class,
)
from vocalis.models.ssl import SSL, SSLConfig, SSLEncoderConfig
from vocalis.models.sv_fusion import SVFusion, SVFusionConfig
from vocalis.models.tier1 import Tier1, Tier1Config

__all__ = [
    "MODELS",
    "POOLINGS",
    "SSL",
    "AttentionPooling",
    "AttentiveStatisticsPooling",
    "DenseHead",
    "Ecapa",
    "EcapaConfig",
    "HeadFields",
    "InputNorm",
    "MeanPooling",
    "ModelOutput",
    "MultiHead",
    "SSLConfig",
    "SSLEncoderConfig",
    "SVFusion",
    "SVFusionConfig",
    "SpeechClassifier",
    "StatisticsPooling",
    "Tier1",
    "Tier1Config",
    "build_model",
    "build_pooling",
    "calibrate_temperature",
    "check_model_resources",
    "default_model_config",
    "model_config_class",
]
