"""Gaussian noise on padded feature batches, at an SNR relative to each utterance's features.

Example:
    >>> import torch
    >>> aug = SpecNoise(min_snr_db=20.0, max_snr_db=20.0)
    >>> x = torch.randn(2, 4, 6)
    >>> y = aug(x, torch.tensor([6, 3]), torch.Generator().manual_seed(0))
    >>> y.shape, bool((y[1, :, 3:] == x[1, :, 3:]).all())  # padded frames untouched
    (torch.Size([2, 4, 6]), True)
"""

from __future__ import annotations

import torch
from torch import nn

from vocalis.augment.draw import chance, uniform


class SpecNoise(nn.Module):
    """Add white noise to each utterance's valid frames at ``snr ~ U[min_snr_db, max_snr_db]``.

    The noise power is the variance of the utterance's features (over its valid
    frames and all bins) divided by ``10 ** (snr / 10)``: on normalised features
    the noise has a standard deviation of about ``10 ** (-snr / 20)``.

    Args:
        min_snr_db: lowest SNR in dB.
        max_snr_db: highest SNR in dB.
        p: probability per utterance.

    Shape:
        features: (B, F, T), lengths: (B,) frames -> (B, F, T)

    Raises:
        ValueError: ``min_snr_db > max_snr_db`` or ``p`` outside [0, 1].
    """

    def __init__(self, min_snr_db: float = 10.0, max_snr_db: float = 30.0, p: float = 1.0) -> None:
        super().__init__()
        if min_snr_db > max_snr_db:
            raise ValueError(
                f"SpecNoise: min_snr_db={min_snr_db} > max_snr_db={max_snr_db}; swap them"
            )
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"SpecNoise: p={p}; expected a probability in [0, 1]")
        self.min_snr_db, self.max_snr_db, self.p = float(min_snr_db), float(max_snr_db), float(p)

    def forward(
        self, features: torch.Tensor, lengths: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Noisy copy of ``features`` (the input is not changed)."""
        if features.dim() != 3:
            raise ValueError(f"SpecNoise expects (B, F, T), got {tuple(features.shape)}")
        out = features.clone()
        f = features.shape[1]
        for i, n in enumerate(lengths.to("cpu").tolist()):
            if n < 1 or not chance(generator, self.p):
                continue
            snr_db = uniform(generator, self.min_snr_db, self.max_snr_db)
            noise = torch.randn((f, int(n)), generator=generator, dtype=torch.float32)
            valid = features[i, :, :n].float()
            power = valid.var(unbiased=False)
            scale = torch.sqrt(power / 10 ** (snr_db / 10))
            out[i, :, :n] = (valid + scale * noise.to(valid.device)).to(features.dtype)
        return out

    def extra_repr(self) -> str:
        """The SNR range and probability, shown by ``repr``."""
        return f"min_snr_db={self.min_snr_db}, max_snr_db={self.max_snr_db}, p={self.p}"
