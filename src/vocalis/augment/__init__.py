"""Data augmentation: one transform per module, every one seeded explicitly.

Feature-domain transforms act on padded batches ``(B, F, T)`` with integer frame
``lengths`` and never touch padded frames:

* :class:`SpecAugment` (time and frequency masks),
* :class:`Mixup` (convex combinations of utterances and their targets).

Waveform transforms follow one call contract ``(samples, sample_rate, generator)``:

* :class:`AddNoise` (white noise at a random SNR in dB),
* :class:`Gain` (random gain in dB).

Randomness comes only from the ``torch.Generator`` passed in (or one built from
the ``seed`` given at construction), never from global state.
"""

from vocalis.augment.gain import Gain
from vocalis.augment.mixup import Mixup
from vocalis.augment.noise import AddNoise
from vocalis.augment.specaugment import SpecAugment

__all__ = ["AddNoise", "Gain", "Mixup", "SpecAugment"]
