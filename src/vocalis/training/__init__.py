"""Training: configs, losses, data and the loop.

``train(config, out_dir)`` turns an :class:`ExperimentConfig` into a run folder
(its ``model.pt`` predicts with :mod:`vocalis.inference` and is scored on a
manifest by :func:`vocalis.evaluation.evaluate`); ``load_config(recipe,
overrides)`` composes and validates a neural config, ``load_recipe`` any recipe
(neural or ``kind: ensemble``).
"""

from __future__ import annotations

from vocalis.training.config import ExperimentConfig, load_config, load_recipe
from vocalis.training.trainer import NonFiniteLossError, TrainResult, train

__all__ = [
    "ExperimentConfig",
    "NonFiniteLossError",
    "TrainResult",
    "load_config",
    "load_recipe",
    "train",
]
