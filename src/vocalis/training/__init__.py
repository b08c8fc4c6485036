"""Training: configs, losses, data, the loop and evaluation of checkpoints.

``train(config, out_dir)`` turns an :class:`ExperimentConfig` into a run folder;
``evaluate(checkpoint, manifest)`` scores a checkpoint. The heavy parts are
imported on first use, so ``import vocalis.training`` stays cheap.
"""

from __future__ import annotations

from typing import Any

from vocalis.training.config import ExperimentConfig, load_config

__all__ = ["ExperimentConfig", "TrainResult", "evaluate", "load_config", "train"]


def __getattr__(name: str) -> Any:
    if name in ("train", "TrainResult"):
        from vocalis.training import trainer

        return getattr(trainer, name)
    if name == "evaluate":
        from vocalis.training.evaluate import evaluate

        return evaluate
    raise AttributeError(f"module 'vocalis.training' has no attribute {name!r}")
