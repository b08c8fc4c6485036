"""The parts a training run is built from: model, loss, data loader, optimiser, schedule.

:func:`build_components` is the one place that turns an
:class:`~vocalis.training.config.ExperimentConfig` and the prepared data into
the objects the step loop uses; :func:`vocalis.training.train` calls it, and so
can a user who wants to change one part (optimiser parameter groups, another
loss) and keep the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from vocalis.errors import ConfigError
from vocalis.training.config import ExperimentConfig, TrainConfig
from vocalis.training.engine import Engine
from vocalis.training.state import EarlyStopping

if TYPE_CHECKING:
    from vocalis.training.prepared import PreparedData


@dataclass
class Components:
    """What :func:`build_components` builds; the step loop reads only these.

    Attributes:
        model: the classifier on the engine's device (not wrapped in DDP; the loop
            wraps it).
        loss: the classification loss (also the validation loss).
        objective: ``loss`` plus the optional multi-task regression loss.
        sampler: the epoch batch sampler (seeded, resumable mid-epoch).
        loader: the training ``DataLoader`` over ``sampler``.
        optimizer: the optimiser.
        scheduler: the learning-rate schedule.
        scaler: the AMP gradient scaler (disabled without fp16).
        stopper: early stopping on ``train.monitor``.
        specaug: SpecAugment (``augment.spec_mask``), or ``None``.
        mixup: feature mixup (``augment.mixup``), or ``None``.
        spec_noise: noise on the features (``augment.spec_noise``), or ``None``.
    """

    model: torch.nn.Module
    loss: torch.nn.Module
    objective: torch.nn.Module
    sampler: Any
    loader: Any
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    stopper: EarlyStopping
    specaug: Any = None
    mixup: Any = None
    spec_noise: Any = None

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps of one epoch on this rank."""
        return len(self.sampler)

    @property
    def per_step(self) -> bool:
        """True when the schedule steps every optimiser step (False: once per epoch)."""
        from vocalis.training.optim import steps_per_epoch_schedule

        return steps_per_epoch_schedule(self.scheduler)


def class_weights_for(
    cfg: ExperimentConfig, targets: list[int], classes: list[str]
) -> torch.Tensor | None:
    """The loss's class weights of ``train.class_weights`` (``None``: unweighted).

    Args:
        cfg: the experiment config.
        targets: class ids of the training rows (for ``auto``).
        classes: class names in id order.

    Returns:
        A (C,) float tensor, or ``None``.

    Raises:
        ConfigError: a list with another length than the number of classes.
    """
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


def head_class_weights(cfg: ExperimentConfig, data: PreparedData) -> list[torch.Tensor | None]:
    """Class weights of every head of a multi-head run (``None`` for unweighted heads).

    ``train.class_weights=auto`` weighs each multiclass head by the inverse frequency
    of its training classes (rows without its label left out) and each multi-label
    head's positives by ``negatives / positives`` of their label; a list of weights
    needs a single multiclass head.

    Raises:
        ConfigError: a list of weights with several heads.
    """
    cw = cfg.train.class_weights
    heads, layout = data.heads or [], data.layout
    if cw == "none":
        return [None] * len(heads)
    if not isinstance(cw, str) and len(heads) > 1:
        raise ConfigError(
            f"train.class_weights: a list of weights is ambiguous with {len(heads)} heads "
            f"({', '.join(h.name for h in heads)}); use auto or none"
        )
    out: list[torch.Tensor | None] = []
    packed = data.train.head_targets
    for h, (t0, t1) in zip(heads, layout.targets, strict=True):
        if h.kind == "multilabel" and cw == "auto":
            y = packed[:, t0:t1]
            pos = torch.nansum(y, dim=0)
            neg = torch.isfinite(y).sum(dim=0) - pos
            out.append(torch.where(pos > 0, neg / pos.clamp(min=1), torch.ones_like(pos)))
            continue
        if h.kind != "multiclass":
            out.append(None)
            continue
        col = packed[:, t0]
        ids = [int(v) for v in col[torch.isfinite(col)].tolist()]
        out.append(class_weights_for(cfg, ids, list(h.classes)))
    return out


