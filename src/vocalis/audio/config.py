"""The tier-0 config, importable without torch (or numpy).

:class:`Tier0Config` is part of every pipeline config, checkpoint and feature-cache
key, so code that only needs to *describe* tier 0 (the CLI building a cache key,
a service reading a checkpoint's config) must not pay for importing torch. The
processing itself lives in :mod:`vocalis.audio.tier0`, which re-exports this class.

Validation needs no heavy import either: a built-in denoiser name
(:data:`BUILTIN_DENOISERS`) is accepted as is; any other name is looked up in
:data:`vocalis.audio.denoise.DENOISERS` (imports torch; a user-registered denoiser
is valid, an unknown one raises :class:`~vocalis.errors.ConfigError` with a
suggestion).

Example:
    >>> cfg = Tier0Config(sample_rate=8000, vad=True)
    >>> cfg.sample_rate, cfg.denoise, cfg.vad_pad_ms
    (8000, 'none', 30)
    >>> Tier0Config(vad_threshold=1.5)
    Traceback (most recent call last):
    ...
    vocalis.errors.ConfigError: vad threshold=1.5, expected a value in (0, 1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from vocalis.errors import ConfigError

if TYPE_CHECKING:
    from vocalis.audio.vad import VADConfig

#: Built-in denoisers (``vocalis.audio.denoise.DENOISERS``), known without importing
#: torch; ``tests/test_cli_startup.py`` checks it against the registry.
BUILTIN_DENOISERS = ("demucs", "none", "spectral")


def _check_denoiser(name: str) -> None:
    if name in BUILTIN_DENOISERS:
        return
    from vocalis.audio.denoise import DENOISERS

    DENOISERS.get(name)  # user-registered: fine; unknown: ConfigError with a suggestion


def _check_vad(threshold: float, **ms: int) -> None:
    """The checks :class:`~vocalis.audio.vad.VADConfig` makes on the fields tier 0 sets
    (same messages), without importing :mod:`vocalis.audio.vad` (which imports torch).
    """
    if not 0.0 < threshold < 1.0:
        raise ConfigError(f"vad threshold={threshold}, expected a value in (0, 1)")
    for name, value in ms.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 60_000:
            raise ConfigError(f"vad {name}={value!r}, expected an integer in [0, 60000] ms")


@dataclass(frozen=True)
class Tier0Config:
    """Tier-0 settings.

    Args:
        sample_rate: output rate in Hz (everything is resampled to it).
        normalize: ``"peak"`` (max abs 1), ``"rms"`` (RMS at ``target_rms_db``) or
            ``"none"``; applied last.
        target_rms_db: RMS level in dBFS for ``normalize="rms"``.
        denoise: a name from ``DENOISERS`` (``none``, ``spectral``, ``demucs``).
        vad: keep only the speech found by Silero VAD.
        vad_threshold: speech probability threshold, in (0, 1).
        vad_min_speech_ms: drop speech segments shorter than this.
        vad_min_silence_ms: silences shorter than this do not split speech.
        vad_pad_ms: padding kept around each speech segment.
        min_duration_s: recordings shorter than this (after resampling) raise
            :class:`~vocalis.errors.AudioError`; VAD never cuts a recording below it
            (it keeps the whole signal and warns instead).

    Raises:
        ConfigError: a value out of range or an unknown denoiser, naming the field.
    """

    sample_rate: int = 16000
    normalize: Literal["peak", "rms", "none"] = "peak"
    target_rms_db: float = -20.0
    denoise: str = "none"
    vad: bool = False
    vad_threshold: float = 0.5
    vad_min_speech_ms: int = 250
    vad_min_silence_ms: int = 100
    vad_pad_ms: int = 30
    min_duration_s: float = 0.1

    def __post_init__(self) -> None:
        if isinstance(self.sample_rate, bool) or not isinstance(self.sample_rate, int):
            raise ConfigError(f"tier0 sample_rate={self.sample_rate!r}, expected an integer Hz")
        if not 1000 <= self.sample_rate <= 384_000:
            raise ConfigError(
                f"tier0 sample_rate={self.sample_rate}, expected 1000..384000 Hz (e.g. 16000)"
            )
        if self.normalize not in ("peak", "rms", "none"):
            raise ConfigError(
                f"tier0 normalize={self.normalize!r}, expected one of: peak, rms, none"
            )
        _check_denoiser(self.denoise)
        if not self.min_duration_s >= 0:
            raise ConfigError(f"tier0 min_duration_s={self.min_duration_s}, expected >= 0")
        _check_vad(
            self.vad_threshold,
            min_speech_ms=self.vad_min_speech_ms,
            min_silence_ms=self.vad_min_silence_ms,
            speech_pad_ms=self.vad_pad_ms,
        )

    def vad_config(self) -> VADConfig:
        """The :class:`~vocalis.audio.vad.VADConfig` built from the ``vad_*`` fields."""
        from vocalis.audio.vad import VADConfig

        return VADConfig(
            threshold=self.vad_threshold,
            min_speech_ms=self.vad_min_speech_ms,
            min_silence_ms=self.vad_min_silence_ms,
            speech_pad_ms=self.vad_pad_ms,
        )
