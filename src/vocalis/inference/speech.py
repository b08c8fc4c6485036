"""Speech presence: how much of a recording Silero VAD marks as speech.

A model trained on speech answers with one of its classes for any input, even
digital silence or noise. Prediction therefore measures the share of the audio
that :mod:`vocalis.audio.vad` marks as speech and, below ``min_speech``, answers
:data:`NO_SPEECH` instead of a class (``vocalis predict --min-speech 0.05``;
``--no-speech-check`` turns the check off).

Example:
    >>> import torch
    >>> speech_share(torch.zeros(48000), 16000)
    0.0
    >>> check_min_speech(1.5)
    Traceback (most recent call last):
    ...
    vocalis.errors.ConfigError: --min-speech 1.5: expected a share of the audio in [0, 1]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vocalis.errors import ConfigError

if TYPE_CHECKING:  # torch and numpy load on first use: the CLI imports the constants
    import numpy as np
    import torch

__all__ = ["MIN_SPEECH", "NO_SPEECH", "check_min_speech", "speech_mask", "speech_share"]

#: Default share of a clip (or window) that must be speech before it is classified.
MIN_SPEECH = 0.05

#: The answer given instead of a class when the audio holds too little speech.
NO_SPEECH = "no speech detected"


def check_min_speech(value: float | None) -> float | None:
    """Validate a speech-share threshold (``None``: no check).

    Raises:
        ConfigError: a value outside [0, 1].
    """
    if value is not None and not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"--min-speech {value}: expected a share of the audio in [0, 1]")
    return None if value is None else float(value)


def speech_mask(wav: torch.Tensor, sample_rate: int, tier0: Any = None) -> np.ndarray:
    """Boolean mask of the samples Silero VAD marks as speech.

    Args:
        wav: mono signal.
        sample_rate: its rate in Hz.
        tier0: a :class:`~vocalis.audio.Tier0Config` whose ``vad_*`` settings are used
            (default: :class:`~vocalis.audio.vad.VADConfig`'s defaults).

    Shape:
        wav: (T,) -> (T,) bool.
    """
    import numpy as np

    from vocalis.audio.vad import VADConfig, speech_segments

    cfg = tier0.vad_config() if hasattr(tier0, "vad_config") else VADConfig()
    mask = np.zeros(wav.shape[0], dtype=bool)
    for start, end in speech_segments(wav, sample_rate, cfg):
        mask[int(start) : int(end)] = True
    return mask


def speech_share(wav: torch.Tensor, sample_rate: int, tier0: Any = None) -> float:
    """Share in [0, 1] of ``wav`` that Silero VAD marks as speech (0 for an empty signal).

    Shape:
        wav: (T,).
    """
    if wav.shape[0] == 0:
        return 0.0
    return float(speech_mask(wav, sample_rate, tier0).mean())
