"""Tier 0: decode, mono, resample, denoise, voice activity detection, normalise.

Each step is a plain function usable alone (``decode``, ``resample``,
``denoise``, ``apply_vad``, ``normalize``); :func:`run_tier0` chains them as a
:class:`Tier0Config` says. Heavy packages (soundfile, soxr, noisereduce,
silero_vad) are imported when first used.
"""

from vocalis.audio.denoise import DENOISERS, denoise
from vocalis.audio.io import (
    decode,
    decode_bytes,
    load_audio,
    load_audio_bytes,
    resample,
    to_mono,
)
from vocalis.audio.level import normalize, rms_db
from vocalis.audio.tier0 import Tier0Config, iter_tier0, run_tier0, tier0_waveform
from vocalis.audio.vad import NoSpeechWarning, VADConfig, apply_vad, speech_segments

__all__ = [
    "DENOISERS",
    "NoSpeechWarning",
    "Tier0Config",
    "VADConfig",
    "apply_vad",
    "decode",
    "decode_bytes",
    "denoise",
    "iter_tier0",
    "load_audio",
    "load_audio_bytes",
    "normalize",
    "resample",
    "rms_db",
    "run_tier0",
    "speech_segments",
    "tier0_waveform",
    "to_mono",
]
