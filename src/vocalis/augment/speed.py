"""Speed change (tempo and pitch together), resampled with soxr.

Example:
    >>> import torch
    >>> y = SpeedChange(1.25, 1.25)(torch.zeros(16000), 16000, torch.Generator())
    >>> y.shape
    torch.Size([12800])
"""

from __future__ import annotations

import numpy as np
import torch

from vocalis.augment.draw import uniform


class SpeedChange:
    """Play ``rate ~ U[min_rate, max_rate]`` times faster: length / rate, pitch x rate.

    The samples are read as if recorded at ``rate * sample_rate`` and resampled to
    ``sample_rate`` with soxr (Kaldi-style speed perturbation).

    Args:
        min_rate: slowest rate (> 0; < 1 lengthens the signal).
        max_rate: fastest rate.

    Shape:
        samples: (T,) -> (round(T / rate),)

    Raises:
        ValueError: ``min_rate > max_rate`` or a rate <= 0.
    """

    def __init__(self, min_rate: float = 0.9, max_rate: float = 1.1) -> None:
        if not 0 < min_rate <= max_rate:
            raise ValueError(
                f"SpeedChange: expected 0 < min_rate <= max_rate, got {min_rate}, {max_rate}"
            )
        self.min_rate, self.max_rate = float(min_rate), float(max_rate)

    def __call__(
        self, samples: torch.Tensor, sample_rate: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Sped-up (or slowed-down) copy of the 1-D ``samples``."""
        import soxr

        rate = uniform(generator, self.min_rate, self.max_rate)
        x = samples.detach().cpu().numpy().astype(np.float32, copy=False)
        y = soxr.resample(x, sample_rate * rate, sample_rate, quality="HQ")
        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)).to(samples.dtype)
