"""The training loop: one call from a config to a trusted run folder.

:func:`train` builds everything from an :class:`~vocalis.training.config.ExperimentConfig`
(manifest, speaker-independent split, cached features, normalisation, model,
loss, optimiser, schedule), trains with a progress bar and one summary line per
epoch, keeps ``best.pt`` (by ``train.monitor``) and ``last.pt``, and evaluates
the best weights on test rows when there are some.

Resuming: an existing run folder resumes from ``checkpoints/last.pt`` when its
``config.yaml`` matches (``train.epochs`` may grow); ``overwrite=True`` starts
over. Ctrl-C finishes the current step, saves ``last.pt`` (mid-epoch position
included) and raises ``KeyboardInterrupt`` (the CLI exits 130, 143 on SIGTERM);
rerunning the same command continues exactly where it stopped: batch order, crops,
augmentation and dropout are all drawn from generators seeded by
``(seed, epoch, step)``.

Distributed: under ``torchrun`` every rank trains on its share of the batches
(DDP, gradients averaged), training loss/accuracy are summed over ranks,
validation and test run on rank 0 only (the full sets, so numbers do not depend
on the world size) and rank 0 alone writes the run folder.

Seed ensembles: with ``train.members=N`` (N > 1), :func:`train` trains N runs of the
config with seeds ``seed .. seed + N - 1`` into ``members/<k>/`` and combines them
(:mod:`~vocalis.training.members`).

The environment variable ``VOCALIS_INTERRUPT_AFTER_STEPS=N`` simulates a
Ctrl-C after ``N`` optimiser steps of this process (for tests of resuming).

The parts, each a module of functions over one :class:`~vocalis.training.session.Session`:

- :mod:`~vocalis.training.engine`: device, AMP, DDP;
- :mod:`~vocalis.training.prepared`: manifest, split, features, normalisation;
- :mod:`~vocalis.training.components`: model, loss, loader, optimiser, schedule
  (:func:`~vocalis.training.components.build_components`, public, to adapt);
- :mod:`~vocalis.training.loop`: the epochs and their seeded steps;
- :mod:`~vocalis.training.resume`: checkpoints and resuming;
- :mod:`~vocalis.training.validation`: validation, test and ``metrics.json``;
- :mod:`~vocalis.training.artifacts`: ``model_summary.txt``, curves, confusion,
  verification on the validation rows and the gating analysis.

:func:`train` calls them in this order; to train with adapted components, call
the same steps yourself::

    from vocalis.training import components, prepared, resume, trainer
    from vocalis.training.engine import start_engine
    from vocalis.training.session import Session
    from vocalis.training.state import seed_everything

    engine = start_engine(cfg.train.device, cfg.train.amp)
    run, last = resume.open_run(cfg, "runs/x", overwrite=False, dist=engine.dist)
    seed_everything(cfg.train.seed, cfg.train.deterministic)
    data = prepared.prepare_data(cfg, None, (None, None, None), engine.dist, run, True)
    parts = components.build_components(cfg, data, engine, param_groups=my_groups)
    result = trainer.run_training(Session(cfg, run, data, engine, parts), last)
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vocalis.checkpoint import Checkpoint
from vocalis.io import URLPath
from vocalis.models import check_model_resources
from vocalis.training import resume, validation
from vocalis.training.artifacts import finish_run, write_model_summary
from vocalis.training.components import (
    build_components,
    describe_optimizer,
    describe_param_groups,
    skipped_augmentations,
)
from vocalis.training.config import ExperimentConfig, config_to_yaml
from vocalis.training.distributed import barrier, shutdown
from vocalis.training.engine import Engine, start_engine
from vocalis.training.loop import run_epochs
from vocalis.training.posthoc import fit_post_hoc
from vocalis.training.prepared import prepare_data
from vocalis.training.runfolder import environment
from vocalis.training.session import NonFiniteLossError, Session
from vocalis.training.state import seed_everything


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        out_dir: the run folder (``None`` when nothing was written; a
            :class:`~vocalis.io.URLPath` for a folder on object storage).
        best_epoch: 1-based epoch of the best validation score.
        best_metrics: validation metrics of that epoch (``val_loss``, ``val_acc``,
            ``val_uar``, ``val_macro_f1``).
        test_metrics: metrics of the best weights on the test rows, or ``None``.
        history: one dict per epoch (the rows of ``history.csv``).
        stopped_early: early stopping ended the run.
        classes: class names in id order.
        model: the model with the best weights loaded (on CPU).
        heads: the reported :class:`~vocalis.data.targets.HeadSpec` of a run with
            several heads, as fitted (scalers, multi-label thresholds; those of
            ``model.pt``), else ``None``.
    """

    out_dir: Path | URLPath | None
    best_epoch: int
    best_metrics: dict[str, float]
    test_metrics: dict[str, Any] | None
    history: list[dict[str, Any]]
    stopped_early: bool
    classes: list[str]
    model: torch.nn.Module | None = field(default=None, repr=False)
    heads: list[Any] | None = None


