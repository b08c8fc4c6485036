"""Speed change (tempo and pitch together), resampled with soxr.

Example:
    >>> import torch
    >>> y = SpeedChange(1.25, 1.25)(torch.zeros(16000), 16000, torch.Generator())
    >>> y.shape
    torch.Size([12800])
    >>> fixed = SpeedChange(rates=(0.5, 2.0))
    >>> len(fixed(torch.zeros(16000), 16000, torch.Generator())) in (32000, 8000)
    True
"""

from __future__ import annotations

import numpy as np
import torch

from vocalis.augment.draw import choice, uniform


class SpeedChange:
    """Play ``rate`` times faster: length / rate, pitch x rate.

    The samples are read as if recorded at ``rate * sample_rate`` and resampled to
    ``sample_rate`` with soxr (Kaldi-style speed perturbation). The rate is drawn
    as ``U[min_rate, max_rate]``, or, when ``rates`` is given, as one of them with
    equal probability (Kaldi's fixed copies, e.g. 0.9 and 1.1).

    Args:
        min_rate: slowest rate (> 0; < 1 lengthens the signal).
        max_rate: fastest rate.
        rates: a fixed set of rates to choose from instead of the range.

    Shape:
        samples: (T,) -> (round(T / rate),)

    Raises:
        ValueError: ``min_rate > max_rate`` or a rate <= 0.
    """

    def __init__(
        self, min_rate: float = 0.9, max_rate: float = 1.1, rates: tuple[float, ...] = ()
    ) -> None:
        if not 0 < min_rate <= max_rate or any(r <= 0 for r in rates):
            raise ValueError(
                "SpeedChange: expected 0 < min_rate <= max_rate and rates > 0, "
                f"got {min_rate}, {max_rate}, {tuple(rates)}"
            )
        self.min_rate, self.max_rate = float(min_rate), float(max_rate)
        self.rates = tuple(float(r) for r in rates)

    def __call__(
        self, samples: torch.Tensor, sample_rate: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Sped-up (or slowed-down) copy of the 1-D ``samples``."""
        import soxr

        rate = (
            choice(generator, self.rates)
            if self.rates
            else uniform(generator, self.min_rate, self.max_rate)
        )
        x = samples.detach().cpu().numpy().astype(np.float32, copy=False)
        y = soxr.resample(x, sample_rate * rate, sample_rate, quality="HQ")
        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)).to(samples.dtype)
