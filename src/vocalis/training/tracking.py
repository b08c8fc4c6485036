"""Experiment tracking beside ``history.csv``: TensorBoard or Weights & Biases (offline).

The run folder's CSV history is always written; ``tracking=tensorboard`` or
``tracking=wandb`` (the ``tracking`` config group, :class:`TrackingConfig`)
also sends each epoch's history row (``train/loss``, ``val/uar``, ``lr``...),
optionally the training loss every N steps, the test metrics and the resolved
config to a tracker. Nothing here is required: the packages come with the
``[tracking]`` extra (``pip install 'vocalis[tracking]'``) and are imported only
when a tracker is opened.

Weights & Biases runs in ``offline`` mode by default, so it needs no network and
no account: the run is written under ``<run>/wandb/`` and can be uploaded later
with ``wandb sync <run>/wandb/offline-run-*``. A resumed run continues the same
TensorBoard folder and the same W&B run id (kept in ``<run>/wandb/run_id``).

Only the main process of a run with a run folder tracks; other ranks and
in-memory runs get :class:`NullTracker`.

Example:
    >>> tracker = open_tracker(TrackingConfig(), None)
    >>> tracker.log_epoch({"epoch": 1, "train_loss": 0.5, "val_uar": 0.7})
    >>> type(tracker).__name__
    'NullTracker'
"""

from __future__ import annotations

import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from vocalis.errors import ConfigError
from vocalis.registry import Registry

#: Tracker factories by backend name: ``(config, folder, name) -> Tracker``.
TRACKERS: Registry[Any] = Registry("tracking backend")


@dataclass(frozen=True)
class TrackingConfig:
    """Where a run's metrics go besides ``history.csv`` (the ``tracking`` section).

    Args:
        backend: ``none``, ``tensorboard`` or ``wandb``.
        dir: the tracker's folder (``""``: ``<run>/tensorboard`` or ``<run>/wandb``).
        project: W&B project (TensorBoard ignores it).
        name: run name shown by the tracker (``""``: the run folder's name).
        mode: W&B ``offline`` (no network; ``wandb sync`` later) or ``online``.
        log_every_steps: also send the training loss and learning rate every N
            optimiser steps (0: once per epoch only).

    Raises:
        ConfigError: a negative ``log_every_steps``.
    """

    backend: Literal["none", "tensorboard", "wandb"] = "none"
    dir: str = ""
    project: str = "vocalis"
    name: str = ""
    mode: Literal["offline", "online"] = "offline"
    log_every_steps: int = 0

    def __post_init__(self) -> None:
        if self.log_every_steps < 0:
            raise ConfigError(
                f"tracking.log_every_steps: got {self.log_every_steps}, expected >= 0 "
                "(0: once per epoch)"
            )


