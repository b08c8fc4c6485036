"""The tier-0 pipeline config. PROVISIONAL: the audio helper owns and extends this."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from vocalis.audio.io import load_audio


@dataclass(frozen=True)
class Tier0Config:
    """What happens to a recording before features are computed."""

    sample_rate: int = 16000
    normalize: str = "peak"
    denoise: str = "none"
    vad: bool = False


def run_tier0(path: str | os.PathLike, config: Tier0Config = Tier0Config()) -> torch.Tensor:
    """Load ``path`` and apply the tier-0 steps. Returns (T,)."""
    return load_audio(path, config.sample_rate)
