"""The training loop: one call from a config to a trusted run folder.

:func:`train` builds everything from an :class:`~vocalis.training.config.ExperimentConfig`
(manifest, speaker-independent split, cached features, normalisation, model,
loss, optimiser, schedule), trains with a progress bar and one summary line per
epoch, keeps ``best.pt`` (by ``train.monitor``) and ``last.pt``, and evaluates
the best weights on test rows when there are some.

Resuming: an existing run folder resumes from ``checkpoints/last.pt`` when its
``config.yaml`` matches (``train.epochs`` may grow); ``overwrite=True`` starts
over. Ctrl-C finishes the current step, saves ``last.pt`` (mid-epoch position
included) and raises ``KeyboardInterrupt`` (the CLI exits 130); rerunning the
same command continues exactly where it stopped: batch order, crops,
augmentation and dropout are all drawn from generators seeded by
``(seed, epoch, step)``.

Distributed: under ``torchrun`` every rank trains on its share of the batches
(DDP, gradients averaged), training loss/accuracy are summed over ranks,
validation and test run on rank 0 only (the full sets, so numbers do not depend
on the world size) and rank 0 alone writes the run folder.

The environment variable ``VOCALIS_INTERRUPT_AFTER_STEPS=N`` simulates a
Ctrl-C after ``N`` optimiser steps of this process (for tests of resuming).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vocalis.config import to_dict
from vocalis.errors import ConfigError, DataError, ModelError
from vocalis.training.config import RESUMABLE_KEYS, ExperimentConfig, config_diff, config_to_yaml
from vocalis.training.distributed import (
    DistInfo,
    all_sum,
    barrier,
    broadcast,
    init_distributed,
    shutdown,
)
from vocalis.training.prepared import PreparedData, prepare_data
from vocalis.training.runfolder import RunFolder, environment
from vocalis.training.state import (
    EarlyStopping,
    GracefulInterrupt,
    rng_state,
    seed_everything,
    set_rng_state,
    step_seed,
)


class NonFiniteLossError(ModelError):
    """The training loss became NaN or infinite."""


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        out_dir: the run folder (``None`` when nothing was written).
        best_epoch: 1-based epoch of the best validation score.
        best_metrics: validation metrics of that epoch (``val_loss``, ``val_acc``,
            ``val_uar``, ``val_macro_f1``).
        test_metrics: metrics of the best weights on the test rows, or ``None``.
        history: one dict per epoch (the rows of ``history.csv``).
        stopped_early: early stopping ended the run.
        classes: class names in id order.
        model: the model with the best weights loaded (on CPU).
    """

    out_dir: Path | None
    best_epoch: int
    best_metrics: dict[str, float]
    test_metrics: dict[str, Any] | None
    history: list[dict[str, Any]]
    stopped_early: bool
    classes: list[str]
    model: torch.nn.Module | None = field(default=None, repr=False)


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:<local_rank>`` when available, else ``cpu``.

    Raises:
        ConfigError: ``cuda`` requested on a machine without CUDA.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"train.device={name} but this machine has no CUDA device; use train.device=cpu "
                "(or auto)"
            )
        if name == "cuda":
            name = f"cuda:{local_rank}"
    return torch.device(name)


# --------------------------------------------------------------------------- helpers


def _check_resume(run: RunFolder, cfg: ExperimentConfig) -> None:
    old = run.read_config()
    if old is None:
        return
    new = to_dict(cfg)
    diff = [k for k in config_diff(old, new) if k not in RESUMABLE_KEYS]
    if diff:

        def get(d: dict, key: str) -> Any:
            for part in key.split("."):
                d = d.get(part) if isinstance(d, dict) else None
            return d

        more = f" and {len(diff) - 1} more key(s)" if len(diff) > 1 else ""
        raise ConfigError(
            f"{run.path}: this run folder was made with another config ({diff[0]}: "
            f"{get(old, diff[0])!r} -> {get(new, diff[0])!r}{more}); rerun with the same config to "
            "resume, pass --overwrite to start over, or choose another --out"
        )


def _amp(cfg: ExperimentConfig, device: torch.device) -> torch.dtype | None:
    if not cfg.train.amp:
        return None
    return torch.float16 if device.type == "cuda" else torch.bfloat16


