"""One training run in memory: its config, folder, data, engine, components and counters.

The step loop (:mod:`~vocalis.training.loop`), resuming
(:mod:`~vocalis.training.resume`) and validation
(:mod:`~vocalis.training.validation`) are functions of a :class:`Session`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vocalis.errors import ModelError
from vocalis.training.config import ExperimentConfig
from vocalis.training.state import LoopState
from vocalis.training.tracking import NullTracker, Tracker

if TYPE_CHECKING:
    from vocalis.training.components import Components
    from vocalis.training.engine import Engine
    from vocalis.training.prepared import PreparedData
    from vocalis.training.runfolder import RunFolder


class NonFiniteLossError(ModelError):
    """The training loss became NaN or infinite."""


class DivergedError(ModelError):
    """The training loss grew by orders of magnitude: the run diverged."""


@dataclass
class Session:
    """What a run has built, and where it stands.

    Args:
        cfg: the experiment config.
        run: the run folder (inactive on ranks > 0 and for in-memory runs).
        data: the prepared data.
        engine: device, ranks and precision.
        parts: the built components (``parts.model`` is the unwrapped model).
        progress: show progress bars.
        state: the resumable counters.
        model: the model the loop trains (``parts.model``, in DDP under ``torchrun``).
        tracker: where metrics go besides ``history.csv``
            (:func:`~vocalis.training.tracking.open_tracker`; set by the trainer).
    """

    cfg: ExperimentConfig
    run: RunFolder
    data: PreparedData
    engine: Engine
    parts: Components
    progress: bool = True
    state: LoopState = field(default_factory=LoopState)
    model: torch.nn.Module | None = None
    tracker: Tracker = field(default_factory=NullTracker)

    def __post_init__(self) -> None:
        if self.model is None:
            self.model = self.parts.model

    @property
    def classes(self) -> list[str]:
        """Class names in id order."""
        return list(self.data.encoder.classes)

    @property
    def first_head_size(self) -> int:
        """Outputs of the first head (all of them for a single-head run)."""
        heads = self.data.heads
        return len(self.data.encoder.classes) if not heads else heads[0].size

    @property
    def raw_model(self) -> torch.nn.Module:
        """The model without its DDP wrapper (what checkpoints hold)."""
        return self.parts.model

    def best_row(self) -> dict[str, Any]:
        """The history row of the best epoch (``{}`` before the first one)."""
        best = self.parts.stopper.best_epoch
        return next((h for h in self.state.history if h["epoch"] == best), {})


def fmt(value: float | None) -> str:
    """A metric for the log: four decimals, ``nan`` for missing or NaN values."""
    return "nan" if value is None or np.isnan(value) else f"{value:.4f}"


def plain(value: Any) -> Any:
    """JSON- and checkpoint-safe copy (numpy scalars and arrays become Python values)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


__all__ = ["NonFiniteLossError", "Session", "fmt", "plain"]
