"""Process-group set-up for ``torchrun`` (DDP); a no-op in a single process.

``torchrun --nproc_per_node=2 -m vocalis train ...`` sets ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK``; :func:`init_distributed` then joins the group with
``gloo`` on CPU or ``nccl`` on CUDA. The same command without ``torchrun``
runs in one process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job.

    Attributes:
        rank: global rank (0 writes the run folder).
        local_rank: rank on this machine (picks the GPU).
        world_size: number of processes.
        initialized_here: the group was created by :func:`init_distributed`.
    """

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    initialized_here: bool = False

    @property
    def is_main(self) -> bool:
        """True on rank 0."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """True in a multi-process job."""
        return self.world_size > 1


def init_distributed(device: torch.device) -> DistInfo:
    """Join the process group described by the ``torchrun`` environment, if any."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist

    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_initialized():
        return DistInfo(dist.get_rank(), local, dist.get_world_size(), False)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    return DistInfo(rank, local, world, True)


def shutdown(info: DistInfo) -> None:
    """Leave the group if :func:`init_distributed` created it."""
    if info.initialized_here:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for every rank (no-op in one process)."""
    if info.enabled:
        import torch.distributed as dist

        dist.barrier()


def all_sum(info: DistInfo, values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over ranks."""
    if not info.enabled:
        return list(values)
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def broadcast(info: DistInfo, obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    if not info.enabled:
        return obj
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
