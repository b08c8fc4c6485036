"""Data augmentation: one transform per module, every one seeded explicitly.

The typed config is :class:`~vocalis.augment.config.AugmentConfig` (the
``augment`` section of an experiment, ``configs/augment/``); every transform has a
probability ``p`` and parameters whose names carry their units.

Waveform transforms follow one call contract ``(samples, sample_rate, generator)``
and run on each training utterance in the data loader
(:class:`~vocalis.augment.chain.WaveformAugment`):

* :class:`TimeShift` (seconds), :class:`SpeedChange` (rate, soxr),
  :class:`PitchShift` (semitones) and :class:`TimeStretch` (rate, pitch kept)
  through Rubber Band (pedalboard, the ``augment`` extra), :class:`Gain` (dB),
  :class:`AddNoise` (white noise at an SNR in dB);
* :class:`FileMixup` mixes two waveforms of a batch.

Feature-domain transforms act on padded batches ``(B, F, T)`` with integer frame
``lengths`` and never touch padded frames:

* :class:`SpecAugment` (time and frequency masks), :class:`SpecNoise` (noise at
  an SNR relative to the features' variance),
* :class:`Mixup` (convex combinations of utterances and their targets).

Randomness comes only from the ``torch.Generator`` passed in (or one built from
the ``seed`` given at construction), never from global state.
"""

from vocalis.augment.chain import WaveformAugment
from vocalis.augment.config import AugmentConfig
from vocalis.augment.file_mixup import FileMixup
from vocalis.augment.gain import Gain
from vocalis.augment.mixup import Mixup
from vocalis.augment.noise import AddNoise
from vocalis.augment.rubberband import PitchShift, TimeStretch
from vocalis.augment.shift import TimeShift
from vocalis.augment.spec_noise import SpecNoise
from vocalis.augment.specaugment import SpecAugment
from vocalis.augment.speed import SpeedChange

__all__ = [
    "AddNoise",
    "AugmentConfig",
    "FileMixup",
    "Gain",
    "Mixup",
    "PitchShift",
    "SpecAugment",
    "SpecNoise",
    "SpeedChange",
    "TimeShift",
    "TimeStretch",
    "WaveformAugment",
]
