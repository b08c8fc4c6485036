"""Training: configs, losses, data and the loop.

``train(config, out_dir)`` turns an :class:`ExperimentConfig` into a run folder
(its ``model.pt`` predicts with :mod:`vocalis.inference` and is scored on a
manifest by :func:`vocalis.evaluation.evaluate`); ``load_config(recipe,
overrides)`` composes and validates a neural config, ``load_recipe`` any recipe
(neural or ``kind: ensemble``).

The names are imported from their modules on first use (:mod:`vocalis.lazy`), so
``from vocalis.training import load_config`` parses and validates a recipe
without importing torch: a CLI verb refuses a bad option before the training
engine is loaded.
"""

from __future__ import annotations

from vocalis.lazy import lazy_exports

#: Public name -> the module that defines it (imported on first use).
_EXPORTS = {
    "ExperimentConfig": "vocalis.training.config",
    "load_config": "vocalis.training.config",
    "load_recipe": "vocalis.training.config",
    "NonFiniteLossError": "vocalis.training.trainer",
    "TrainResult": "vocalis.training.trainer",
    "train": "vocalis.training.trainer",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
