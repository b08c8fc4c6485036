"""Pitch shift and time stretch with Rubber Band (through pedalboard).

pedalboard is the ``augment`` extra (``pip install 'vocalis[augment]'``),
imported only when one of these transforms runs.

Example:
    >>> import torch
    >>> g = torch.Generator()
    >>> TimeStretch(2.0, 2.0)(torch.zeros(16000), 16000, g).shape
    torch.Size([8000])
    >>> PitchShift(3.0, 3.0)(torch.zeros(16000), 16000, g).shape
    torch.Size([16000])
"""

from __future__ import annotations

import numpy as np
import torch

from vocalis.augment.draw import uniform
from vocalis.errors import ConfigError


def _time_stretch(
    samples: torch.Tensor, sample_rate: int, rate: float, semitones: float, high_quality: bool
) -> torch.Tensor:
    try:
        from pedalboard import time_stretch
    except ImportError:
        raise ConfigError(
            "augment.pitch / augment.stretch need the 'pedalboard' package: "
            "pip install 'vocalis[augment]' (or pip install pedalboard), or set their p to 0"
        ) from None
    x = samples.detach().cpu().numpy().astype(np.float32, copy=False)[None]
    y = time_stretch(
        x,
        float(sample_rate),
        stretch_factor=float(rate),
        pitch_shift_in_semitones=float(semitones),
        high_quality=high_quality,
    )[0]
    return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)).to(samples.dtype)


class PitchShift:
    """Shift the pitch by ``n ~ U[min_semitones, max_semitones]`` semitones; length kept.

    A frequency ``f`` moves to ``f * 2 ** (n / 12)``; formants are preserved.

    Args:
        min_semitones: lowest shift (negative: lower).
        max_semitones: highest shift.
        high_quality: Rubber Band's high-quality mode (within 3 cents of the asked
            pitch; the fast mode is within about 20 cents and 2 to 4x faster).

    Shape:
        samples: (T,) -> (T,)

    Raises:
        ValueError: ``min_semitones > max_semitones``.
    """

    def __init__(
        self, min_semitones: float = -2.0, max_semitones: float = 2.0, high_quality: bool = True
    ) -> None:
        if min_semitones > max_semitones:
            raise ValueError(
                f"PitchShift: min_semitones={min_semitones} > max_semitones={max_semitones}; "
                "swap them"
            )
        self.min_semitones, self.max_semitones = float(min_semitones), float(max_semitones)
        self.high_quality = bool(high_quality)

    def __call__(
        self, samples: torch.Tensor, sample_rate: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Pitch-shifted copy of the 1-D ``samples`` (same length)."""
        n = uniform(generator, self.min_semitones, self.max_semitones)
        return _time_stretch(samples, sample_rate, 1.0, n, self.high_quality)


class TimeStretch:
    """Change the tempo by ``rate ~ U[min_rate, max_rate]`` keeping the pitch: length / rate.

    Args:
        min_rate: slowest rate (> 0; < 1 lengthens).
        max_rate: fastest rate.
        high_quality: Rubber Band's high-quality mode (within 3 cents of the asked
            pitch; the fast mode is within about 20 cents and 2 to 4x faster).

    Shape:
        samples: (T,) -> (about T / rate,)

    Raises:
        ValueError: ``min_rate > max_rate`` or a rate <= 0.
    """

    def __init__(
        self, min_rate: float = 0.9, max_rate: float = 1.1, high_quality: bool = True
    ) -> None:
        if not 0 < min_rate <= max_rate:
            raise ValueError(
                f"TimeStretch: expected 0 < min_rate <= max_rate, got {min_rate}, {max_rate}"
            )
        self.min_rate, self.max_rate = float(min_rate), float(max_rate)
        self.high_quality = bool(high_quality)

    def __call__(
        self, samples: torch.Tensor, sample_rate: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Stretched copy of the 1-D ``samples``."""
        rate = uniform(generator, self.min_rate, self.max_rate)
        return _time_stretch(samples, sample_rate, rate, 0.0, self.high_quality)
