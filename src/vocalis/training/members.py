"""Seed ensembles (``train.members=N``): N runs of one recipe, probabilities averaged.

A single neural run on a few hundred utterances varies with its seed by about as much
as the designs being compared (on EmoDB LOSO, one run of a recipe is +-0.015 UAR).
Averaging the class probabilities of N runs that differ only in their seed (the
initialisation, the batch order, every augmentation draw) is the standard remedy.
:func:`train_members` trains them one after another and combines them::

    <run>/config.yaml, log.txt, env.json     the ensemble's config (train.members: N)
    <run>/members/<k>/                       member k: a complete run folder of its own,
                                             train.seed = seed + k, train.members = 1
    <run>/model.pt                           every member (MemberAverage), one checkpoint
    <run>/metrics.json, predictions.csv      the ensemble on the validation / test rows

Every member validates on the same rows (the split seed is the ensemble's). Each member
resumes like any run, so a killed ensemble continues where it stopped, bit for bit; a
finished member is only re-scored. ``train.members`` may grow between runs of one folder
(the members already trained are kept).
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import torch.nn.functional as F

from vocalis.training import resume
from vocalis.training.config import ExperimentConfig, config_to_yaml
from vocalis.training.runfolder import environment
from vocalis.training.session import fmt, plain

if TYPE_CHECKING:
    from collections.abc import Callable

    from vocalis.models.members import MemberAverage
    from vocalis.training.engine import Engine
    from vocalis.training.trainer import TrainResult

#: Sub-folder of a run folder that holds the member runs.
MEMBERS_DIR = "members"

#: How the members combine (recorded in ``metrics.json``).
COMBINE = "mean of the members' class probabilities"


def member_config(cfg: ExperimentConfig, k: int) -> ExperimentConfig:
    """The config of member ``k``: ``train.seed + k``, one member, the ensemble's split.

    The split seed (``dataset.seed``, else ``train.seed``) is fixed to the ensemble's,
    so that every member holds out the same validation rows.
    """
    split_seed = cfg.dataset.seed if cfg.dataset.seed is not None else cfg.train.seed
    return dataclasses.replace(
        cfg,
        dataset=dataclasses.replace(cfg.dataset, seed=int(split_seed)),
        train=dataclasses.replace(cfg.train, members=1, seed=cfg.train.seed + k),
    )


def train_members(
    cfg: ExperimentConfig,
    out_dir: Any,
    manifest: Any,
    indices: tuple[Any, Any, Any],
    overwrite: bool,
    progress: bool,
    engine: Engine,
    train_one: Callable[..., TrainResult],
) -> TrainResult:
    """Train ``cfg.train.members`` seeds of ``cfg`` and combine them (see the module).

    Args:
        cfg: the ensemble's config (``train.members`` >= 2).
        out_dir: the run folder (``None``: in memory).
        manifest: the manifest (or path) :func:`vocalis.training.train` was given.
        indices: its ``(train, val, test)`` rows (``None`` each: by the config).
        overwrite: start the ensemble and every member over.
        progress: progress bars.
        engine: the started engine.
        train_one: trains one member: ``(cfg, out_dir, manifest, indices, overwrite,
            progress, engine) -> TrainResult`` (the trainer's own single-run path).

    Returns:
        The ensemble's :class:`~vocalis.training.TrainResult`: its model is the
        :class:`~vocalis.models.members.MemberAverage`, its metrics the ensemble's.

    Raises:
        ConfigError: a run folder made with another config.
    """
    from vocalis.models.members import MemberAverage
    from vocalis.training.distributed import barrier
    from vocalis.training.prepared import prepare_data

    t0 = time.perf_counter()
    n = cfg.train.members
    run, _ = resume.open_run(cfg, out_dir, overwrite, engine.dist)
    resumed = run.exists() and not overwrite
    if overwrite:
        run.clear()
    run.open(environment(str(engine.device), engine.dist.world_size), resumed=resumed)
    run.write_text("config.yaml", config_to_yaml(cfg))
    seeds = [cfg.train.seed + k for k in range(n)]
    run.log(
        f"{'Resuming' if resumed else 'Training'} {n} members of {cfg.model.name} "
        f"(train.seed {', '.join(map(str, seeds))}), one after another; the model is the "
        f"{COMBINE}"
    )
    results = []
    for k in range(n):
        sub = None if run.path is None else run.path / MEMBERS_DIR / str(k)
        run.log(f"Member {k + 1} of {n} (train.seed={seeds[k]})" + (f": {sub}" if sub else ""))
        member = member_config(cfg, k)
        results.append(train_one(member, sub, manifest, indices, overwrite, progress, engine))
    model = MemberAverage([r.model for r in results]).eval()
    data = prepare_data(member_config(cfg, 0), manifest, indices, engine.dist, run, False)
    val = test = None
    if engine.is_main:
        val, test = _score(model, data, cfg, engine, run)
        if run.active:
            _write(run, cfg, model, data, results, val, test, time.perf_counter() - t0)
    barrier(engine.dist)
    return _result(run, model, data, results, val, test)


def _score(
    model: MemberAverage, data: Any, cfg: ExperimentConfig, engine: Engine, run: Any
) -> tuple[dict | None, dict | None]:
    """The ensemble's validation and test metrics; ``predictions.csv`` of the test rows."""
    from vocalis.metrics.predictions import score
    from vocalis.training.predict import predict_dataset
    from vocalis.training.validation import write_test_predictions

    model = model.to(engine.device)
    classes = list(data.encoder.classes)

    def predict(dataset: Any) -> tuple[np.ndarray, float]:
        return predict_dataset(
            model,
            dataset,
            batch_size=cfg.train.batch_size,
            device=engine.device,
            loss_fn=lambda logits, targets: F.nll_loss(logits.float(), targets),
            amp_dtype=engine.amp_dtype,
        )

    val = test = None
    if len(data.val_idx):
        probs, loss = predict(data.val)
        val = {**plain(score(data.val.targets, probs, classes)), "loss": float(loss)}
        run.log(
            f"Ensemble of {cfg.train.members} on validation: acc {fmt(val['accuracy'])} UAR "
            f"{fmt(val['uar'])} macro-F1 {fmt(val['macro_f1'])} (NLL {fmt(val['loss'])})"
        )
    if data.test is not None:
        probs, loss = predict(data.test)
        test = {**plain(score(data.test.targets, probs, classes)), "loss": float(loss)}
        if run.active:
            write_test_predictions(run, data, probs)
        run.log(
            f"Test (ensemble of {cfg.train.members}): acc {fmt(test['accuracy'])} UAR "
            f"{fmt(test['uar'])} macro-F1 {fmt(test['macro_f1'])} on {len(data.test_idx)} "
            "utterances"
        )
    model.cpu()
    return val, test


def _member_summary(k: int, r: TrainResult) -> dict[str, Any]:
    """One member's line in ``metrics.json``: seed folder, kept epoch and scores."""
    return {
        "member": k,
        "folder": f"{MEMBERS_DIR}/{k}",
        "best_epoch": r.best_epoch,
        "val_uar": (r.best_metrics or {}).get("val_uar"),
        "test_uar": (r.test_metrics or {}).get("uar"),
    }


def _write(
    run: Any,
    cfg: ExperimentConfig,
    model: MemberAverage,
    data: Any,
    results: list[TrainResult],
    val: dict | None,
    test: dict | None,
    seconds: float,
) -> None:
    """``model.pt`` (every member, from member 0's pipeline) and ``metrics.json``."""
    from vocalis.checkpoint import MODEL_FILE, load_checkpoint, save_checkpoint
    from vocalis.config import to_dict
    from vocalis.data.failures import summary

    first = load_checkpoint(results[0].out_dir / MODEL_FILE)
    members = [_member_summary(k, r) for k, r in enumerate(results)]
    ckpt = dataclasses.replace(
        first,
        model=dataclasses.replace(first.model, members=len(results)),
        model_state={k: v.detach().cpu() for k, v in model.state_dict().items()},
        config=to_dict(cfg),
        training={"members": members},
    )
    save_checkpoint(run.model, ckpt)
    run.write_metrics(
        kind="train",
        model="neural",
        val=val,
        test=test,
        best_epoch=None,
        epochs_run=sum(len(r.history) for r in results),
        n_rows={"train": len(data.train_idx), "val": len(data.val_idx), "test": len(data.test_idx)},
        classes=list(data.encoder.classes),
        seconds=round(seconds, 3),
        details={
            "members": members,
            "combine": COMBINE,
            "monitor": cfg.train.monitor,
            "mode": cfg.train.mode,
            "rows": summary(data.skipped, data.n_rows or len(data.rows)),
        },
    )


def _result(
    run: Any,
    model: MemberAverage,
    data: Any,
    results: list[TrainResult],
    val: dict | None,
    test: dict | None,
) -> TrainResult:
    """The ensemble's :class:`~vocalis.training.TrainResult` (its validation metrics)."""
    from vocalis.training.trainer import TrainResult

    keys = {"val_loss": "loss", "val_acc": "accuracy", "val_uar": "uar", "val_macro_f1": "macro_f1"}
    best = {k: float(val[v]) for k, v in keys.items() if val and v in val}
    return TrainResult(
        out_dir=run.path,
        best_epoch=results[0].best_epoch,
        best_metrics=best,
        test_metrics=test,
        history=[],
        stopped_early=any(r.stopped_early for r in results),
        classes=list(data.encoder.classes),
        model=model.cpu(),
        heads=None,
    )


__all__ = ["COMBINE", "MEMBERS_DIR", "member_config", "train_members"]
