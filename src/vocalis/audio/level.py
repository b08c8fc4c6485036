"""Signal level: RMS in dBFS and loudness normalisation (the last tier-0 step)."""

from __future__ import annotations

import math

import torch

from vocalis.errors import ConfigError

NORMALIZE_METHODS = ("peak", "rms", "none")

#: Below this peak amplitude a signal counts as digital silence and is not scaled.
SILENCE_PEAK = 1e-8


def rms_db(wav: torch.Tensor) -> float:
    """Root-mean-square level in dBFS (a full-scale sine is -3.01 dB; silence is -inf).

    Shape:
        wav: (T,) or any shape; all samples count.

    Example:
        >>> import torch
        >>> round(rms_db(torch.full((100,), 0.1)), 2)
        -20.0
    """
    if wav.numel() == 0:
        return float("-inf")
    power = float(wav.double().pow(2).mean())
    return 10.0 * math.log10(power) if power > 0 else float("-inf")


def normalize(
    wav: torch.Tensor, method: str = "peak", *, target_rms_db: float = -20.0
) -> torch.Tensor:
    """Scale ``wav`` to a reference level.

    Args:
        wav: the signal.
        method: ``"peak"``: max abs sample becomes 1; ``"rms"``: RMS becomes
            ``target_rms_db`` dBFS (peaks may then exceed 1, nothing is clipped);
            ``"none"``: returned unchanged. Digital silence (peak below 1e-8) is
            never scaled.
        target_rms_db: the RMS target of ``"rms"``, in dBFS.

    Returns:
        The scaled signal (a new tensor, or ``wav`` itself for ``"none"`` and silence).

    Shape:
        wav: (T,). Returns (T,).

    Raises:
        ConfigError: an unknown method.

    Example:
        >>> import torch
        >>> normalize(torch.tensor([0.0, 0.25, -0.5])).tolist()
        [0.0, 0.5, -1.0]
        >>> round(rms_db(normalize(torch.randn(1000), "rms", target_rms_db=-23.0)), 3)
        -23.0
    """
    if method not in NORMALIZE_METHODS:
        raise ConfigError(
            f"normalize: got {method!r}, expected one of: {', '.join(NORMALIZE_METHODS)}"
        )
    if method == "none" or wav.numel() == 0:
        return wav
    peak = float(wav.abs().max())
    if peak < SILENCE_PEAK:
        return wav
    if method == "peak":
        return wav / peak
    rms = math.sqrt(float(wav.double().pow(2).mean()))
    return wav * (10.0 ** (target_rms_db / 20.0) / rms)