def monitor_of(cfg: ExperimentConfig, data: PreparedData) -> tuple[str, str]:
    """The metric and mode early stopping and ``best.pt`` follow.

    ``train.monitor`` and ``train.mode``, except that a run without a class head
    (only regression heads) asked for the default ``val_uar`` follows ``val_ccc``
    (max), since it has no UAR.
    """
    tc = cfg.train
    heads = data.heads or []
    if (
        heads
        and all(h.kind == "regression" for h in heads)
        and tc.monitor
        in (
            "val_uar",
            "val_acc",
            "val_macro_f1",
        )
    ):
        return "val_ccc", "max"
    return tc.monitor, tc.mode


def lr_tier_groups(model: torch.nn.Module, cfg: ExperimentConfig) -> list[dict[str, Any]]:
    """One optimiser parameter group per tier of ``model``, at ``train.lr`` x its factor.

    Tiers come from the model's ``parameter_tiers()`` (``frozen``, ``encoder``,
    ``head``; a plain module is all ``head``); ``head`` comes first (its rate is the
    one the run log and ``history.csv`` report), empty tiers are left out. Each group
    records its ``tier`` and ``lr_factor`` (see :func:`describe_param_groups`).

    Raises:
        ConfigError: ``train.lr_tiers`` is not set, or the model names a tier
            :class:`~vocalis.training.config.LRTiers` does not have.
    """
    from vocalis.config import to_dict
    from vocalis.models import SpeechClassifier

    tc = cfg.train
    if tc.lr_tiers is None:
        raise ConfigError("train.lr_tiers is not set; give {frozen: ..., encoder: ..., head: ...}")
    factors = to_dict(tc.lr_tiers)
    tiers = (
        model.parameter_tiers()
        if isinstance(model, SpeechClassifier)
        else {"head": list(model.parameters())}
    )
    groups = []  # head first: the loop and history.csv report the first group's rate
    for name, params in sorted(tiers.items(), key=lambda kv: kv[0] != "head"):
        if name not in factors:
            raise ConfigError(
                f"model {type(model).__name__} has a parameter tier {name!r} that "
                f"train.lr_tiers does not know (tiers: {', '.join(factors)})"
            )
        if params:
            f = float(factors[name])
            groups.append({"params": params, "lr": tc.lr * f, "tier": name, "lr_factor": f})
    return groups


def describe_optimizer(tc: TrainConfig) -> str:
    """One line for the run log: optimiser, weight decay, schedule, warm-up, clipping.

    Example:
        >>> from vocalis.training.config import TrainConfig
        >>> cfg = TrainConfig(optimizer="adamw", weight_decay=0.01, scheduler="cosine_restarts",
        ...     restart_epochs=5, restart_mult=2, warmup_epochs=0)
        >>> line = describe_optimizer(cfg)
        >>> line.split(", schedule")[0]
        'Optimizer adamw (lr 0.001, weight decay 0.01)'
        >>> "cosine_restarts (first cycle 5 epochs, x2 each restart" in line
        True
    """
    opt = f"Optimizer {tc.optimizer} (lr {tc.lr:g}, weight decay {tc.weight_decay:g})"
    sched = f"schedule {tc.scheduler}"
    if tc.scheduler == "cosine_restarts":
        sched += (
            f" (first cycle {tc.restart_epochs} epochs, x{tc.restart_mult} each restart, "
            f"floor {tc.min_lr:g})"
        )
    elif tc.scheduler == "cosine":
        sched += f" (floor {tc.min_lr:g})"
    elif tc.scheduler == "onecycle":
        sched += f" (from lr up to max_lr {tc.peak_lr:g}, then down)"
    if tc.warmup_epochs and tc.scheduler not in ("plateau", "onecycle"):
        sched += f", warm-up {tc.warmup_epochs:g} epochs"
    clip = f"grad clip {tc.grad_clip:g}" if tc.grad_clip > 0 else "no grad clipping"
    return f"{opt}, {sched}, {clip}"


