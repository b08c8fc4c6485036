"""Frame-level features from a frozen pretrained encoder: ``ge2e``.

``ge2e`` gives, every 10 ms, the 256 outputs of one LSTM layer of the GE2E
speaker encoder (:mod:`vocalis.encoders.ge2e`; layer ``config.ge2e_layer``, the
middle one by default, which carries the most emotion in our EmoDB study). Any
Vocalis model trains on them like on MFCCs (``--features ge2e``). The encoder
is frozen and run without gradients. Its weights never come from the network
(layers 1-2 ship with Vocalis, layer 3 needs the ``resemblyzer`` wheel, or give
a checkpoint), and the feature cache key includes their SHA-256
(:func:`vocalis.features.config.cache_identity`).

Example:
    >>> from vocalis.features.base import FEATURES
    >>> FEATURES.get("ge2e").feature_dim
    256
"""

from __future__ import annotations

import torch

from vocalis.errors import ConfigError
from vocalis.features.base import FEATURES, FeatureExtractor
from vocalis.features.config import FeatureConfig


@FEATURES.register("ge2e")
class GE2EFrames(FeatureExtractor):
    """Outputs of GE2E layer ``config.ge2e_layer`` (256 per 10 ms frame).

    Frames are aligned with the other features (``1 + T // 160``, centred 25 ms
    windows). In a padded batch each item's level is normalised on its own valid
    samples and the LSTM runs forward in time, so valid frames equal the item
    computed alone.

    Raises:
        ConfigError: a rate other than 16 kHz, a hop other than 160 samples, or
            no GE2E checkpoint.
    """

    feature_dim = 256

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__(config)
        if config.sample_rate != 16000 or config.hop_length != 160:
            raise ConfigError(
                f"features 'ge2e': got sample_rate={config.sample_rate}, "
                f"hop_length={config.hop_length}; GE2E needs 16000 Hz and hop 160 (10 ms)"
            )
        from vocalis.encoders.ge2e import GE2EEncoder

        self.encoder = GE2EEncoder.from_pretrained(config.ge2e_weights or None, config.ge2e_layer)
        self.requires_grad_(False)
        self.eval()

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """The encoder's frames (:meth:`GE2EEncoder.frame_lengths`: ``1 + lengths // 160``).

        Shape:
            (B,) samples -> (B,) int64 frames.
        """
        return self.encoder.frame_lengths(lengths)

    def train(self, mode: bool = True) -> GE2EFrames:
        """Always in eval mode: the encoder is a frozen feature extractor."""
        return super().train(False)

    def layer_outputs(
        self, wav: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> list[torch.Tensor]:
        """Every layer's output up to ``config.ge2e_layer``, frame-major, without gradients.

        Shape:
            (B, T), (B,) -> ge2e_layer x (B, 1 + T // 160, 256).
        """
        self.encoder.export_friendly = self.export_friendly
        with torch.no_grad():
            return list(self.encoder(wav, lengths).hidden_states)

    def compute(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The chosen GE2E layer's outputs for ``wav`` (B, T): (B, 256, N)."""
        return self.layer_outputs(wav, lengths)[-1].transpose(1, 2)
