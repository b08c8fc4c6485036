"""The random draws every augmentation makes, from an explicit generator.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> 1.0 <= uniform(g, 1.0, 2.0) <= 2.0, chance(g, 0.0), chance(g, 1.0)
    (True, False, True)
    >>> choice(g, (0.9, 1.1)) in (0.9, 1.1)
    True
"""

from __future__ import annotations

import torch


def uniform(generator: torch.Generator, low: float, high: float) -> float:
    """One number drawn uniformly in ``[low, high]`` from ``generator`` (one draw, always)."""
    u = float(torch.rand((), generator=generator, dtype=torch.float64))
    return low + u * (high - low)


def chance(generator: torch.Generator, p: float) -> bool:
    """True with probability ``p``; draws nothing when ``p`` is 0 or 1.

    Drawing nothing at ``p = 1`` keeps the random stream of a transform that is
    always on identical to the stream it had before ``p`` existed.
    """
    if p <= 0.0:
        return False
    if p >= 1.0:
        return True
    return float(torch.rand((), generator=generator, dtype=torch.float64)) < p


def choice(generator: torch.Generator, options: tuple[float, ...]) -> float:
    """One of ``options``, each equally likely, from ``generator`` (one draw, always)."""
    return options[int(torch.randint(len(options), (), generator=generator))]
