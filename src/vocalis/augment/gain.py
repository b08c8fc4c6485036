"""Random gain in decibels.

Example:
    >>> import torch
    >>> y = Gain(min_gain_db=-6.0, max_gain_db=-6.0)(torch.ones(4), 16000, torch.Generator())
    >>> round(float(y[0]), 3)
    0.501
"""

from __future__ import annotations

import torch


class Gain:
    """Multiply by ``10 ** (g / 20)`` with ``g`` uniform in ``[min_gain_db, max_gain_db]``.

    Args:
        min_gain_db: lowest gain in dB.
        max_gain_db: highest gain in dB.

    Shape:
        samples: (T,) or (C, T) -> same shape

    Raises:
        ValueError: ``min_gain_db > max_gain_db``.
    """

    def __init__(self, min_gain_db: float = -6.0, max_gain_db: float = 6.0) -> None:
        if min_gain_db > max_gain_db:
            raise ValueError(
                f"Gain: min_gain_db={min_gain_db} > max_gain_db={max_gain_db}; swap them"
            )
        self.min_gain_db = float(min_gain_db)
        self.max_gain_db = float(max_gain_db)

    def __call__(
        self, samples: torch.Tensor, sample_rate: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Scale ``samples`` by a random gain drawn from ``generator`` (same shape out)."""
        u = float(torch.rand((), generator=generator))
        gain_db = self.min_gain_db + u * (self.max_gain_db - self.min_gain_db)
        return samples * 10 ** (gain_db / 20)
