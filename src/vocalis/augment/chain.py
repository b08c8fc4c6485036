"""The waveform chain of an :class:`~vocalis.augment.config.AugmentConfig`, seeded per utterance.

:class:`WaveformAugment` applies ``shift -> speed -> pitch -> stretch -> gain ->
noise`` to one utterance and mixes the utterances of a batch (``file_mixup``).
Every transform draws from its own generator, derived from the utterance's seed
and the transform's name (:func:`stream_generator`), so the same seed always gives
the same output, and switching one transform on or off leaves the draws of the
others unchanged. The training data loader gives each utterance a seed derived
from ``(run seed, epoch, rank, step, slot in the batch)``
(:class:`~vocalis.training.data.EpochBatchSampler`): an augmented run replays
exactly, with any number of loader workers, and a resumed run sees the same
augmented audio.

Example:
    >>> import torch
    >>> from vocalis.augment.config import AugmentConfig, GainConfig
    >>> gain = GainConfig(p=1.0, min_gain_db=-6, max_gain_db=-6)
    >>> chain = WaveformAugment(AugmentConfig(gain=gain))
    >>> round(float(chain(torch.ones(8), 16000, seed=1)[0]), 3)
    0.501
    >>> torch.equal(chain(torch.randn(8, generator=torch.Generator().manual_seed(0)), 16000, 5),
    ...             chain(torch.randn(8, generator=torch.Generator().manual_seed(0)), 16000, 5))
    True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from vocalis.augment.config import WAVEFORM_ORDER, AugmentConfig
from vocalis.augment.draw import chance

#: Stream id of each transform's generator (fixed: a new transform takes a new id).
STREAMS = {"shift": 1, "speed": 2, "pitch": 3, "stretch": 4, "gain": 5, "noise": 6, "file_mixup": 7}


def stream_generator(seed: int, stream: int) -> torch.Generator:
    """A CPU generator for one random stream of one utterance (or batch) seed.

    Example:
        >>> a = stream_generator(3, 1).initial_seed()
        >>> a == stream_generator(3, 1).initial_seed() != stream_generator(3, 2).initial_seed()
        True
    """
    state = np.random.SeedSequence([int(seed), int(stream)]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state >> 1))


def build_transform(name: str, config: AugmentConfig) -> Callable:
    """The waveform transform ``name`` of ``config`` (``shift``, ..., ``noise``), built.

    Its ``p`` is not part of it: the caller decides whether it is applied.

    Example:
        >>> build_transform("gain", AugmentConfig()).max_gain_db
        6.0
    """
    from vocalis.augment.gain import Gain
    from vocalis.augment.noise import AddNoise
    from vocalis.augment.rubberband import PitchShift, TimeStretch
    from vocalis.augment.shift import TimeShift
    from vocalis.augment.speed import SpeedChange

    c = getattr(config, name)
    if name == "shift":
        return TimeShift(c.min_shift_s, c.max_shift_s, c.rollover)
    if name == "speed":
        return SpeedChange(c.min_rate, c.max_rate, c.rates)
    if name == "pitch":
        return PitchShift(c.min_semitones, c.max_semitones, c.high_quality)
    if name == "stretch":
        return TimeStretch(c.min_rate, c.max_rate, c.high_quality)
    if name == "gain":
        return Gain(c.min_gain_db, c.max_gain_db)
    return AddNoise(c.min_snr_db, c.max_snr_db)


class WaveformAugment:
    """Per-utterance waveform augmentation and batch file mixup, as configured.

    Args:
        config: the augmentation config (only its waveform transforms and
            ``file_mixup`` are used here).

    Shape:
        samples: (T,) -> (T',) (``speed`` and ``stretch`` change the length)
    """

    def __init__(self, config: AugmentConfig) -> None:
        from vocalis.augment.file_mixup import FileMixup

        self.config = config
        self.steps = [
            (name, getattr(config, name).p, build_transform(name, config))
            for name in WAVEFORM_ORDER
            if getattr(config, name).p > 0
        ]
        fm = config.file_mixup
        self.file_mixup = FileMixup(fm.alpha) if fm.p > 0 else None

    @property
    def active(self) -> bool:
        """True when at least one waveform transform or file mixup is on."""
        return bool(self.steps) or self.file_mixup is not None

    def __call__(self, samples: torch.Tensor, sample_rate: int, seed: int) -> torch.Tensor:
        """The augmented utterance: each transform applied with its probability ``p``."""
        for name, p, transform in self.steps:
            g = stream_generator(seed, STREAMS[name])
            if chance(g, p):
                samples = transform(samples, sample_rate, g)
        return samples

    def mix(
        self, waveforms: Sequence[torch.Tensor], seed: int
    ) -> tuple[list[torch.Tensor], torch.Tensor, float] | None:
        """File mixup of one batch with probability ``file_mixup.p``, else ``None``.

        Returns:
            ``(mixed waveforms, perm (B,), lam)`` or ``None`` (batch not mixed).
        """
        if self.file_mixup is None or len(waveforms) < 2:
            return None
        g = stream_generator(seed, STREAMS["file_mixup"])
        if not chance(g, self.config.file_mixup.p):
            return None
        return self.file_mixup(waveforms, g)