def _class_weights(
    cfg: ExperimentConfig, targets: list[int], classes: list[str]
) -> torch.Tensor | None:
    from vocalis.training.losses import class_weights

    cw = cfg.train.class_weights
    if cw == "none":
        return None
    if cw == "auto":
        return class_weights(targets, len(classes), classes=classes)
    if len(cw) != len(classes):
        raise ConfigError(
            f"train.class_weights: got {len(cw)} weights for {len(classes)} classes "
            f"({', '.join(classes)}); give one per class in that order, or use auto"
        )
    return torch.tensor(cw, dtype=torch.float32)


def _payload(
    cfg: ExperimentConfig, model: torch.nn.Module, data: PreparedData, extra: dict[str, Any]
) -> dict[str, Any]:
    return {
        "model": {
            "name": cfg.model.name,
            "config": to_dict(model.config),
            "input_dim": data.feature_dim,
            "num_classes": len(data.encoder.classes),
        },
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "pipeline": {"tier0": dict(cfg.features.tier0), "features": dict(cfg.features.extractor)},
        "normalization": data.normalizer.state(),
        "labels": data.encoder.to_dict(),
        "config": to_dict(cfg),
        **extra,
    }


def _fmt(v: float) -> str:
    return "nan" if v is None or np.isnan(v) else f"{v:.4f}"


# --------------------------------------------------------------------------- train


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
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(config.train.device, local_rank)
    dist = init_distributed(device)
    try:
        return _train(
            config,
            out_dir,
            manifest,
            (train_indices, val_indices, test_indices),
            overwrite,
            progress,
            device,
            dist,
        )
    finally:
        shutdown(dist)


