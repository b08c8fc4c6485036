"""Where a run computes: the device, mixed precision and the DDP process group.

:func:`start_engine` turns ``train.device`` / ``train.amp`` and the ``torchrun``
environment into one :class:`Engine`; the rest of the training code asks the
engine (never the config) which device, which autocast dtype, which rank.

Example:
    >>> import torch
    >>> engine = Engine(torch.device("cpu"))
    >>> engine.is_main, engine.amp_dtype, engine.stop_requested(False)
    (True, None, False)
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

import torch

from vocalis.errors import ConfigError
from vocalis.training.distributed import DistInfo, all_sum, init_distributed


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> ``cuda:<local_rank>`` when available, else ``cpu``.

    Args:
        name: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (``train.device``).
        local_rank: this process's rank on its machine (picks the GPU for ``cuda``).

    Returns:
        The device.

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


def amp_dtype(enabled: bool, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``train.amp``: fp16 on CUDA, bf16 on CPU, ``None`` when off."""
    if not enabled:
        return None
    return torch.float16 if device.type == "cuda" else torch.bfloat16


@dataclass(frozen=True)
class Engine:
    """The device, process group and precision of this process.

    Args:
        device: where the model and batches live.
        dist: this process's place in a ``torchrun`` job (one process by default).
        amp_dtype: autocast dtype, or ``None`` for full precision.
    """

    device: torch.device
    dist: DistInfo = field(default_factory=DistInfo)
    amp_dtype: torch.dtype | None = None

    @property
    def is_main(self) -> bool:
        """True on rank 0 (the process that validates, tests and writes the run folder)."""
        return self.dist.is_main

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The mixed-precision context of a forward pass (a no-op without AMP)."""
        amp = self.amp_dtype
        return torch.autocast(self.device.type, dtype=amp or torch.float32, enabled=amp is not None)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """A gradient scaler, enabled only for fp16 (CUDA AMP)."""
        return torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` in DistributedDataParallel under ``torchrun``; ``model`` itself otherwise."""
        if not self.dist.enabled:
            return model
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(
            model,
            device_ids=[self.device.index] if self.device.type == "cuda" else None,
            find_unused_parameters=True,
        )

    def sum(self, values: list[float]) -> list[float]:
        """``values`` summed over all ranks (themselves in one process)."""
        return all_sum(self.dist, values, self.device)

    def stop_requested(self, requested: bool) -> bool:
        """True when any rank asked to stop (so every rank stops at the same step)."""
        if not self.dist.enabled:
            return requested
        return self.sum([float(requested)])[0] > 0


def start_engine(device: str, amp: bool) -> Engine:
    """Resolve the device and join the ``torchrun`` process group, if any.

    Args:
        device: ``train.device``.
        amp: ``train.amp``.

    Returns:
        The :class:`Engine`; call :func:`vocalis.training.distributed.shutdown` on its
        ``dist`` when the run ends.

    Raises:
        ConfigError: CUDA requested on a machine without it.
    """
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    dist = init_distributed(dev)
    return Engine(dev, dist, amp_dtype(amp, dev))


__all__ = ["Engine", "amp_dtype", "resolve_device", "start_engine"]