def describe_param_groups(optimizer: torch.optim.Optimizer, lr: float) -> list[str]:
    """One line per optimiser group: tier, learning rate, parameters (trainable now).

    Example:
        >>> p = torch.nn.Parameter(torch.zeros(3))
        >>> opt = torch.optim.SGD([{"params": [p], "lr": 0.01, "tier": "head", "lr_factor": 1.0}])
        >>> describe_param_groups(opt, 0.01)
        ['Parameter group head: lr 0.01 (train.lr x 1), 3 parameters (3 trainable now)']
    """
    lines = []
    for i, g in enumerate(optimizer.param_groups):
        n = sum(p.numel() for p in g["params"])
        live = sum(p.numel() for p in g["params"] if p.requires_grad)
        base = g.get("initial_lr", g["lr"])  # a schedule has already scaled g["lr"]
        factor = g.get("lr_factor", base / lr if lr else 1.0)
        lines.append(
            f"Parameter group {g.get('tier', i)}: lr {lr * factor:.3g} (train.lr x {factor:g}), "
            f"{n:,} parameters ({live:,} trainable now)"
        )
    return lines


def build_components(
    cfg: ExperimentConfig,
    data: PreparedData,
    engine: Engine | None = None,
    *,
    param_groups: Callable[[torch.nn.Module], Iterable[Any]] | None = None,
) -> Components:
    """Build model, loss, sampler, loader, optimiser, schedule, scaler, stopping, augmenters.

    Seeds torch with ``train.seed`` first, so the same config and data always give
    the same initial weights (and a resumed run rebuilds exactly what it saved).

    Args:
        cfg: the experiment config.
        data: the prepared data (:func:`vocalis.training.prepared.prepare_data`).
        engine: device, ranks and precision (default: one CPU process).
        param_groups: ``model -> parameters or parameter-group dicts`` for the
            optimiser (default: all of ``model.parameters()`` in one group with
            ``train.lr``). A group may set its own ``lr``: the ``cosine``, ``step``
            and ``none`` schedules and warm-up scale each group's rate by the same
            factor, ``plateau`` decays each one; ``onecycle`` drives all to ``max_lr``.

    Returns:
        The :class:`Components`.

    Raises:
        ConfigError: an invalid loss, optimiser, schedule or class-weight setting.

    Example:
        A smaller learning rate for the front end than for the classifier head::

            from vocalis.training.components import build_components
            from vocalis.training.engine import Engine

            def groups(model):
                head = [p for n, p in model.named_parameters() if n.startswith("head.")]
                rest = [p for n, p in model.named_parameters() if not n.startswith("head.")]
                return [{"params": rest, "lr": cfg.train.lr / 10}, {"params": head}]

            parts = build_components(cfg, data, Engine(torch.device("cpu")),
                                     param_groups=groups)

        To train with them, run the steps of :func:`vocalis.training.train` (listed
        in :mod:`vocalis.training.trainer`) with ``parts`` in place of the default
        components: :func:`vocalis.training.trainer.run_training` takes them as they are.
    """
    from vocalis.models import build_model
    from vocalis.training import optim
    from vocalis.training.data import EpochBatchSampler, WaveformDataset, make_loader
    from vocalis.training.losses import (
        LOSSES,
        HeadsObjective,
        Objective,
        build_classification_loss,
        build_head_losses,
    )

    engine = engine or Engine(torch.device("cpu"))
    device, dist, tc = engine.device, engine.dist, cfg.train
    classes = list(data.encoder.classes)
    layout = data.layout
    torch.manual_seed(tc.seed)
    model: torch.nn.Module = build_model(
        cfg.model.name,
        cfg.model.params,
        data.feature_dim,
        len(classes) if layout is None else layout.sizes,
        feature_name=cfg.features.extractor.name,
    ).to(device)
    if layout is not None:
        model.set_head_kinds(layout.kinds)
    if data.model_norm is not None:
        model.set_input_norm(*data.model_norm)
    if tc.gradient_checkpointing:
        model.set_gradient_checkpointing(True)
    options = {
        "label_smoothing": tc.label_smoothing,
        "focal_gamma": tc.focal_gamma,
        "aam_margin": tc.aam_margin,
        "aam_scale": tc.aam_scale,
    }
    if layout is None:
        weights = class_weights_for(cfg, data.train.targets, classes)
        loss = build_classification_loss(
            tc.loss, weight=None if weights is None else weights.to(device), **options
        ).to(device)
        reg_loss = LOSSES.get(tc.multitask_loss)() if tc.multitask_lambda > 0 else None
        objective: torch.nn.Module = Objective(loss, reg_loss, tc.multitask_lambda)
    else:
        weights = head_class_weights(cfg, data)
        losses = build_head_losses(
            layout, [None if w is None else w.to(device) for w in weights], **options
        )
        objective = HeadsObjective(layout, losses).to(device)
        loss = objective

    sampler = EpochBatchSampler(
        [data.train.num_frames(i) for i in range(len(data.train))],
        tc.batch_size,
        shuffle=True,
        bucketing=tc.bucketing,
        seed=tc.seed,
        crop=data.train.crop_frames is not None,
        augment=isinstance(data.train, WaveformDataset),
        rank=dist.rank,
        world_size=dist.world_size,
    )
    loader = make_loader(
        data.train, sampler, num_workers=tc.num_workers, pin_memory=device.type == "cuda"
    )
    if param_groups is not None:
        params: Iterable[Any] = param_groups(model)
    elif tc.lr_tiers is not None:
        params = lr_tier_groups(model, cfg)
    else:
        params = model.parameters()
    optimizer = optim.build_optimizer(params, tc)
    scheduler = optim.build_scheduler(optimizer, tc, len(sampler))
    specaug, spec_noise, mixup = feature_augmenters(cfg)
    return Components(
        model=model,
        loss=loss,
        objective=objective,
        sampler=sampler,
        loader=loader,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=engine.grad_scaler(),
        stopper=EarlyStopping(*monitor_of(cfg, data), tc.patience, tc.min_delta),
        specaug=specaug,
        mixup=mixup,
        spec_noise=spec_noise,
    )


