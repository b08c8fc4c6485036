"""Additive white noise at a random signal-to-noise ratio.

Example:
    >>> import torch
    >>> x = torch.sin(torch.arange(16000) * 2 * torch.pi * 440 / 16000)
    >>> y = AddNoise(min_snr_db=20.0, max_snr_db=20.0)(x, 16000, torch.Generator().manual_seed(0))
    >>> noise = y - x
    >>> round(float(10 * torch.log10(x.pow(2).mean() / noise.pow(2).mean())), 1)
    20.0
"""

from __future__ import annotations

import numpy as np
import torch


class AddNoise:
    """Add Gaussian white noise with an SNR drawn uniformly in ``[min_snr_db, max_snr_db]``.

    The noise is scaled so that the SNR over the whole signal is exactly the drawn
    value (signal power / noise power, in dB).

    Args:
        min_snr_db: lowest SNR in dB.
        max_snr_db: highest SNR in dB.

    Shape:
        samples: (T,) or (C, T) -> same shape

    Raises:
        ValueError: ``min_snr_db > max_snr_db``.
    """

    def __init__(self, min_snr_db: float = 10.0, max_snr_db: float = 30.0) -> None:
        if min_snr_db > max_snr_db:
            raise ValueError(
                f"AddNoise: min_snr_db={min_snr_db} > max_snr_db={max_snr_db}; swap them"
            )
        self.min_snr_db = float(min_snr_db)
        self.max_snr_db = float(max_snr_db)

    def __call__(
        self, samples: torch.Tensor, sample_rate: int, generator: torch.Generator
    ) -> torch.Tensor:
        """Add noise at a random SNR drawn from ``generator`` (same shape out)."""
        u = float(torch.rand((), generator=generator))
        snr_db = self.min_snr_db + u * (self.max_snr_db - self.min_snr_db)
        noise = torch.randn(samples.shape, generator=generator, dtype=torch.float64).numpy()
        # float64 statistics in numpy: torch's multi-threaded float64 reductions can be
        # 50x slower on a loaded machine
        x = samples.detach().cpu().numpy().astype(np.float64)
        signal_power = float(np.mean(x * x))
        if signal_power <= 0:
            return samples.clone()
        noise -= noise.mean()
        scale = np.sqrt(signal_power / (float(np.mean(noise * noise)) * 10 ** (snr_db / 10)))
        return torch.from_numpy(x + scale * noise).to(samples.dtype)
