"""The typed augmentation config: one section per transform, each with a probability ``p``.

The ``augment`` section of an experiment (the ``configs/augment/`` group:
``augment=waveform_default``, ``augment.speed.p=0.3``) is parsed once into an
:class:`AugmentConfig`. Every transform has its own frozen dataclass whose
parameter names carry their units (``min_snr_db``, ``max_semitones``,
``max_shift_s``); ``p`` is the probability that the transform is applied to an
utterance (to a batch for the two mixups), and ``p: 0`` switches it off. An
unknown transform or parameter is one line with the nearest valid key
(:func:`vocalis.config.from_dict`).

Waveform transforms run in the training data loader on each utterance, in this
order: ``shift -> speed -> pitch -> stretch -> gain -> noise``, then
``file_mixup`` across the batch; feature transforms run on the padded batch in
the training step: ``spec_noise -> spec_mask -> mixup`` (masks stay clean). Validation and test
data are never augmented.

Example:
    >>> from vocalis.config import from_dict
    >>> cfg = from_dict(AugmentConfig, {"speed": {"p": 0.3}, "noise": {"p": 1, "min_snr_db": 10}})
    >>> cfg.speed.p, cfg.noise.min_snr_db, cfg.waveform_active, cfg.active()
    (0.3, 10.0, True, ['speed', 'noise'])
    >>> from_dict(AugmentConfig, {"sped": {"p": 0.3}}, where="augment")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    vocalis.errors.UnknownKeyError: unknown key 'augment.sped' (did you mean 'speed'?); ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from vocalis.errors import ConfigValueError


def _check_p(p: float) -> None:
    if not (math.isfinite(p) and 0.0 <= p <= 1.0):
        raise ConfigValueError("p", p, "a probability in [0, 1] (0 switches the transform off)")


def _check_range(low_key: str, low: float, high_key: str, high: float) -> None:
    for key, value in ((low_key, low), (high_key, high)):
        if not math.isfinite(value):
            raise ConfigValueError(key, value, "a finite number")
    if low > high:
        raise ConfigValueError(low_key, low, f"<= {high_key} ({high}); swap them")


def _check_rate(low_key: str, low: float, high_key: str, high: float) -> None:
    _check_range(low_key, low, high_key, high)
    if low < 0.25:
        raise ConfigValueError(low_key, low, "a rate >= 0.25 (1.0 keeps the original)")
    if high > 4.0:
        raise ConfigValueError(high_key, high, "a rate <= 4.0 (1.0 keeps the original)")


@dataclass(frozen=True)
class ShiftConfig:
    """Time shift: move the signal by ``s`` seconds, ``s ~ U[min_shift_s, max_shift_s]``.

    A positive shift delays the signal (silence in front), a negative one advances
    it; the length is kept. Without ``rollover`` a shift is capped at half the clip,
    so a short clip is never shifted out entirely.

    Args:
        p: probability per utterance.
        min_shift_s: smallest shift in seconds (negative: earlier).
        max_shift_s: largest shift in seconds.
        rollover: wrap the samples shifted out around to the other end instead of
            filling with zeros.
    """

    p: float = 0.0
    min_shift_s: float = -0.2
    max_shift_s: float = 0.2
    rollover: bool = False

    def __post_init__(self) -> None:
        _check_p(self.p)
        _check_range("min_shift_s", self.min_shift_s, "max_shift_s", self.max_shift_s)


@dataclass(frozen=True)
class SpeedConfig:
    """Speed change (tempo and pitch together, as played faster): length / rate.

    Resampled with soxr; ``rate ~ U[min_rate, max_rate]`` (1.1: 10 % faster,
    a 10 % shorter signal and a pitch 10 % higher), or with ``rates`` one of a fixed
    set, each equally likely (Kaldi's speed perturbation: ``rates: [0.9, 1.1]``).

    Args:
        p: probability per utterance.
        min_rate: slowest rate (< 1 lengthens).
        max_rate: fastest rate (> 1 shortens).
        rates: fixed rates to choose from; when given, they replace the range
            (``min_rate`` and ``max_rate`` are then not used).
    """

    p: float = 0.0
    min_rate: float = 0.9
    max_rate: float = 1.1
    rates: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        _check_p(self.p)
        _check_rate("min_rate", self.min_rate, "max_rate", self.max_rate)
        for rate in self.rates:
            _check_rate("rates", rate, "rates", rate)

    @property
    def ignored_fields(self) -> tuple[str, ...]:
        """Parameters that do nothing as set (the range when ``rates`` replaces it)."""
        return ("min_rate", "max_rate") if self.rates else ("rates",)


@dataclass(frozen=True)
class PitchConfig:
    """Pitch shift by ``n ~ U[min_semitones, max_semitones]`` semitones, length kept.

    soxr resampling then a Rubber Band time stretch back to the length (pedalboard);
    a frequency ``f`` moves to ``f * 2 ** (n / 12)``, the formants with it.

    Args:
        p: probability per utterance.
        min_semitones: lowest shift in semitones (negative: lower).
        max_semitones: highest shift in semitones.
        high_quality: Rubber Band's high-quality mode for the stretch (3 to 4x slower;
            the fast mode already keeps the pitch within 0.2 %).
    """

    p: float = 0.0
    min_semitones: float = -2.0
    max_semitones: float = 2.0
    high_quality: bool = False

    def __post_init__(self) -> None:
        _check_p(self.p)
        _check_range("min_semitones", self.min_semitones, "max_semitones", self.max_semitones)
        if max(abs(self.min_semitones), abs(self.max_semitones)) > 24:
            raise ConfigValueError("max_semitones", self.max_semitones, "a shift within 24")


@dataclass(frozen=True)
class StretchConfig:
    """Time stretch that keeps the pitch: length / rate, ``rate ~ U[min_rate, max_rate]``.

    Rubber Band through pedalboard.

    Args:
        p: probability per utterance.
        min_rate: slowest rate (< 1 lengthens).
        max_rate: fastest rate (> 1 shortens).
        high_quality: Rubber Band's high-quality mode for the stretch (3 to 4x slower;
            the fast mode already keeps the pitch within 0.2 %).
    """

    p: float = 0.0
    min_rate: float = 0.9
    max_rate: float = 1.1
    high_quality: bool = False

    def __post_init__(self) -> None:
        _check_p(self.p)
        _check_rate("min_rate", self.min_rate, "max_rate", self.max_rate)


@dataclass(frozen=True)
class GainConfig:
    """Gain of ``g ~ U[min_gain_db, max_gain_db]`` dB (amplitude x ``10 ** (g / 20)``).

    Args:
        p: probability per utterance.
        min_gain_db: lowest gain in dB.
        max_gain_db: highest gain in dB.
    """

    p: float = 0.0
    min_gain_db: float = -6.0
    max_gain_db: float = 6.0

    def __post_init__(self) -> None:
        _check_p(self.p)
        _check_range("min_gain_db", self.min_gain_db, "max_gain_db", self.max_gain_db)


@dataclass(frozen=True)
class NoiseConfig:
    """Gaussian white noise at an SNR ``~ U[min_snr_db, max_snr_db]`` dB over the utterance.

    Args:
        p: probability per utterance.
        min_snr_db: lowest signal-to-noise ratio in dB (noisiest).
        max_snr_db: highest signal-to-noise ratio in dB.
    """

    p: float = 0.0
    min_snr_db: float = 10.0
    max_snr_db: float = 30.0

    def __post_init__(self) -> None:
        _check_p(self.p)
        _check_range("min_snr_db", self.min_snr_db, "max_snr_db", self.max_snr_db)


@dataclass(frozen=True)
class MixupConfig:
    """Mixup: ``lam * a + (1 - lam) * b`` with ``lam ~ Beta(alpha, alpha)`` (kept >= 0.5).

    One ``lam`` and one partner permutation per batch; the loss mixes the two
    targets with the same weights (``lam * loss(a) + (1 - lam) * loss(b)``).
    ``mixup`` mixes features, ``file_mixup`` mixes the waveforms before the
    features are computed.

    Args:
        p: probability per batch.
        alpha: Beta concentration, > 0 (0.2 to 0.4 usual).
    """

    p: float = 0.0
    alpha: float = 0.4

    def __post_init__(self) -> None:
        _check_p(self.p)
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ConfigValueError("alpha", self.alpha, "a Beta concentration > 0")


@dataclass(frozen=True)
class SpecMaskConfig:
    """SpecAugment time and frequency masks on the (normalised) features.

    Args:
        p: probability per utterance.
        time_masks: time masks per utterance.
        time_mask_frames: widest time mask, in frames.
        freq_masks: frequency masks per utterance.
        freq_mask_bins: widest frequency mask, in feature bins.
    """

    p: float = 0.0
    time_masks: int = 2
    time_mask_frames: int = 20
    freq_masks: int = 2
    freq_mask_bins: int = 8

    def __post_init__(self) -> None:
        _check_p(self.p)
        for key in ("time_masks", "time_mask_frames", "freq_masks", "freq_mask_bins"):
            if getattr(self, key) < 0:
                raise ConfigValueError(key, getattr(self, key), "an integer >= 0")


@dataclass(frozen=True)
class SpecNoiseConfig:
    """Gaussian noise on the features at an SNR ``~ U[min_snr_db, max_snr_db]`` dB.

    The SNR is relative to the variance of the utterance's features over its valid
    frames (normalised features: noise std ``10 ** (-snr / 20)``).

    Args:
        p: probability per utterance.
        min_snr_db: lowest SNR in dB (noisiest).
        max_snr_db: highest SNR in dB.
    """

    p: float = 0.0
    min_snr_db: float = 10.0
    max_snr_db: float = 30.0

    def __post_init__(self) -> None:
        _check_p(self.p)
        _check_range("min_snr_db", self.min_snr_db, "max_snr_db", self.max_snr_db)


#: Per-utterance waveform transforms, in the order they are applied.
WAVEFORM_ORDER = ("shift", "speed", "pitch", "stretch", "gain", "noise")

#: Feature (batch) transforms, in the order the training step applies them.
FEATURE_ORDER = ("spec_noise", "spec_mask", "mixup")


@dataclass(frozen=True)
class AugmentConfig:
    """Training-time augmentation (the ``augment`` section); everything off by default.

    Args:
        shift: time shift (:class:`ShiftConfig`).
        speed: speed change, length / rate (:class:`SpeedConfig`).
        pitch: pitch shift in semitones (:class:`PitchConfig`).
        stretch: time stretch keeping the pitch (:class:`StretchConfig`).
        gain: gain in dB (:class:`GainConfig`).
        noise: white noise at an SNR in dB (:class:`NoiseConfig`).
        file_mixup: mixup of two waveforms of a batch (:class:`MixupConfig`).
        spec_mask: SpecAugment masks (:class:`SpecMaskConfig`).
        spec_noise: noise on the features (:class:`SpecNoiseConfig`).
        mixup: mixup of features (:class:`MixupConfig`).

    Raises:
        ConfigValueError: ``mixup`` and ``file_mixup`` both on (pick one).
    """

    shift: ShiftConfig = field(default_factory=ShiftConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    pitch: PitchConfig = field(default_factory=PitchConfig)
    stretch: StretchConfig = field(default_factory=StretchConfig)
    gain: GainConfig = field(default_factory=GainConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    file_mixup: MixupConfig = field(default_factory=MixupConfig)
    spec_mask: SpecMaskConfig = field(default_factory=SpecMaskConfig)
    spec_noise: SpecNoiseConfig = field(default_factory=SpecNoiseConfig)
    mixup: MixupConfig = field(default_factory=MixupConfig)

    def __post_init__(self) -> None:
        if self.mixup.p > 0 and self.file_mixup.p > 0:
            raise ConfigValueError(
                "file_mixup.p",
                self.file_mixup.p,
                "0 while mixup.p > 0: mix waveforms or features, not both",
            )

    def active(self) -> list[str]:
        """Names of the transforms with ``p > 0``, in the order they are applied."""
        order = (*WAVEFORM_ORDER, "file_mixup", *FEATURE_ORDER)
        return [name for name in order if getattr(self, name).p > 0]

    @property
    def waveform_active(self) -> bool:
        """True when a waveform transform (or ``file_mixup``) is on: features on the fly."""
        return any(getattr(self, name).p > 0 for name in (*WAVEFORM_ORDER, "file_mixup"))

    def describe(self) -> str:
        """One line for the run log: the active transforms and their parameters.

        Example:
            >>> AugmentConfig(gain=GainConfig(p=0.5)).describe()
            'gain(p=0.5, min_gain_db=-6.0, max_gain_db=6.0)'
            >>> AugmentConfig(speed=SpeedConfig(p=1.0, rates=(0.9, 1.1))).describe()
            'speed(p=1.0, rates=(0.9, 1.1))'
            >>> AugmentConfig().describe()
            'none'
        """
        parts = []
        for name in self.active():
            sub = getattr(self, name)
            ignored = getattr(sub, "ignored_fields", ())
            args = ", ".join(
                f"{f.name}={getattr(sub, f.name)}" for f in fields(sub) if f.name not in ignored
            )
            parts.append(f"{name}({args})")
        return " -> ".join(parts) or "none"


__all__ = [
    "FEATURE_ORDER",
    "WAVEFORM_ORDER",
    "AugmentConfig",
    "GainConfig",
    "MixupConfig",
    "NoiseConfig",
    "PitchConfig",
    "ShiftConfig",
    "SpecMaskConfig",
    "SpecNoiseConfig",
    "SpeedConfig",
    "StretchConfig",
]