def _scalars(row: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Finite numbers of a history row as tracker tags (``train_loss`` -> ``train/loss``)."""
    out = {}
    for key, value in row.items():
        if key == "epoch" or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(float(value)):
            continue
        split, _, rest = key.partition("_")
        tag = f"{split}/{rest}" if rest and split in ("train", "val", "test") else key
        out[prefix + tag] = float(value)
    return out


class Tracker:
    """What the training loop calls; the default does nothing (:class:`NullTracker`)."""

    def log_config(self, config: dict[str, Any]) -> None:
        """Record the resolved config (plain data)."""

    def log_step(self, step: int, loss: float, lr: float) -> None:
        """Record the training loss and learning rate of optimiser step ``step`` (1-based)."""

    def log_epoch(self, row: dict[str, Any]) -> None:
        """Record one ``history.csv`` row (its ``epoch`` is the step axis)."""

    def log_test(self, metrics: dict[str, Any], epoch: int) -> None:
        """Record the test metrics of the best weights."""

    def close(self) -> None:
        """Flush and close."""


class NullTracker(Tracker):
    """No tracking (``tracking.backend=none``, other ranks, runs without a folder)."""


@TRACKERS.register("none")
def _none(cfg: TrackingConfig, folder: Path, name: str) -> Tracker:
    return NullTracker()


class TensorBoardTracker(Tracker):
    """Scalars to TensorBoard event files (``torch.utils.tensorboard``).

    Args:
        folder: the event-file folder.
        name: unused (TensorBoard names a run by its folder).
    """

    def __init__(self, folder: Path, name: str = "") -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError(
                "tracking=tensorboard needs the tensorboard package: "
                "pip install 'vocalis[tracking]' (or tracking=none)"
            ) from None
        self.folder = folder
        self.writer = SummaryWriter(log_dir=str(folder))

    def log_config(self, config: dict[str, Any]) -> None:
        """The config as YAML text (TensorBoard's Text tab)."""
        import yaml

        text = yaml.safe_dump(config, sort_keys=False)
        self.writer.add_text("config", "```\n" + text + "\n```", 0)

    def log_step(self, step: int, loss: float, lr: float) -> None:
        """``step/train_loss`` and ``step/lr``."""
        self.writer.add_scalar("step/train_loss", loss, step)
        self.writer.add_scalar("step/lr", lr, step)

    def log_epoch(self, row: dict[str, Any]) -> None:
        """Every finite number of the row at step ``epoch``."""
        for tag, value in _scalars(row).items():
            self.writer.add_scalar(tag, value, int(row["epoch"]))
        self.writer.flush()

    def log_test(self, metrics: dict[str, Any], epoch: int) -> None:
        """``test/<metric>`` at the best epoch."""
        for tag, value in _scalars(metrics, "test/").items():
            self.writer.add_scalar(tag, value, epoch)
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()


@TRACKERS.register("tensorboard")
def _tensorboard(cfg: TrackingConfig, folder: Path, name: str) -> Tracker:
    return TensorBoardTracker(folder, name)


class WandbTracker(Tracker):
    """A Weights & Biases run, offline by default (no network, no account).

    Args:
        folder: W&B's folder (its ``wandb/`` files and ``run_id`` go there).
        name: the run name.
        project: the W&B project.
        mode: ``offline`` or ``online``.
    """

    def __init__(self, folder: Path, name: str, project: str, mode: str = "offline") -> None:
        try:
            import wandb
        except ImportError:
            raise ConfigError(
                "tracking=wandb needs the wandb package: pip install 'vocalis[tracking]' "
                "(or tracking=none)"
            ) from None
        folder.mkdir(parents=True, exist_ok=True)
        id_file = folder / "run_id"
        run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:8]
        id_file.write_text(run_id + "\n")
        os.environ.setdefault("WANDB_SILENT", "true")
        self.run = wandb.init(
            project=project,
            name=name or None,
            id=run_id,
            dir=str(folder),
            mode=mode,
            resume="allow",
            reinit="create_new",
        )
        self.folder = folder

    def log_config(self, config: dict[str, Any]) -> None:
        """The config as the run's config."""
        self.run.config.update(config, allow_val_change=True)

    def log_step(self, step: int, loss: float, lr: float) -> None:
        """``step/train_loss`` and ``step/lr`` with their step."""
        self.run.log({"step/train_loss": loss, "step/lr": lr, "step/step": step})

    def log_epoch(self, row: dict[str, Any]) -> None:
        """Every finite number of the row, with ``epoch``."""
        self.run.log({**_scalars(row), "epoch": int(row["epoch"])})

    def log_test(self, metrics: dict[str, Any], epoch: int) -> None:
        """``test/<metric>`` in the run summary."""
        for tag, value in _scalars(metrics, "test/").items():
            self.run.summary[tag] = value

    def close(self) -> None:
        """Finish the run (writes the offline run's files)."""
        self.run.finish()


@TRACKERS.register("wandb")
def _wandb(cfg: TrackingConfig, folder: Path, name: str) -> Tracker:
    return WandbTracker(folder, name, cfg.project, cfg.mode)


def open_tracker(
    cfg: TrackingConfig, run_dir: str | os.PathLike | None, *, main: bool = True
) -> Tracker:
    """The tracker of ``cfg`` for the run in ``run_dir``.

    Args:
        cfg: the tracking section.
        run_dir: the run folder (``None``: an in-memory run, which is not tracked).
        main: whether this is the main process (other ranks do not track).

    Returns:
        A :class:`Tracker` (:class:`NullTracker` for ``none``, other ranks or no folder).

    Raises:
        ConfigError: the backend's package is not installed (with the pip command).
    """
    if cfg.backend == "none" or run_dir is None or not main:
        return NullTracker()
    from vocalis.io import URLPath, as_path

    run = as_path(run_dir)
    if isinstance(run, URLPath) and not cfg.dir:
        raise ConfigError(
            f"tracking.backend={cfg.backend} writes its files to a local folder and the run "
            f"folder is {run}; set tracking.dir to a local folder (e.g. tracking.dir=runs/tb)"
        )
    folder = Path(cfg.dir) if cfg.dir else run / cfg.backend
    return TRACKERS.get(cfg.backend)(cfg, folder, cfg.name or run.name)


__all__ = [
    "TRACKERS",
    "NullTracker",
    "TensorBoardTracker",
    "Tracker",
    "TrackingConfig",
    "WandbTracker",
    "open_tracker",
]
