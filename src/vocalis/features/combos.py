"""Stacked features: a spectral part followed by the interpolated log F0.

``mfbe_pitch`` = 80 log-mel energies + log F0 (81); ``mfcc_pitch`` = 40 MFCC +
log F0 (41). Both parts share the 10 ms frame grid, so stacking is exact.
"""

from __future__ import annotations

import torch

from vocalis.features.base import FEATURES, FeatureExtractor
from vocalis.features.config import FeatureConfig
from vocalis.features.pitch import PitchOnly
from vocalis.features.spectral import MFCC, Fbank


class _Stacked(FeatureExtractor):
    spectral_cls: type[FeatureExtractor] = Fbank

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__(config)
        self.spectral = self.spectral_cls(config)
        self.pitch = PitchOnly(config)
        self.feature_dim = self.spectral.feature_dim + self.pitch.feature_dim

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """The frames of the spectral part (the pitch part shares its grid).

        Shape:
            (B,) samples -> (B,) int64 frames.
        """
        return self.spectral.frame_lengths(lengths)

    def compute(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return torch.cat([self.spectral.compute(wav, lengths), self.pitch.compute(wav, lengths)], 1)


@FEATURES.register("mfbe_pitch")
class FbankPitch(_Stacked):
    """80 log-mel energies + interpolated log F0 (81 features).

    Example:
        >>> FbankPitch(FeatureConfig(name="mfbe_pitch"))(torch.randn(1600)).shape
        torch.Size([81, 11])
    """

    spectral_cls = Fbank


@FEATURES.register("mfcc_pitch")
class MFCCPitch(_Stacked):
    """40 MFCC + interpolated log F0 (41 features).

    Example:
        >>> MFCCPitch(FeatureConfig(name="mfcc_pitch"))(torch.randn(1600)).shape
        torch.Size([41, 11])
    """

    spectral_cls = MFCC


# the pretrained-encoder features are built-ins too (importing combos registers them all)
from vocalis.features import precomputed as _precomputed  # noqa: E402, F401
from vocalis.features import pretrained as _pretrained  # noqa: E402, F401
from vocalis.features import ptm_stack as _ptm_stack  # noqa: E402, F401
from vocalis.features import waveform as _waveform  # noqa: E402, F401
