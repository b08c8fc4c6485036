"""Optimiser and learning-rate schedule factories.

Every schedule except ``plateau`` is stepped once per optimiser step (so a run
resumed mid-epoch continues the same curve); ``plateau`` is stepped once per
epoch with the monitored validation metric. Linear warm-up (``warmup_epochs``)
multiplies ``cosine``, ``cosine_restarts``, ``step`` and ``none``.

Example:
    >>> import torch
    >>> from vocalis.training.config import TrainConfig
    >>> cfg = TrainConfig(epochs=4, lr=0.1, scheduler="cosine", warmup_epochs=1)
    >>> opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg)
    >>> sched = build_scheduler(opt, cfg, steps_per_epoch=2)
    >>> lrs = []
    >>> for _ in range(8):
    ...     lrs.append(round(opt.param_groups[0]["lr"], 4)); opt.step(); sched.step()
    >>> lrs
    [0.0, 0.05, 0.1, 0.0933, 0.075, 0.05, 0.025, 0.0067]
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any

import torch

from vocalis.errors import ConfigError
from vocalis.registry import Registry
from vocalis.training.config import TrainConfig

log = logging.getLogger(__name__)

#: Optimiser name -> factory ``(params, config) -> torch.optim.Optimizer``.
OPTIMIZERS: Registry[Any] = Registry("optimizer")


@OPTIMIZERS.register("adam")
def _adam(params: Iterable[Any], cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("adamw")
def _adamw(params: Iterable[Any], cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


@OPTIMIZERS.register("sgd")
def _sgd(params: Iterable[Any], cfg: TrainConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        params,
        lr=cfg.lr,
        momentum=cfg.momentum,
        nesterov=cfg.nesterov and cfg.momentum > 0,
        weight_decay=cfg.weight_decay,
    )


def build_optimizer(params: Iterable[Any], cfg: TrainConfig) -> torch.optim.Optimizer:
    """The optimiser named by ``cfg.optimizer``."""
    return OPTIMIZERS.get(cfg.optimizer)(params, cfg)


def lr_factor(step: int, cfg: TrainConfig, steps_per_epoch: int) -> float:
    """Multiplier of ``cfg.lr`` at optimiser step ``step`` (0-based) for per-step schedules.

    Example:
        >>> cfg = TrainConfig(epochs=10, scheduler="step", step_epochs=5, gamma=0.1)
        >>> lr_factor(0, cfg, 4), lr_factor(20, cfg, 4)
        (1.0, 0.1)
    """
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = round(cfg.warmup_epochs * steps_per_epoch)
    if step < warm:
        return step / warm
    floor = cfg.min_lr / cfg.lr
    name = cfg.scheduler
    if name == "none":
        return 1.0
    if name == "step":
        return cfg.gamma ** (step // (cfg.step_epochs * steps_per_epoch))
    if name == "cosine":
        t_max = cfg.cosine_t_max_epochs
        span = total - warm if t_max is None else round(t_max * steps_per_epoch)
        p = min(1.0, (step - warm) / max(1, span))
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * p))
    if name == "cosine_restarts":
        period = max(1, cfg.restart_epochs * steps_per_epoch)
        t = step - warm
        while t >= period:
            t -= period
            period *= max(1, cfg.restart_mult)
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t / period))
    raise ConfigError(f"train.scheduler: {name!r} is not a per-step schedule")


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int
) -> Any:
    """The schedule named by ``cfg.scheduler`` (see the module docstring for stepping).

    ``warmup_epochs`` is ignored (with a warning) by ``plateau`` and ``onecycle``,
    which shape the start of training themselves.

    Raises:
        ConfigError: a ``max_lr`` below ``lr``.
    """
    name = cfg.scheduler
    if name in ("plateau", "onecycle") and cfg.warmup_epochs:
        log.warning(
            "train.warmup_epochs=%s is ignored by scheduler=%s (set it to 0 to silence this)",
            cfg.warmup_epochs,
            name,
        )
    if name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode=cfg.mode,
            factor=cfg.plateau_factor,
            patience=cfg.plateau_patience,
            min_lr=cfg.min_lr,
        )
    if name == "onecycle":
        max_lr = cfg.peak_lr
        if max_lr < cfg.lr:
            raise ConfigError(f"train.max_lr: got {max_lr}, expected >= train.lr ({cfg.lr})")
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=max_lr,
            total_steps=max(1, cfg.epochs * steps_per_epoch),
            div_factor=max_lr / cfg.lr,
        )
    if name not in ("none", "step", "cosine", "cosine_restarts"):
        raise ConfigError(f"train.scheduler: unknown schedule {name!r}")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, cfg, steps_per_epoch)
    )


def steps_per_epoch_schedule(scheduler: Any) -> bool:
    """True when ``scheduler`` is stepped every optimiser step (False: once per epoch)."""
    return not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
