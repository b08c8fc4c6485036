"""SpecAugment (Park et al. 2019): mask random bands of time frames and features.

Example:
    >>> import torch
    >>> aug = SpecAugment(time_masks=1, time_mask_frames=3, freq_masks=1, freq_mask_bins=2, seed=0)
    >>> x = torch.ones(2, 4, 6)
    >>> y = aug(x, torch.tensor([6, 4]))
    >>> y.shape, bool((y[1, :, 4:] == 1).all())  # padded frames untouched
    (torch.Size([2, 4, 6]), True)
"""

from __future__ import annotations

import torch
from torch import nn

from vocalis.augment.draw import chance


def _check_count(name: str, value: int) -> int:
    if int(value) != value or value < 0:
        raise ValueError(f"SpecAugment: {name}={value}; expected an integer >= 0")
    return int(value)


class SpecAugment(nn.Module):
    """Time and frequency masking of padded feature batches.

    Each utterance gets ``time_masks`` masks of ``0..time_mask_frames`` frames placed
    inside its valid frames (never in the padding), and ``freq_masks`` masks of
    ``0..freq_mask_bins`` feature bins. Masked values are set to ``fill`` (0: the
    mean of normalised features). Widths are capped at the utterance length.

    Args:
        time_masks: masks along time per utterance.
        time_mask_frames: maximum width of a time mask, in frames.
        freq_masks: masks along the feature axis per utterance.
        freq_mask_bins: maximum width of a frequency mask, in bins.
        fill: value written into masked cells.
        seed: seed of the generator used when ``forward`` gets none.
        p: probability that an utterance is masked (1: every one, no extra draw).

    Shape:
        features: (B, F, T), lengths: (B,) -> (B, F, T)

    Raises:
        ValueError: a negative or non-integer count or width.
    """

    def __init__(
        self,
        time_masks: int = 2,
        time_mask_frames: int = 20,
        freq_masks: int = 2,
        freq_mask_bins: int = 8,
        fill: float = 0.0,
        seed: int = 0,
        p: float = 1.0,
    ) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"SpecAugment: p={p}; expected a probability in [0, 1]")
        self.p = float(p)
        self.time_masks = _check_count("time_masks", time_masks)
        self.time_mask_frames = _check_count("time_mask_frames", time_mask_frames)
        self.freq_masks = _check_count("freq_masks", freq_masks)
        self.freq_mask_bins = _check_count("freq_mask_bins", freq_mask_bins)
        self.fill = float(fill)
        self.generator = torch.Generator().manual_seed(int(seed))

    def masks(
        self, shape: tuple[int, int, int], lengths: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Boolean mask (B, F, T), True where a value is replaced."""
        b, f, t = shape
        lengths = lengths.to("cpu").long()
        out = torch.zeros(b, f, t, dtype=torch.bool)
        frames = torch.arange(t)
        bins = torch.arange(f)
        for i in range(b):
            if not chance(generator, self.p):
                continue
            n = int(lengths[i])
            for _ in range(self.time_masks):
                width = int(
                    torch.randint(0, min(self.time_mask_frames, n) + 1, (1,), generator=generator)
                )
                start = int(torch.randint(0, n - width + 1, (1,), generator=generator))
                out[i, :, (frames >= start) & (frames < start + width)] = True
            for _ in range(self.freq_masks):
                width = int(
                    torch.randint(0, min(self.freq_mask_bins, f) + 1, (1,), generator=generator)
                )
                start = int(torch.randint(0, f - width + 1, (1,), generator=generator))
                out[i, (bins >= start) & (bins < start + width), :n] = True
        out[:, :, :] &= frames[None, None, :] < lengths[:, None, None]
        return out

    def forward(
        self,
        features: torch.Tensor,
        lengths: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Masked copy of ``features`` (the input is not changed)."""
        if features.dim() != 3:
            raise ValueError(f"SpecAugment expects (B, F, T), got {tuple(features.shape)}")
        mask = self.masks(tuple(features.shape), lengths, generator or self.generator)
        return features.masked_fill(mask.to(features.device), self.fill)

    def extra_repr(self) -> str:
        """The masking parameters, shown by ``repr``."""
        return (
            f"time_masks={self.time_masks}, time_mask_frames={self.time_mask_frames}, "
            f"freq_masks={self.freq_masks}, freq_mask_bins={self.freq_mask_bins}, p={self.p}"
        )
