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
from typing import Literal

from vocalis.errors import ConfigError

#: Built-in denoisers (``vocalis.audio.denoise.DENOISERS``), known without importing
#: torch; ``tests/test_cli_startup.py`` checks it against the registry.
BUILTIN_DENOISERS = ("demucs", "none", "spectral")


def _check_denoiser(name: str) -> None:
    if name in BUILTIN_DENOISERS:
        return
    from vocalis.audio.denoise import DENOISERS

    DENOISERS.get(name)  # user-registered: fine; unknown: ConfigError with a suggestion


@dataclass(frozen=True)
class VADConfig:
    """Silero VAD settings (used by :mod:`vocalis.audio.vad`, which re-exports it).

    Args:
        threshold: speech probability above which a 32 ms frame is speech, in (0, 1).
        neg_threshold: probability below which speech ends; default ``threshold - 0.15``.
        min_speech_ms: speech segments shorter than this are dropped.
        min_silence_ms: silence shorter than this does not end a segment.
        speech_pad_ms: padding added on each side of a segment.
        max_speech_s: split segments longer than this; None for no limit.

    Raises:
        ConfigError: a value out of range, naming the field.
    """

    threshold: float = 0.5
    neg_threshold: float | None = None
    min_speech_ms: int = 250
    min_silence_ms: int = 100
    speech_pad_ms: int = 30
    max_speech_s: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ConfigError(f"vad threshold={self.threshold}, expected a value in (0, 1)")
        if self.neg_threshold is not None and not 0.0 < self.neg_threshold <= self.threshold:
            raise ConfigError(
                f"vad neg_threshold={self.neg_threshold}, expected a value in "
                f"(0, threshold={self.threshold}]"
            )
        for name in ("min_speech_ms", "min_silence_ms", "speech_pad_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 60_000:
                raise ConfigError(f"vad {name}={value!r}, expected an integer in [0, 60000] ms")
        if self.max_speech_s is not None and not self.max_speech_s > 0:
            raise ConfigError(f"vad max_speech_s={self.max_speech_s}, expected > 0 or None")


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
        clip_seconds: give every recording exactly this length (after VAD, before the
            level normalisation): a longer one is cropped (``clip_crop``), a shorter
            one padded (``clip_pad``). It is part of the pipeline, so training,
            ``eval``, ``predict``, ``embed`` and feature extraction all use the same
            clip. ``null``: keep each recording's length.
        clip_crop: which part a crop keeps: ``start`` (the first ``clip_seconds``) or
            ``center`` (the middle).
        clip_pad: how a short recording is lengthened: ``zeros`` (silence at the end)
            or ``repeat`` (the recording repeated until it is long enough).
        channel: keep only this channel (0-based) of a multi-channel file instead of
            averaging the channels to mono; a file with fewer channels is refused.
        keep_channels: keep every channel as a separate input. No Vocalis feature
            extractor or model takes several channels, so ``true`` is refused in one
            line (mix to mono, the default, or pick one with ``channel``).

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
    clip_seconds: float | None = None
    clip_crop: Literal["start", "center"] = "start"
    clip_pad: Literal["zeros", "repeat"] = "zeros"
    channel: int | None = None
    keep_channels: bool = False

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
        self.vad_config()  # validates the vad_* fields, with VADConfig's messages
        if self.clip_seconds is not None and not self.clip_seconds > 0:
            raise ConfigError(
                f"tier0 clip_seconds={self.clip_seconds}, expected a positive duration or null"
            )
        if self.clip_crop not in ("start", "center"):
            raise ConfigError(f"tier0 clip_crop={self.clip_crop!r}, expected start or center")
        if self.clip_pad not in ("zeros", "repeat"):
            raise ConfigError(f"tier0 clip_pad={self.clip_pad!r}, expected zeros or repeat")
        if self.channel is not None and (
            isinstance(self.channel, bool) or not isinstance(self.channel, int) or self.channel < 0
        ):
            raise ConfigError(f"tier0 channel={self.channel!r}, expected a channel number >= 0")
        if self.keep_channels:
            raise ConfigError(
                "tier0 keep_channels=true: no Vocalis feature extractor or model takes several "
                "channels; mix them to mono (the default) or keep one with tier0.channel=N"
            )

    @property
    def clip_samples(self) -> int | None:
        """``clip_seconds`` in samples at ``sample_rate`` (``None`` without a clip)."""
        if self.clip_seconds is None:
            return None
        return max(1, round(self.clip_seconds * self.sample_rate))

    def vad_config(self) -> VADConfig:
        """The :class:`VADConfig` built from the ``vad_*`` fields."""
        return VADConfig(
            threshold=self.vad_threshold,
            min_speech_ms=self.vad_min_speech_ms,
            min_silence_ms=self.vad_min_silence_ms,
            speech_pad_ms=self.vad_pad_ms,
        )
