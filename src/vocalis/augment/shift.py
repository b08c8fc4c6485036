"""Time shift: move the signal earlier or later, keeping its length.

Example:
    >>> import torch
    >>> x, g = torch.arange(1.0, 5.0), torch.Generator()
    >>> TimeShift(0.25, 0.25)(x, 4, g).tolist()
    [0.0, 1.0, 2.0, 3.0]
    >>> TimeShift(-0.25, -0.25, rollover=True)(x, 4, g).tolist()
    [2.0, 3.0, 4.0, 1.0]
"""

from __future__ import annotations

import torch

from vocalis.augment.draw import uniform


class TimeShift:
    """Shift by ``s ~ U[min_shift_s, max_shift_s]`` seconds (rounded to whole samples).

    A positive ``s`` delays the signal (zeros in front), a negative one advances it
    (zeros at the end); with ``rollover`` the samples shifted out come back at the
    other end. Without rollover the shift is capped at half the clip (``T // 2``
    samples), so a clip shorter than twice the shift keeps half its samples instead
    of turning into silence that still carries the clip's label.

    Args:
        min_shift_s: smallest shift in seconds.
        max_shift_s: largest shift in seconds.
        rollover: wrap around instead of filling with zeros.

    Shape:
        samples: (T,) or (C, T) -> same shape

    Raises:
        ValueError: ``min_shift_s > max_shift_s``.
    """

    def __init__(
        self, min_shift_s: float = -0.2, max_shift_s: float = 0.2, rollover: bool = False
    ) -> None:
        if min_shift_s > max_shift_s:
            raise ValueError(
                f"TimeShift: min_shift_s={min_shift_s} > max_shift_s={max_shift_s}; swap them"
            )
        self.min_shift_s, self.max_shift_s = float(min_shift_s), float(max_shift_s)
        self.rollover = bool(rollover)

    def __call__(
        self, samples: torch.Tensor, sample_rate: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Shifted copy of ``samples`` (same shape)."""
        shift = round(uniform(generator, self.min_shift_s, self.max_shift_s) * sample_rate)
        if self.rollover:
            return torch.roll(samples, shift, dims=-1)
        t = samples.shape[-1]
        out = torch.zeros_like(samples)
        shift = max(-(t // 2), min(t // 2, shift))
        if shift >= 0:
            out[..., shift:] = samples[..., : t - shift]
        else:
            out[..., :shift] = samples[..., -shift:]
        return out
