"""Tier 0: decode, mono, resample, denoise, voice activity detection, normalise.

Each step is a plain function usable alone (``decode``, ``resample``,
``denoise``, ``apply_vad``, ``normalize``); :func:`run_tier0` chains them as a
:class:`Tier0Config` says. Heavy packages (soundfile, soxr, noisereduce,
silero_vad) are imported when first used.

Importing the package (or :mod:`vocalis.audio.config`) does not import torch:
every name below is loaded from its module on first use, so
``from vocalis.audio import Tier0Config`` stays light while
``from vocalis.audio import run_tier0`` loads the processing code.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

from vocalis.lazy import lazy_exports

_LAZY = {
    "Tier0Config": "vocalis.audio.config",
    "DENOISERS": "vocalis.audio.denoise",
    "denoise": "vocalis.audio.denoise",
    "decode": "vocalis.audio.io",
    "decode_bytes": "vocalis.audio.io",
    "load_audio": "vocalis.audio.io",
    "load_audio_bytes": "vocalis.audio.io",
    "resample": "vocalis.audio.io",
    "to_mono": "vocalis.audio.io",
    "normalize": "vocalis.audio.level",
    "rms_db": "vocalis.audio.level",
    "iter_tier0": "vocalis.audio.tier0",
    "run_tier0": "vocalis.audio.tier0",
    "tier0_waveform": "vocalis.audio.tier0",
    "NoSpeechWarning": "vocalis.audio.vad",
    "VADConfig": "vocalis.audio.config",
    "apply_vad": "vocalis.audio.vad",
    "speech_segments": "vocalis.audio.vad",
}


class _Package(types.ModuleType):
    """The package module whose ``denoise`` attribute stays the function.

    ``vocalis.audio.denoise`` names both a submodule and its function: the package
    attribute stays the function (as when this package imported it eagerly), even
    after the import system binds the submodule there on its first import.
    """

    @property
    def denoise(self) -> Any:
        return importlib.import_module("vocalis.audio.denoise").denoise

    @denoise.setter
    def denoise(self, value: Any) -> None:
        pass  # the submodule being bound by the import system: keep the function


sys.modules[__name__].__class__ = _Package


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

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