def train(
    config: ExperimentConfig | dict[str, Any] | str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    manifest: Any = None,
    train_indices: Any = None,
    val_indices: Any = None,
    test_indices: Any = None,
    overwrite: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train a classifier as ``config`` describes; write the run folder ``out_dir``.

    Args:
        config: the experiment config, a plain dict of it (e.g. a run's ``config.yaml``)
            or a recipe YAML path.
        out_dir: run folder (``None``: keep everything in memory). An existing
            run folder resumes (its config must match) unless ``overwrite``.
        manifest: a :class:`~vocalis.data.Manifest` or path overriding
            ``dataset.manifest``.
        train_indices: manifest rows to train on (default: by ``dataset.val_protocol``).
        val_indices: rows for validation (default: held out of the training rows).
        test_indices: rows to test the best weights on (writes ``predictions.csv``).
        overwrite: discard an existing run in ``out_dir`` and start over.
        progress: progress bars.

    Returns:
        A :class:`TrainResult`.

    Raises:
        ConfigError: invalid config, or a run folder made with another config.
        DataError: missing manifest, empty split, a label unseen in training.
        ModelError: a checkpoint from another model; :class:`NonFiniteLossError`
            when the loss diverges.
        KeyboardInterrupt: after Ctrl-C, once ``last.pt`` is saved.
    """
    if isinstance(config, dict):
        from vocalis.training.config import from_raw

        config = from_raw(config)
    elif not isinstance(config, ExperimentConfig):
        from vocalis.training.config import load_config

        config = load_config(config)
    check_model_resources(config.model.name, config.model.params)  # before any audio is read
    engine = start_engine(config.train.device, config.train.amp)
    args = (manifest, (train_indices, val_indices, test_indices), overwrite, progress, engine)
    try:
        if config.train.members > 1:
            from vocalis.training.members import train_members

            return train_members(config, out_dir, *args, _train)
        return _train(config, out_dir, *args)
    finally:
        shutdown(engine.dist)


def _train(
    cfg: ExperimentConfig,
    out_dir: str | os.PathLike | None,
    manifest: Any,
    indices: tuple[Any, Any, Any],
    overwrite: bool,
    progress: bool,
    engine: Engine,
) -> TrainResult:
    """Run :func:`train` on this process: open the run, prepare data, build, train."""
    run, last = resume.open_run(cfg, out_dir, overwrite, engine.dist)
    seed_everything(cfg.train.seed, cfg.train.deterministic)
    data = prepare_data(cfg, manifest, indices, engine.dist, run, progress)
    resume.check_labels(run, last, data)
    parts = build_components(cfg, data, engine)
    session = Session(cfg, run, data, engine, parts, progress)
    return run_training(session, last, overwrite=overwrite, caller_val=indices[1] is not None)


def run_training(
    s: Session,
    last: Checkpoint | None = None,
    *,
    overwrite: bool = False,
    caller_val: bool = False,
) -> TrainResult:
    """Train a built session: resume, epochs, best weights, test, ``model.pt``, metrics.

    Args:
        s: the session (components from
            :func:`~vocalis.training.components.build_components`, possibly adapted).
        last: the run's ``last.pt`` to resume from
            (:func:`~vocalis.training.resume.open_run`), or ``None`` to start.
        overwrite: clear the files of an earlier run in the folder first.
        caller_val: the validation rows were given by the caller (for the log).

    Returns:
        The :class:`TrainResult`.
    """
    if last is not None:
        resume.restore(s, last)
    elif overwrite:
        s.run.clear()
    s.model = s.engine.wrap(s.parts.model)
    log_start(s, last is not None, caller_val)
    from vocalis.config import to_dict
    from vocalis.training.tracking import open_tracker

    s.tracker = open_tracker(
        s.cfg.tracking, s.run.path if s.run.active else None, main=s.engine.is_main
    )
    try:
        s.tracker.log_config(to_dict(s.cfg))
        run_epochs(s)
        resume.load_best(s)
        fit_post_hoc(s)
        test_metrics = validation.test(s)
        if test_metrics is not None:
            s.tracker.log_test(test_metrics, s.parts.stopper.best_epoch)
    finally:
        s.tracker.close()
    if s.run.active:
        resume.write_model(s)
        validation.write_metrics(s, test_metrics, finish_run(s))
    barrier(s.engine.dist)
    return result(s, test_metrics)


def log_start(s: Session, resumed: bool, caller_val: bool) -> None:
    """Open the run folder (env, config, label map); log the model, data and split."""
    cfg, run, data, classes = s.cfg, s.run, s.data, s.classes
    device, world = s.engine.device, s.engine.dist.world_size
    if run.active:
        env = environment(str(device), world)
        env["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        run.open(env, resumed=resumed)
        run.write_text("config.yaml", config_to_yaml(cfg))
        run.write_json("label_map.json", data.encoder.to_dict())
        from vocalis.data.failures import write_errors

        write_errors(run.file("errors.csv"), data.skipped)
        write_model_summary(run, s.raw_model, data.feature_dim)
    spk = data.rows.column("speaker") if "speaker" in data.rows.columns else None
    n_params = sum(p.numel() for p in s.raw_model.parameters())
    run.log(
        ("Resuming" if resumed else "Training") + f" {cfg.model.name} ({n_params:,} parameters) on "
        f"{cfg.features.extractor.name} features (F={data.feature_dim}, "
        f"normalization={cfg.features.normalization}"
        f"{' in the model' if data.model_norm is not None else ''}); "
        f"device {device}, world size {world}"
    )
    notice = getattr(s.raw_model, "cpu_notice", None)
    if device.type == "cpu" and callable(notice) and notice():
        run.log(notice())
    run.log(describe_optimizer(cfg.train))
    for line in describe_param_groups(s.parts.optimizer, cfg.train.lr):
        run.log(line)
    where = "waveforms in the loader, then features" if cfg.augment.waveform_active else "features"
    run.log(f"Augmentation (training only; {where}): {cfg.augment.describe()}")
    for line in skipped_augmentations(cfg):
        run.log(line)
    run.log(
        f"Data: {len(data.train_idx)} train / {len(data.val_idx)} val / {len(data.test_idx)} "
        f"test utterances, {len(classes)} classes ({', '.join(classes)})"
    )
    if spk is not None:
        held = sorted({spk[i] for i in data.val_idx.tolist()})
        shared = held and not set(held).isdisjoint(spk[i] for i in data.train_idx.tolist())
        how = "rows given by the caller" if caller_val else f"protocol {cfg.dataset.val_protocol}"
        if cfg.dataset.split is not None and not caller_val:
            how = f"dataset.split by={cfg.dataset.split.by}"
        if data.val_fixed:
            how = "the fixed validation part"
        run.log(
            f"Validation speakers: {', '.join(held)} ({how}"
            + (
                "; they also speak in training, so validation is speaker-dependent)"
                if shared
                else "; none of them in training)"
            )
        )
        if len(data.test_idx):
            tested = sorted({spk[i] for i in data.test_idx.tolist()})
            both = set(tested) & {spk[i] for i in data.train_idx.tolist()}
            note = (
                f"; {len(both)} of them also {'speaks' if len(both) == 1 else 'speak'} in "
                "training, so the test is speaker-dependent"
                if both
                else ""
            )
            run.log(
                f"Test speakers: {', '.join(tested)} (scored with the best epoch at the end{note})"
            )
    if resumed:
        run.log(f"Resumed from {run.last} at epoch {s.state.start_epoch} step {s.state.skip}")


def result(s: Session, test_metrics: dict[str, Any] | None) -> TrainResult:
    """The :class:`TrainResult` (moves the model to the CPU)."""
    best_row = s.best_row()
    return TrainResult(
        out_dir=s.run.path,
        best_epoch=s.parts.stopper.best_epoch,
        best_metrics={k: best_row[k] for k in validation.VAL_KEYS if k in best_row},
        test_metrics=test_metrics,
        history=s.state.history,
        stopped_early=s.parts.stopper.should_stop,
        classes=s.classes,
        model=s.raw_model.cpu(),
        heads=None if s.data.report_heads is None else list(s.data.report_heads),
    )


__all__ = ["NonFiniteLossError", "TrainResult", "run_training", "train"]