def _train(
    cfg: ExperimentConfig,
    out_dir: str | os.PathLike | None,
    manifest: Any,
    indices: tuple[Any, Any, Any],
    overwrite: bool,
    progress: bool,
    device: torch.device,
    dist: DistInfo,
) -> TrainResult:
    from tqdm.auto import tqdm

    from vocalis.augment import Mixup, SpecAugment
    from vocalis.checkpoint import load_checkpoint, save_checkpoint
    from vocalis.models import build_model
    from vocalis.training.data import EpochBatchSampler, make_loader
    from vocalis.training.evaluate import predict_dataset, score
    from vocalis.training.losses import LOSSES, Objective, build_classification_loss
    from vocalis.training.optim import build_optimizer, build_scheduler, steps_per_epoch_schedule

    tc = cfg.train
    run = RunFolder(out_dir, active=dist.is_main)
    resume: dict[str, Any] | None = None
    if run.exists() and not overwrite:
        _check_resume(run, cfg)
        if run.last is not None and run.last.is_file():
            resume = load_checkpoint(run.last)
            if resume["model"]["name"] != cfg.model.name:
                raise ModelError(
                    f"{run.last}: checkpoint of model '{resume['model']['name']}', the config asks "
                    f"for '{cfg.model.name}'; pass --overwrite to start over"
                )
    seed_everything(tc.seed, tc.deterministic)
    data = prepare_data(cfg, manifest, indices, dist, run, progress)
    classes = list(data.encoder.classes)
    if resume is not None and resume["labels"] != data.encoder.to_dict():
        raise DataError(
            f"{run.last}: the run was trained on classes {resume['labels'].get('classes')}, "
            f"the data now gives {classes}; restore the manifest or pass --overwrite"
        )

    torch.manual_seed(tc.seed)
    model = build_model(
        cfg.model.name,
        cfg.model.params,
        data.feature_dim,
        len(classes),
        feature_name=cfg.features.extractor.get("name"),
    ).to(device)
    if data.model_norm is not None:
        model.set_input_norm(*data.model_norm)
    weights = _class_weights(cfg, data.train.targets, classes)
    cls_loss = build_classification_loss(
        tc.loss,
        weight=None if weights is None else weights.to(device),
        label_smoothing=tc.label_smoothing,
        focal_gamma=tc.focal_gamma,
        aam_margin=tc.aam_margin,
        aam_scale=tc.aam_scale,
    ).to(device)
    reg_loss = LOSSES.get(tc.multitask_loss)() if tc.multitask_lambda > 0 else None
    objective = Objective(cls_loss, reg_loss, tc.multitask_lambda)

    train_sampler = EpochBatchSampler(
        [data.train.num_frames(i) for i in range(len(data.train))],
        tc.batch_size,
        shuffle=True,
        bucketing=tc.bucketing,
        seed=tc.seed,
        crop=data.train.crop_frames is not None,
        rank=dist.rank,
        world_size=dist.world_size,
    )
    loader = make_loader(
        data.train, train_sampler, num_workers=tc.num_workers, pin_memory=device.type == "cuda"
    )
    steps_per_epoch = len(train_sampler)
    optimizer = build_optimizer(model.parameters(), tc)
    scheduler = build_scheduler(optimizer, tc, steps_per_epoch)
    per_step = steps_per_epoch_schedule(scheduler)
    amp_dtype = _amp(cfg, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    stopper = EarlyStopping(tc.monitor, tc.mode, tc.patience, tc.min_delta)
    specaug = (
        SpecAugment(
            tc.augment.time_masks,
            tc.augment.time_mask_frames,
            tc.augment.freq_masks,
            tc.augment.freq_mask_bins,
        )
        if tc.augment.specaugment
        else None
    )
    mixup = Mixup(tc.augment.mixup_alpha) if tc.augment.mixup_alpha > 0 else None

    history: list[dict[str, Any]] = []
    best_state: dict[str, torch.Tensor] | None = None
    start_epoch, skip, global_step, partial = 0, 0, 0, None
    epoch_lr = tc.lr
    best_val: dict[str, Any] = {}
    if resume is not None:
        try:
            model.load_state_dict(resume["model_state"])
            optimizer.load_state_dict(resume["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            first = str(err).splitlines()[0]
            raise ModelError(
                f"{run.last}: cannot resume, its weights do not fit this model ({first}); "
                "pass --overwrite to start over"
            ) from None
        scheduler.load_state_dict(resume["scheduler"])
        if resume.get("scaler"):
            scaler.load_state_dict(resume["scaler"])
        stopper.load_state_dict(resume.get("best") or {})
        history = list(resume.get("history") or [])
        start_epoch = int(resume["epoch"])
        skip = int(resume.get("epoch_step", 0))
        global_step = int(resume.get("step", 0))
        partial = resume.get("partial")
        epoch_lr = float(resume.get("epoch_lr") or optimizer.param_groups[0]["lr"])
        best_val = dict(resume.get("best_val") or {})
        set_rng_state(resume.get("rng") or {})
    elif overwrite:
        run.clear()

    raw_model = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,
        )

    if run.active:
        env = environment(str(device), dist.world_size)
        env["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        run.open(env, resumed=resume is not None)
        run.write_text("config.yaml", config_to_yaml(cfg))
        run.write_json("label_map.json", data.encoder.to_dict())
    spk = data.rows.column("speaker") if "speaker" in data.rows.columns else None
    n_params = sum(p.numel() for p in raw_model.parameters())
    run.log(
        ("Resuming" if resume is not None else "Training")
        + f" {cfg.model.name} ({n_params:,} parameters) on {cfg.features.extractor.get('name')} "
        f"features (F={data.feature_dim}, normalization={cfg.features.normalization}"
        f"{' in the model' if data.model_norm is not None else ''}); "
        f"device {device}, world size {dist.world_size}"
    )
    run.log(
        f"Data: {len(data.train_idx)} train / {len(data.val_idx)} val / {len(data.test_idx)} test "
        f"utterances, {len(classes)} classes ({', '.join(classes)})"
    )
    if spk is not None:
        held = sorted({spk[i] for i in data.val_idx.tolist()})
        shared = held and not set(held).isdisjoint(spk[i] for i in data.train_idx.tolist())
        how = (
            "rows given by the caller"
            if indices[1] is not None
            else (f"protocol {cfg.dataset.val_protocol}")
        )
        run.log(
            f"Validation speakers: {', '.join(held)} ({how}"
            + (
                "; they also speak in training, so validation is speaker-dependent)"
                if shared
                else "; none of them in training)"
            )
        )
    if resume is not None:
        run.log(f"Resumed from {run.last} at epoch {start_epoch} step {skip}")

    def payload(extra: dict[str, Any]) -> dict[str, Any]:
        return _payload(cfg, raw_model, data, extra)

    def training_state(epoch: int, epoch_step: int, part: Any, done: bool) -> dict[str, Any]:
        return {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "epoch": epoch,
            "step": global_step,
            "epoch_step": epoch_step,
            "partial": part,
            "epoch_lr": epoch_lr,
            "rng": rng_state(),
            "best": stopper.state_dict(),
            "best_val": best_val,
            "history": history,
            "finished": done,
        }

    def write_metrics(extra: dict[str, Any] | None = None) -> None:
        best_row = next((h for h in history if h["epoch"] == stopper.best_epoch), {})
        metrics = {
            "monitor": tc.monitor,
            "mode": tc.mode,
            "best_epoch": stopper.best_epoch,
            "best": {
                k: best_row.get(k) for k in ("val_loss", "val_acc", "val_uar", "val_macro_f1")
            },
            "epochs_run": len(history),
            "stopped_early": stopper.should_stop,
            "n_train": len(data.train_idx),
            "n_val": len(data.val_idx),
            "n_test": len(data.test_idx),
            "classes": classes,
            "val": best_val,
        }
        metrics.update(extra or {})
        run.write_json("metrics.json", metrics)

    interrupt = GracefulInterrupt()
    with interrupt:
        for epoch in range(start_epoch, tc.epochs):
            if stopper.should_stop:
                break
            t0 = time.perf_counter()
            if partial is None:
                epoch_lr = float(optimizer.param_groups[0]["lr"])
            last_lr = epoch_lr  # the lr of the epoch's last step, reported in history.csv
            train_sampler.set_epoch(epoch, skip)
            model.train()
            sums = list(partial) if partial else [0.0, 0.0, 0.0]  # loss * n, correct, n
            bar = tqdm(
                total=steps_per_epoch,
                initial=skip,
                desc=f"Epoch {epoch + 1}/{tc.epochs}",
                disable=not (progress and dist.is_main),
                leave=False,
                unit="batch",
            )
            stop_now = False
            for i, batch in enumerate(loader, start=skip):
                s = step_seed(tc.seed, epoch, i, dist.rank)
                torch.manual_seed(s)
                gen = torch.Generator().manual_seed(s ^ 0x5DEECE66D)
                batch = batch.to(device)
                feats, lengths = batch.features, batch.lengths
                if specaug is not None:
                    feats = specaug(feats, lengths, gen)
                mixed = mixup(feats, lengths, gen) if mixup is not None else None
                if mixed is not None:
                    feats, lengths = mixed.features, mixed.lengths
                with torch.autocast(
                    device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None
                ):
                    out = model(feats, lengths)
                if mixed is None:
                    loss, _ = objective(out.logits, batch.targets, out.extras, batch.regression)
                else:
                    la, _ = objective(out.logits, batch.targets, out.extras, batch.regression)
                    perm = mixed.perm
                    reg_b = None if batch.regression is None else batch.regression[perm]
                    lb, _ = objective(out.logits, batch.targets[perm], out.extras, reg_b)
                    loss = mixed.lam * la + (1.0 - mixed.lam) * lb
                if not torch.isfinite(loss):
                    raise NonFiniteLossError(
                        f"epoch {epoch + 1} step {i + 1}: the training loss is "
                        f"{float(loss.detach())}; lower "
                        f"train.lr (now {tc.lr}), keep train.grad_clip on, and check the features "
                        "and their normalisation (features.normalization) for NaN or huge values"
                    )
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if tc.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                last_lr = float(optimizer.param_groups[0]["lr"])
                scaler.step(optimizer)
                scaler.update()
                if per_step:
                    scheduler.step()
                global_step += 1
                n = len(batch)
                sums[0] += float(loss.detach()) * n
                sums[1] += float((out.logits.detach().argmax(-1) == batch.targets).sum())
                sums[2] += n
                bar.update()
                bar.set_postfix(loss=f"{sums[0] / max(sums[2], 1):.3f}")
                interrupt.step()
                flag = interrupt.requested
                if dist.enabled:
                    flag = all_sum(dist, [float(flag)], device)[0] > 0
                if flag and i + 1 < steps_per_epoch:
                    if run.active:
                        save_checkpoint(
                            run.last, payload(training_state(epoch, i + 1, sums, False))
                        )
                    stop_now = True
                    break
            bar.close()
            if stop_now:
                run.log(
                    f"Interrupted in epoch {epoch + 1} after step {i + 1}; saved {run.last}. "
                    "Rerun the same command to resume."
                )
                raise KeyboardInterrupt
            skip, partial = 0, None
            tot = all_sum(dist, sums, device)
            train_loss, train_acc = tot[0] / max(tot[2], 1), tot[1] / max(tot[2], 1)

            # validation on rank 0, decisions broadcast
            decision = None
            if dist.is_main:
                probs, val_loss = predict_dataset(
                    raw_model,
                    data.val,
                    batch_size=tc.batch_size,
                    device=device,
                    loss_fn=cls_loss,
                    amp_dtype=amp_dtype,
                )
                vm = score(data.val.targets, probs, classes)
                row = {
                    "epoch": epoch + 1,
                    "train_loss": float(train_loss),
                    "train_acc": float(train_acc),
                    "val_loss": float(val_loss),
                    "val_acc": float(vm["accuracy"]),
                    "val_uar": float(vm["uar"]),
                    "val_macro_f1": float(vm["macro_f1"]),
                    "lr": last_lr,
                    "seconds": round(time.perf_counter() - t0, 3),
                }
                decision = (row, vm)
            row, vm = broadcast(dist, decision)
            if not np.isfinite(row["train_loss"]):
                raise NonFiniteLossError(f"epoch {epoch + 1}: non-finite training loss")
            history.append(row)
            improved = stopper.update(row[tc.monitor], epoch + 1)
            if not per_step:
                scheduler.step(row[tc.monitor])
            if improved:
                best_val = _plain(vm)
                best_state = {
                    k: v.detach().cpu().clone() for k, v in raw_model.state_dict().items()
                }
            run.log(
                f"Epoch {epoch + 1}/{tc.epochs} | train loss {_fmt(row['train_loss'])} acc "
                f"{_fmt(row['train_acc'])} | val loss {_fmt(row['val_loss'])} "
                f"acc {_fmt(row['val_acc'])} "
                f"UAR {_fmt(row['val_uar'])} | lr {row['lr']:.2e} | {row['seconds']:.1f} s"
                + (" *" if improved else "")
            )
            done = stopper.should_stop or epoch + 1 == tc.epochs
            if run.active:
                state = training_state(epoch + 1, 0, None, done)
                if improved:  # best.pt can resume too, like last.pt
                    save_checkpoint(run.best, payload({**state, "metrics": dict(row)}))
                save_checkpoint(run.last, payload(state))
                run.write_history(history)
                write_metrics()
            if stopper.should_stop:
                run.log(
                    f"Early stopping: {tc.monitor} has not improved for {tc.patience} epochs "
                    f"(best {_fmt(stopper.best)} at epoch {stopper.best_epoch})"
                )
            if interrupt.requested and not done:
                run.log(
                    f"Interrupted after epoch {epoch + 1}; saved {run.last}. "
                    "Rerun the same command to resume."
                )
                raise KeyboardInterrupt

    # ------------------------------------------------------------------ best weights, test
    if best_state is None and run.best is not None and run.best.is_file():
        best_state = load_checkpoint(run.best)["model_state"]  # a resumed, finished run
    if best_state is not None:
        raw_model.load_state_dict(best_state)
    test_metrics = None
    if dist.is_main and data.test is not None:
        from vocalis.evaluation.predictions import write_predictions
        from vocalis.training.evaluate import prediction_rows

        probs, test_loss = predict_dataset(
            raw_model,
            data.test,
            batch_size=tc.batch_size,
            device=device,
            loss_fn=cls_loss,
            amp_dtype=amp_dtype,
        )
        test_metrics = _plain(score(data.test.targets, probs, classes))
        test_metrics["loss"] = float(test_loss)
        if run.active:
            test_rows = data.rows.select(data.test_idx.tolist())
            write_predictions(
                run.file("predictions.csv"),
                prediction_rows(test_rows, data.test.targets, probs, classes),
                classes,
            )
        run.log(
            f"Test (best epoch {stopper.best_epoch}): acc {_fmt(test_metrics['accuracy'])} "
            f"UAR {_fmt(test_metrics['uar'])} macro-F1 {_fmt(test_metrics['macro_f1'])} "
            f"on {len(data.test_idx)} utterances"
        )
    if run.active:
        write_metrics({"test": test_metrics} if test_metrics is not None else None)
    barrier(dist)
    best_row = next((h for h in history if h["epoch"] == stopper.best_epoch), {})
    return TrainResult(
        out_dir=run.path,
        best_epoch=stopper.best_epoch,
        best_metrics={
            k: best_row[k]
            for k in ("val_loss", "val_acc", "val_uar", "val_macro_f1")
            if k in best_row
        },
        test_metrics=test_metrics,
        history=history,
        stopped_early=stopper.should_stop,
        classes=classes,
        model=raw_model.cpu(),
    )


def _plain(value: Any) -> Any:
    """JSON- and checkpoint-safe copy (numpy scalars and arrays become Python values)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


__all__ = ["NonFiniteLossError", "TrainResult", "resolve_device", "train"]