def feature_augmenters(cfg: ExperimentConfig) -> tuple[Any, Any, Any]:
    """The training step's feature transforms of ``cfg.augment``, ``None`` where off.

    SpecAugment masks need a spectrogram: on ``features=waveform`` (one value per
    sample, F = 1) a frequency mask would zero the whole utterance, so ``spec_mask``
    is left out there (:func:`skipped_augmentations` names it for the run log).

    Returns:
        ``(SpecAugment, SpecNoise, Mixup)``; the step applies noise, then masks (masked
        cells stay at the fill value), then mixup.
    """
    from vocalis.augment import Mixup, SpecAugment, SpecNoise

    aug = cfg.augment
    m = aug.spec_mask
    specaug = (
        SpecAugment(m.time_masks, m.time_mask_frames, m.freq_masks, m.freq_mask_bins, p=m.p)
        if m.p > 0 and not skipped_augmentations(cfg)
        else None
    )
    n = aug.spec_noise
    spec_noise = SpecNoise(n.min_snr_db, n.max_snr_db, p=n.p) if n.p > 0 else None
    mixup = Mixup(aug.mixup.alpha, p=aug.mixup.p) if aug.mixup.p > 0 else None
    return specaug, spec_noise, mixup


def skipped_augmentations(cfg: ExperimentConfig) -> list[str]:
    """Configured transforms the run leaves out, with why (one line each, for the log).

    Example:
        >>> from vocalis.training.config import load_config
        >>> skipped_augmentations(load_config(None, ["features=waveform", "model=ssl"]))[0][:46]
        'augment.spec_mask left out: features=waveform '
    """
    if cfg.augment.spec_mask.p > 0 and cfg.features.extractor.name == "waveform":
        return [
            "augment.spec_mask left out: features=waveform has no spectrogram (a frequency "
            "mask would zero the whole waveform); set augment.spec_mask.p=0 to silence this"
        ]
    return []


__all__ = [
    "Components",
    "build_components",
    "class_weights_for",
    "describe_optimizer",
    "describe_param_groups",
    "feature_augmenters",
    "head_class_weights",
    "lr_tier_groups",
    "monitor_of",
    "skipped_augmentations",
]
