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
from typing import TYPE_CHECKING, Any, NoReturn

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

if TYPE_CHECKING:
    from vocalis.training.data import Batch


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
    """Run :func:`train` on this process: set up, resume, epochs, best weights, test."""
    run, resume = _open_run(cfg, out_dir, overwrite, dist)
    seed_everything(cfg.train.seed, cfg.train.deterministic)
    data = prepare_data(cfg, manifest, indices, dist, run, progress)
    _check_labels(run, resume, data)
    s = _Session(cfg, run, data, device, dist, progress)
    if resume is not None:
        s.restore(resume)
    elif overwrite:
        run.clear()
    s.distribute()
    s.log_start(resume is not None, caller_val=indices[1] is not None)

    interrupt = GracefulInterrupt()
    with interrupt:
        for epoch in range(s.start_epoch, cfg.train.epochs):
            if s.stopper.should_stop:
                break
            t0 = time.perf_counter()
            sums, last_lr = s.train_epoch(epoch, interrupt)
            row, vm = s.validate(epoch, sums, last_lr, t0)
            done = s.end_epoch(epoch, row, vm)
            if interrupt.requested and not done:
                _interrupted(run, f"after epoch {epoch + 1}")

    s.load_best()
    test_metrics = s.test()
    if run.active:
        s.write_model()
        s.write_metrics(test_metrics)
    barrier(dist)
    return s.result(test_metrics)


def _open_run(
    cfg: ExperimentConfig, out_dir: str | os.PathLike | None, overwrite: bool, dist: DistInfo
) -> tuple[RunFolder, dict[str, Any] | None]:
    """The run folder, and its ``last.pt`` when it resumes (checked against ``cfg``)."""
    from vocalis.checkpoint import load_checkpoint

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
    return run, resume


def _check_labels(run: RunFolder, resume: dict[str, Any] | None, data: PreparedData) -> None:
    """Raise :class:`DataError` when a resumed run was trained on other classes."""
    if resume is not None and resume["labels"] != data.encoder.to_dict():
        raise DataError(
            f"{run.last}: the run was trained on classes {resume['labels'].get('classes')}, "
            f"the data now gives {list(data.encoder.classes)}; restore the manifest or pass "
            "--overwrite"
        )


def _interrupted(run: RunFolder, where: str) -> NoReturn:
    """Log where the run stopped (``last.pt`` is saved) and raise ``KeyboardInterrupt``."""
    run.log(f"Interrupted {where}; saved {run.last}. Rerun the same command to resume.")
    raise KeyboardInterrupt


