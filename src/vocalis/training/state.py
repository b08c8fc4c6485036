"""Reproducibility and resumable state: seeds, RNG snapshots, early stopping.

Example:
    >>> stop = EarlyStopping(monitor="val_uar", mode="max", patience=2)
    >>> [stop.update(v, epoch) for epoch, v in enumerate([0.5, 0.6, 0.6, 0.59], start=1)]
    [True, True, False, False]
    >>> stop.should_stop, stop.best_epoch
    (True, 2)

:class:`GracefulInterrupt` turns Ctrl-C into a stop at the next step boundary;
:class:`LoopState` holds the counters a checkpoint saves.
"""

from __future__ import annotations

import math
import os
import random
import signal
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch; optionally force deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        if torch.backends.cudnn.is_available():
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True


def step_seed(seed: int, epoch: int, step: int, rank: int = 0) -> int:
    """Seed of the random streams (dropout, augmentation) of one training step.

    Reseeding every step from ``(seed, epoch, step, rank)`` makes a run resumed at
    any step boundary draw exactly the numbers of an uninterrupted one.
    """
    ss = np.random.SeedSequence([int(seed), int(epoch), int(step), int(rank), 7])
    return int(ss.generate_state(1, np.uint64)[0] >> 1)


def rng_state() -> dict[str, Any]:
    """Snapshot of the global generators (Python, NumPy, torch, CUDA), checkpoint-safe."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "name": name,
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a :func:`rng_state` snapshot."""
    if "python" in state:
        version, internal, gauss = state["python"]
        random.setstate((version, tuple(internal), gauss))
    if "numpy" in state:
        s = state["numpy"]
        keys = np.asarray(s["keys"].numpy(), dtype=np.uint32)
        np.random.set_state((s["name"], keys, s["pos"], s["has_gauss"], s["gauss"]))
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class EarlyStopping:
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    Args:
        monitor: metric name (for messages).
        mode: ``max`` or ``min``.
        patience: epochs without improvement tolerated; 0 never stops.
        min_delta: smallest change that counts as an improvement.
    """

    def __init__(
        self,
        monitor: str = "val_uar",
        mode: str = "max",
        patience: int = 10,
        min_delta: float = 0.0,
    ) -> None:
        self.monitor, self.mode = monitor, mode
        self.patience, self.min_delta = int(patience), float(min_delta)
        self.best: float | None = None
        self.best_epoch = 0
        self.bad_epochs = 0

    def improves(self, value: float) -> bool:
        """Would ``value`` be a new best?"""
        if value is None or math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "max":
            return value > self.best + self.min_delta
        return value < self.best - self.min_delta

    def update(self, value: float, epoch: int) -> bool:
        """Record epoch ``epoch``'s value; True when it is the new best."""
        if self.improves(value):
            self.best, self.best_epoch, self.bad_epochs = float(value), int(epoch), 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        """True once ``patience`` epochs in a row did not improve (never with patience 0)."""
        return self.patience > 0 and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        """The state a checkpoint keeps (best value and epoch, epochs without improvement)."""
        return {
            "monitor": self.monitor,
            "mode": self.mode,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "bad_epochs": self.bad_epochs,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        self.best = state.get("best")
        self.best_epoch = int(state.get("best_epoch", 0))
        self.bad_epochs = int(state.get("bad_epochs", 0))


class GracefulInterrupt:
    """Turns the first SIGINT or SIGTERM into a request to stop at the next step boundary.

    A thin use of :func:`vocalis.signals.deferred`: the loop polls
    :attr:`requested` after every step and saves ``last.pt`` there; a step (or
    validation) that does not reach that point within
    :data:`vocalis.signals.GRACE_S` seconds is abandoned by
    :class:`~vocalis.signals.Stopped` (the previous ``last.pt`` stays the
    resume point), and a second signal stops at once. SIGTERM is what batch
    schedulers send before pre-empting a job, so a pre-empted run resumes too.
    """

    def __init__(self) -> None:
        self.after = int(os.environ.get("VOCALIS_INTERRUPT_AFTER_STEPS", "0") or 0)
        self.steps = 0
        self._forced = False
        self._block: Any = None
        self._context: Any = None

    @property
    def requested(self) -> bool:
        """True once a signal (or ``VOCALIS_INTERRUPT_AFTER_STEPS``) asked to stop."""
        return self._forced or bool(self._block is not None and self._block.requested)

    @property
    def signum(self) -> int:
        """The signal that asked to stop (SIGINT for the test hook)."""
        from vocalis.signals import stop_signal

        return stop_signal() or int(signal.SIGINT)

    def __enter__(self) -> GracefulInterrupt:
        from vocalis.signals import deferred

        self._context = deferred()
        self._block = self._context.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        context, self._context = self._context, None
        if context is not None:
            context.__exit__(*exc)

    def step(self) -> None:
        """Count one step; ``VOCALIS_INTERRUPT_AFTER_STEPS`` turns into a stop request."""
        self.steps += 1
        if self.after and self.steps >= self.after:
            self._forced = True


@dataclass
class LoopState:
    """The counters of a training run that a checkpoint saves and a resume restores.

    Attributes:
        history: one dict per finished epoch (the rows of ``history.csv``).
        best_state: CPU copy of the best epoch's weights (``None`` before one).
        best_val: validation metrics of the best epoch.
        start_epoch: 0-based epoch the loop starts at.
        skip: steps of ``start_epoch`` already done (a run stopped mid-epoch).
        global_step: optimiser steps so far.
        partial: ``[loss * n, correct, n, mixed correct]`` of the steps of an epoch stopped midway.
        epoch_lr: learning rate at the start of the current epoch.
        calibration: the temperatures fitted at the end of training and the validation
            ECE before and after (``metrics.json`` ``details.calibration``), or ``{}``.
    """

    history: list[dict[str, Any]] = field(default_factory=list)
    best_state: dict[str, torch.Tensor] | None = None
    best_val: dict[str, Any] = field(default_factory=dict)
    start_epoch: int = 0
    skip: int = 0
    global_step: int = 0
    partial: list[float] | None = None
    epoch_lr: float = 0.0
    calibration: dict[str, Any] = field(default_factory=dict)
