"""The identity feature ``waveform``: the samples themselves, one per frame.

For models that take audio (an encoder fine-tuned inside a classifier,
``model=ssl``): the data pipeline, the feature cache, cropping, bucketing and
the exported graph then treat samples as frames, so such a model receives
``(B, 1, T)`` and lengths in samples through the same path as any other model.
``hop_length`` must be 1 (a frame per sample), so ``frame_shift`` stays the truth
(crops in seconds become samples). Use ``features=waveform`` with
``normalization: none``: the encoder normalises its own input.

Example:
    >>> import torch
    >>> from vocalis.features import FeatureConfig, extract
    >>> extract(torch.arange(4.0), FeatureConfig(name="waveform", hop_length=1))
    tensor([[0., 1., 2., 3.]])
"""

from __future__ import annotations

import torch

from vocalis.errors import ConfigError
from vocalis.features.base import FEATURES, FeatureExtractor
from vocalis.features.config import FeatureConfig


@FEATURES.register("waveform")
class Waveform(FeatureExtractor):
    """The waveform as a one-feature sequence.

    Raises:
        ConfigError: ``hop_length`` is not 1.

    Shape:
        (B, T) -> (B, 1, T); frame_lengths(lengths) = lengths.
    """

    feature_dim = 1

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__(config)
        if config.hop_length != 1:
            raise ConfigError(
                f"features 'waveform': got hop_length={config.hop_length}, expected 1 (one "
                "frame per sample); set features.extractor.hop_length=1"
            )

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """One frame per sample.

        Shape:
            (B,) samples -> (B,) int64 frames.
        """
        return torch.as_tensor(lengths).long()

    def compute(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The samples, ``(B, T) -> (B, 1, T)``."""
        return wav[:, None, :]
