"""Training: configs, losses, data, the loop and evaluation of checkpoints.

``train(config, out_dir)`` turns an :class:`ExperimentConfig` into a run folder;
``evaluate(checkpoint, manifest)`` scores a checkpoint; ``load_config(recipe,
overrides)`` composes and validates a config.
"""

from __future__ import annotations

from vocalis.training.config import ExperimentConfig, load_config
from vocalis.training.evaluate import evaluate  # the function shadows its module's name
from vocalis.training.trainer import NonFiniteLossError, TrainResult, train

__all__ = [
    "ExperimentConfig",
    "NonFiniteLossError",
    "TrainResult",
    "evaluate",
    "load_config",
    "train",
]
