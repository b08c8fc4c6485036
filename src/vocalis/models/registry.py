"""Models by name: :data:`MODELS`, :func:`build_model` and friends.

Every entry is a :class:`~vocalis.models.base.SpeechClassifier` subclass whose
``config_cls`` is a frozen dataclass; :func:`build_model` validates a plain dict
(from YAML, a checkpoint or the command line) into that config, rejecting
unknown keys with the nearest valid one.

Registering your own model::

    from dataclasses import dataclass

    import torch
    from vocalis.models import MODELS, HeadFields, MultiHead, SpeechClassifier

    @dataclass(frozen=True)
    class MineConfig(HeadFields):       # HeadFields adds head_hidden, shared_dim, ...
        hidden: int = 64

    @MODELS.register("mine")
    class Mine(SpeechClassifier):
        config_cls = MineConfig

        def __init__(self, config, input_dim, num_classes, feature_name=None):
            super().__init__(config, input_dim, num_classes, feature_name)
            self.proj = torch.nn.Conv1d(input_dim, config.hidden, 1)
            self.embedding_dim = config.hidden
            self.head = MultiHead.from_config(config, config.hidden, num_classes)

        def encode(self, features, lengths):   # (B, F, T), (B,) -> (B, E)
            x = self.proj(features)
            mask = torch.arange(x.shape[2]) < lengths[:, None]
            return (x * mask[:, None]).sum(2) / lengths[:, None]

After the module defining it is imported, ``model: {name: mine, hidden: 32}``
works wherever a built-in model does (training, checkpoints, ``vocalis embed``).
A model that does not use :class:`~vocalis.models.heads.MultiHead` overrides
``forward`` (returning a :class:`~vocalis.models.base.ModelOutput`) and ``embed``.
A model that reads files it does not hold (pretrained weights) overrides the
classmethod ``check_resources(config)``, which training and cross-validation call
once, before any audio is read (:func:`check_model_resources`).

Example:
    >>> from vocalis.models import build_model
    >>> model = build_model("tier1", {"channels": [16, 32], "lstm_hidden": 16}, 40, 4)
    >>> model.num_classes, model.input_dim
    (4, 40)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from vocalis.config import from_dict, to_dict
from vocalis.errors import ConfigError
from vocalis.models.base import SpeechClassifier
from vocalis.registry import Registry

#: Registered model classes (``SpeechClassifier`` subclasses with a ``config_cls``).
MODELS: Registry[type[SpeechClassifier]] = Registry("model")


def model_config_class(name: str) -> type:
    """The frozen config dataclass of the model registered as ``name``.

    Raises:
        ConfigError: unknown model name, or a registered class without ``config_cls``.
    """
    cls = MODELS.get(name)
    config_cls = getattr(cls, "config_cls", None)
    if config_cls is None or not dataclasses.is_dataclass(config_cls):
        raise ConfigError(
            f"model '{name}' ({cls.__name__}) has no config_cls dataclass: set "
            "config_cls = YourConfig on the class you registered"
        )
    return config_cls


def default_model_config(name: str) -> dict[str, Any]:
    """The default config of model ``name`` as plain data (for ``vocalis config show``).

    Example:
        >>> default_model_config("ecapa")["embedding_dim"]
        192
    """
    return to_dict(model_config_class(name)())


def check_model_resources(name: str, config: Any) -> None:
    """Refuse, before any data is read, a model whose outside inputs are missing.

    Calls :meth:`~vocalis.models.base.SpeechClassifier.check_resources` of the model
    registered as ``name`` (``model=ssl`` checks that its pretrained encoder is there).

    Args:
        name: registered model name.
        config: an instance of the model's config class (``ModelConfig.params``).

    Raises:
        ConfigError: an unknown model, or a missing input (one line).
    """
    MODELS.get(name).check_resources(config)


def build_model(
    name: str,
    config: dict[str, Any] | Any | None,
    input_dim: int,
    num_classes: int | list[int],
    feature_name: str | None = None,
) -> SpeechClassifier:
    """Build the model registered as ``name``.

    Args:
        name: registered model name (``tier1``, ``ecapa``, ...).
        config: a dict of overrides (validated; unknown keys are rejected) or an
            instance of the model's config class. A ``name`` key is ignored.
        input_dim: feature dimension F.
        num_classes: classes of the single head, or one entry per head.
        feature_name: feature set the model is built for, named in shape errors.

    Raises:
        ConfigError: unknown model or an invalid config.
    """
    cls = MODELS.get(name)
    config_cls = model_config_class(name)
    if config is None or isinstance(config, dict):
        data = {k: v for k, v in (config or {}).items() if k != "name"}
        config = from_dict(config_cls, data, where="model.params")
    elif not isinstance(config, config_cls):
        raise ConfigError(
            f"model '{name}' expects a {config_cls.__name__} or a dict, got {type(config).__name__}"
        )
    return cls(config, input_dim, num_classes, feature_name=feature_name)