class _Session:
    """A run's built objects and counters, with the steps :func:`_train` calls in order.

    Building seeds torch and builds model, loss, sampler, loader, optimiser, schedule,
    scaler, early stopping and augmenters; under DDP ``model`` wraps ``raw_model``.
    """

    def __init__(
        self,
        cfg: ExperimentConfig,
        run: RunFolder,
        data: PreparedData,
        device: torch.device,
        dist: DistInfo,
        progress: bool,
    ) -> None:
        from vocalis.augment import Mixup, SpecAugment
        from vocalis.models import build_model
        from vocalis.training import optim
        from vocalis.training.data import EpochBatchSampler, make_loader
        from vocalis.training.losses import LOSSES, Objective, build_classification_loss

        self.cfg, self.run, self.data, self.device, self.dist = cfg, run, data, device, dist
        self.progress = progress
        tc = cfg.train
        self.classes = list(data.encoder.classes)
        torch.manual_seed(tc.seed)
        self.model: torch.nn.Module = build_model(
            cfg.model.name,
            cfg.model.params,
            data.feature_dim,
            len(self.classes),
            feature_name=cfg.features.extractor.get("name"),
        ).to(device)
        if data.model_norm is not None:
            self.model.set_input_norm(*data.model_norm)
        self.raw_model = self.model
        weights = _class_weights(cfg, data.train.targets, self.classes)
        self.cls_loss = build_classification_loss(
            tc.loss,
            weight=None if weights is None else weights.to(device),
            label_smoothing=tc.label_smoothing,
            focal_gamma=tc.focal_gamma,
            aam_margin=tc.aam_margin,
            aam_scale=tc.aam_scale,
        ).to(device)
        reg_loss = LOSSES.get(tc.multitask_loss)() if tc.multitask_lambda > 0 else None
        self.objective = Objective(self.cls_loss, reg_loss, tc.multitask_lambda)

        self.sampler = EpochBatchSampler(
            [data.train.num_frames(i) for i in range(len(data.train))],
            tc.batch_size,
            shuffle=True,
            bucketing=tc.bucketing,
            seed=tc.seed,
            crop=data.train.crop_frames is not None,
            rank=dist.rank,
            world_size=dist.world_size,
        )
        self.loader = make_loader(
            data.train, self.sampler, num_workers=tc.num_workers, pin_memory=device.type == "cuda"
        )
        self.steps_per_epoch = len(self.sampler)
        self.optimizer = optim.build_optimizer(self.model.parameters(), tc)
        self.scheduler = optim.build_scheduler(self.optimizer, tc, self.steps_per_epoch)
        self.per_step = optim.steps_per_epoch_schedule(self.scheduler)
        self.amp_dtype = _amp(cfg, device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.stopper = EarlyStopping(tc.monitor, tc.mode, tc.patience, tc.min_delta)
        aug = tc.augment
        self.specaug = (
            SpecAugment(aug.time_masks, aug.time_mask_frames, aug.freq_masks, aug.freq_mask_bins)
            if aug.specaugment
            else None
        )
        self.mixup = Mixup(aug.mixup_alpha) if aug.mixup_alpha > 0 else None

        self.history: list[dict[str, Any]] = []
        self.best_state: dict[str, torch.Tensor] | None = None
        self.start_epoch, self.skip, self.global_step = 0, 0, 0
        self.partial: list[float] | None = None  # sums of an epoch stopped midway
        self.epoch_lr = tc.lr
        self.best_val: dict[str, Any] = {}

    def restore(self, resume: dict[str, Any]) -> None:
        """Load weights, optimiser, schedule, counters and RNG state from a checkpoint."""
        try:
            self.model.load_state_dict(resume["model_state"])
            self.optimizer.load_state_dict(resume["optimizer"])
        except (RuntimeError, ValueError, KeyError) as err:
            first = str(err).splitlines()[0]
            raise ModelError(
                f"{self.run.last}: cannot resume, its weights do not fit this model ({first}); "
                "pass --overwrite to start over"
            ) from None
        self.scheduler.load_state_dict(resume["scheduler"])
        if resume.get("scaler"):
            self.scaler.load_state_dict(resume["scaler"])
        self.stopper.load_state_dict(resume.get("best") or {})
        self.history = list(resume.get("history") or [])
        self.start_epoch = int(resume["epoch"])
        self.skip = int(resume.get("epoch_step", 0))
        self.global_step = int(resume.get("step", 0))
        self.partial = resume.get("partial")
        self.epoch_lr = float(resume.get("epoch_lr") or self.optimizer.param_groups[0]["lr"])
        self.best_val = dict(resume.get("best_val") or {})
        set_rng_state(resume.get("rng") or {})

    def distribute(self) -> None:
        """Wrap ``model`` in DDP when running under ``torchrun``."""
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            self.model = DDP(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True,
            )

    def log_start(self, resumed: bool, caller_val: bool) -> None:
        """Open the run folder (env, config, label map); log the model, data and split."""
        cfg, run, data, classes = self.cfg, self.run, self.data, self.classes
        if run.active:
            env = environment(str(self.device), self.dist.world_size)
            env["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            run.open(env, resumed=resumed)
            run.write_text("config.yaml", config_to_yaml(cfg))
            run.write_json("label_map.json", data.encoder.to_dict())
        spk = data.rows.column("speaker") if "speaker" in data.rows.columns else None
        n_params = sum(p.numel() for p in self.raw_model.parameters())
        run.log(
            ("Resuming" if resumed else "Training")
            + f" {cfg.model.name} ({n_params:,} parameters) on "
            f"{cfg.features.extractor.get('name')} features (F={data.feature_dim}, "
            f"normalization={cfg.features.normalization}"
            f"{' in the model' if data.model_norm is not None else ''}); "
            f"device {self.device}, world size {self.dist.world_size}"
        )
        run.log(
            f"Data: {len(data.train_idx)} train / {len(data.val_idx)} val / {len(data.test_idx)} "
            f"test utterances, {len(classes)} classes ({', '.join(classes)})"
        )
        if spk is not None:
            held = sorted({spk[i] for i in data.val_idx.tolist()})
            shared = held and not set(held).isdisjoint(spk[i] for i in data.train_idx.tolist())
            how = (
                "rows given by the caller" if caller_val else f"protocol {cfg.dataset.val_protocol}"
            )
            run.log(
                f"Validation speakers: {', '.join(held)} ({how}"
                + (
                    "; they also speak in training, so validation is speaker-dependent)"
                    if shared
                    else "; none of them in training)"
                )
            )
        if resumed:
            run.log(f"Resumed from {run.last} at epoch {self.start_epoch} step {self.skip}")

    def payload(self, extra: dict[str, Any]) -> dict[str, Any]:
        """A checkpoint of ``raw_model`` (see :func:`_payload`) with ``extra`` keys."""
        return _payload(self.cfg, self.raw_model, self.data, extra)

    def training_state(
        self, epoch: int, epoch_step: int, part: list[float] | None, done: bool
    ) -> dict[str, Any]:
        """What a checkpoint needs to resume at step ``epoch_step`` of 0-based ``epoch``."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            "step": self.global_step,
            "epoch_step": epoch_step,
            "partial": part,
            "epoch_lr": self.epoch_lr,
            "rng": rng_state(),
            "best": self.stopper.state_dict(),
            "best_val": self.best_val,
            "history": self.history,
            "finished": done,
        }

    def best_row(self) -> dict[str, Any]:
        """The history row of the best epoch (``{}`` before the first one)."""
        return next((h for h in self.history if h["epoch"] == self.stopper.best_epoch), {})

    def write_metrics(self, test: dict[str, Any] | None = None) -> None:
        """Write ``metrics.json`` (the run folder's one schema): best epoch, scores, sizes."""
        best_row = self.best_row()
        val = {**self.best_val, "loss": best_row.get("val_loss")} if self.best_val else None
        seconds = sum(float(h.get("seconds") or 0.0) for h in self.history)
        self.run.write_metrics(
            kind="train",
            model="neural",
            val=val,
            test=test,
            best_epoch=self.stopper.best_epoch or None,
            epochs_run=len(self.history),
            n_rows={
                "train": len(self.data.train_idx),
                "val": len(self.data.val_idx),
                "test": len(self.data.test_idx),
            },
            classes=self.classes,
            seconds=round(seconds, 3),
            details={
                "monitor": self.cfg.train.monitor,
                "mode": self.cfg.train.mode,
                "stopped_early": self.stopper.should_stop,
            },
        )

    def train_epoch(self, epoch: int, interrupt: GracefulInterrupt) -> tuple[list[float], float]:
        """Train this rank's batches of ``epoch`` from ``skip``: ``(sums, lr of last step)``.

        A stop requested before the epoch's last step saves ``last.pt`` with the
        position in the epoch and raises ``KeyboardInterrupt``.
        """
        from tqdm.auto import tqdm

        from vocalis.checkpoint import save_checkpoint

        if self.partial is None:
            self.epoch_lr = float(self.optimizer.param_groups[0]["lr"])
        last_lr = self.epoch_lr  # the lr of the epoch's last step, reported in history.csv
        self.sampler.set_epoch(epoch, self.skip)
        self.model.train()
        sums = list(self.partial) if self.partial else [0.0, 0.0, 0.0]  # loss * n, correct, n
        bar = tqdm(
            total=self.steps_per_epoch,
            initial=self.skip,
            desc=f"Epoch {epoch + 1}/{self.cfg.train.epochs}",
            disable=not (self.progress and self.dist.is_main),
            leave=False,
            unit="batch",
        )
        for i, batch in enumerate(self.loader, start=self.skip):
            last_lr = self.train_step(epoch, i, batch, sums)
            bar.update()
            bar.set_postfix(loss=f"{sums[0] / max(sums[2], 1):.3f}")
            interrupt.step()
            flag = interrupt.requested
            if self.dist.enabled:
                flag = all_sum(self.dist, [float(flag)], self.device)[0] > 0
            if flag and i + 1 < self.steps_per_epoch:
                if self.run.active:
                    state = self.training_state(epoch, i + 1, sums, False)
                    save_checkpoint(self.run.last, self.payload(state))
                bar.close()
                _interrupted(self.run, f"in epoch {epoch + 1} after step {i + 1}")
        bar.close()
        self.skip, self.partial = 0, None
        return sums, last_lr

    def train_step(self, epoch: int, step: int, batch: Batch, sums: list[float]) -> float:
        """Train on one batch, seeded by ``(seed, epoch, step, rank)``; add it to ``sums``.

        Returns the learning rate of the step; raises :class:`NonFiniteLossError`.
        """
        tc = self.cfg.train
        s = step_seed(tc.seed, epoch, step, self.dist.rank)
        torch.manual_seed(s)
        gen = torch.Generator().manual_seed(s ^ 0x5DEECE66D)
        batch = batch.to(self.device)
        feats, lengths = batch.features, batch.lengths
        if self.specaug is not None:
            feats = self.specaug(feats, lengths, gen)
        mixed = self.mixup(feats, lengths, gen) if self.mixup is not None else None
        if mixed is not None:
            feats, lengths = mixed.features, mixed.lengths
        amp = self.amp_dtype
        with torch.autocast(self.device.type, dtype=amp or torch.float32, enabled=amp is not None):
            out = self.model(feats, lengths)
        if mixed is None:
            loss, _ = self.objective(out.logits, batch.targets, out.extras, batch.regression)
        else:
            la, _ = self.objective(out.logits, batch.targets, out.extras, batch.regression)
            perm = mixed.perm
            reg_b = None if batch.regression is None else batch.regression[perm]
            lb, _ = self.objective(out.logits, batch.targets[perm], out.extras, reg_b)
            loss = mixed.lam * la + (1.0 - mixed.lam) * lb
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"epoch {epoch + 1} step {step + 1}: the training loss is "
                f"{float(loss.detach())}; lower "
                f"train.lr (now {tc.lr}), keep train.grad_clip on, and check the features "
                "and their normalisation (features.normalization) for NaN or huge values"
            )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if tc.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), tc.grad_clip)
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.per_step:
            self.scheduler.step()
        self.global_step += 1
        n = len(batch)
        sums[0] += float(loss.detach()) * n
        sums[1] += float((out.logits.detach().argmax(-1) == batch.targets).sum())
        sums[2] += n
        return lr

    def predict(self, dataset: Any) -> tuple[np.ndarray, float]:
        """Class probabilities (N, C) and mean loss of ``raw_model`` on ``dataset``."""
        from vocalis.training.evaluate import predict_dataset

        return predict_dataset(
            self.raw_model,
            dataset,
            batch_size=self.cfg.train.batch_size,
            device=self.device,
            loss_fn=self.cls_loss,
            amp_dtype=self.amp_dtype,
        )

    def validate(
        self, epoch: int, sums: list[float], last_lr: float, t0: float
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Sum training numbers over ranks, validate on rank 0: ``(history row, scores)``."""
        from vocalis.training.evaluate import score

        tot = all_sum(self.dist, sums, self.device)
        train_loss, train_acc = tot[0] / max(tot[2], 1), tot[1] / max(tot[2], 1)
        decision = None
        if self.dist.is_main:
            probs, val_loss = self.predict(self.data.val)
            vm = score(self.data.val.targets, probs, self.classes)
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
        return broadcast(self.dist, decision)

    def end_epoch(self, epoch: int, row: dict[str, Any], vm: dict[str, Any]) -> bool:
        """Record an epoch (history, stopping, schedule, best weights, log, checkpoints).

        Returns whether the run is done (stopped early, or its last epoch).
        """
        from vocalis.checkpoint import save_checkpoint

        tc, run, stopper = self.cfg.train, self.run, self.stopper
        if not np.isfinite(row["train_loss"]):
            raise NonFiniteLossError(f"epoch {epoch + 1}: non-finite training loss")
        self.history.append(row)
        improved = stopper.update(row[tc.monitor], epoch + 1)
        if not self.per_step:
            self.scheduler.step(row[tc.monitor])
        if improved:
            self.best_val = _plain(vm)
            self.best_state = {
                k: v.detach().cpu().clone() for k, v in self.raw_model.state_dict().items()
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
            state = self.training_state(epoch + 1, 0, None, done)
            if improved:  # best.pt can resume too, like last.pt
                save_checkpoint(run.best, self.payload({**state, "metrics": dict(row)}))
            save_checkpoint(run.last, self.payload(state))
            run.write_history(self.history)
            self.write_metrics()
        if stopper.should_stop:
            run.log(
                f"Early stopping: {tc.monitor} has not improved for {tc.patience} epochs "
                f"(best {_fmt(stopper.best)} at epoch {stopper.best_epoch})"
            )
        return done

    def load_best(self) -> None:
        """Load the best weights into ``raw_model`` (from ``best.pt`` for a finished run)."""
        from vocalis.checkpoint import load_checkpoint

        best = self.run.best
        if self.best_state is None and best is not None and best.is_file():
            self.best_state = load_checkpoint(best)["model_state"]  # a resumed, finished run
        if self.best_state is not None:
            self.raw_model.load_state_dict(self.best_state)

    def write_model(self) -> None:
        """Write ``model.pt``: the slim deployable checkpoint of the best weights."""
        from vocalis.checkpoint import save_checkpoint, slim_checkpoint

        run = self.run
        if run.best is not None and run.best.is_file():
            slim_checkpoint(run.best, run.model)
        else:  # no epoch ever improved: ship the weights there are, without training state
            save_checkpoint(run.model, self.payload({}))

    def test(self) -> dict[str, Any] | None:
        """Test metrics of ``raw_model`` and ``predictions.csv`` (rank 0 with test rows)."""
        data, run, classes = self.data, self.run, self.classes
        if not (self.dist.is_main and data.test is not None):
            return None
        from vocalis.evaluation.predictions import write_predictions
        from vocalis.training.evaluate import prediction_rows, score

        probs, test_loss = self.predict(data.test)
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
            f"Test (best epoch {self.stopper.best_epoch}): acc {_fmt(test_metrics['accuracy'])} "
            f"UAR {_fmt(test_metrics['uar'])} macro-F1 {_fmt(test_metrics['macro_f1'])} "
            f"on {len(data.test_idx)} utterances"
        )
        return test_metrics

    def result(self, test_metrics: dict[str, Any] | None) -> TrainResult:
        """The :class:`TrainResult` (moves ``raw_model`` to the CPU)."""
        best_row = self.best_row()
        return TrainResult(
            out_dir=self.run.path,
            best_epoch=self.stopper.best_epoch,
            best_metrics={
                k: best_row[k]
                for k in ("val_loss", "val_acc", "val_uar", "val_macro_f1")
                if k in best_row
            },
            test_metrics=test_metrics,
            history=self.history,
            stopped_early=self.stopper.should_stop,
            classes=self.classes,
            model=self.raw_model.cpu(),
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
