"""Frame-level features from a frozen pretrained encoder: ``encoder`` and its preset ``ge2e``.

``encoder`` gives the frames of one layer, or the (weighted) mean of several
layers, of any encoder of :mod:`vocalis.encoders`, named by
``config.encoder_source``: ``ge2e`` (the GE2E speaker encoder shipped with
Vocalis, checkpoint ``config.ge2e_weights``) or a ``save_pretrained`` folder /
Hugging Face cache model id (wav2vec 2.0, HuBERT, WavLM), layers
``config.encoder_layers`` mixed with ``config.encoder_layer_weights``
(:func:`vocalis.encoders.mix_layers`). Frames are the encoder's (GE2E: centred
10 ms frames, ``1 + T // 160``; wav2vec 2.0: 20 ms frames without padding), and
``config.hop_length`` must say so. Any Vocalis model trains on them like on
MFCCs. The encoder is frozen and run without gradients; its weights never come
from the network, and the feature cache key holds their identity (weights
SHA-256 or repository@revision, :func:`vocalis.features.config.cache_identity`).

``ge2e`` is the preset ``encoder_source=ge2e, encoder_layers=[ge2e_layer]``: 256
outputs of one GE2E LSTM layer every 10 ms (the middle one by default, which
carries the most emotion in our EmoDB study).

Example:
    >>> from vocalis.features.base import FEATURES
    >>> FEATURES.get("ge2e").feature_dim
    256
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from vocalis.encoders.base import EncoderOutput, PretrainedEncoder
from vocalis.encoders.select import encoder_identity, mix_layers, open_encoder
from vocalis.errors import ConfigError
from vocalis.features.base import FEATURES, FeatureExtractor
from vocalis.features.config import FeatureConfig


@dataclass(frozen=True)
class EncoderChoice:
    """Which encoder, which layers, and how to mix them (from a feature config).

    Attributes:
        source: ``ge2e`` or a folder / cached model id (:func:`vocalis.encoders.open_encoder`).
        layers: layer numbers, as the encoder numbers them (negative: from the last).
        layer_weights: ``()`` for the mean, else one weight per layer.
        weights: a weights file (GE2E's checkpoint; ``""``: its default).
        revision: revision of a cached model id.
    """

    source: str
    layers: tuple[int, ...]
    layer_weights: tuple[float, ...] = ()
    weights: str = ""
    revision: str = ""

    def open(self) -> PretrainedEncoder:
        """The encoder, in eval mode (see :func:`vocalis.encoders.open_encoder`)."""
        return open_encoder(self.source, self.layers, weights=self.weights, revision=self.revision)

    def identity(self) -> str:
        """The encoder's weights identity, without building it."""
        return encoder_identity(
            self.source, self.layers, weights=self.weights, revision=self.revision
        )


@lru_cache(maxsize=4)
def frozen_encoder(choice: EncoderChoice) -> PretrainedEncoder:
    """The encoder of ``choice`` on the CPU in float32, frozen, built once.

    For utterance statistics (``encoder_stats``); frame extractors own their
    encoder, because :func:`~vocalis.features.base.cached_extractor` moves them to
    other devices and dtypes.
    """
    return choice.open().requires_grad_(False)


@FEATURES.register("encoder")
class EncoderFrames(FeatureExtractor):
    """Frames of the chosen layers of a frozen pretrained encoder, ``hidden_size`` per frame.

    In a padded batch each item gives the frames it gives alone (the encoders'
    contract), and frames past ``frame_lengths(lengths)`` are zero.

    Raises:
        ConfigError: the encoder is not found, a layer it does not have, or a
            ``sample_rate`` / ``hop_length`` other than the encoder's rate and frame hop.

    Shape:
        (B, T), (B,) -> (B, H, N); H the encoder's hidden size, N = frame_lengths(T).
    """

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__(config)
        self.choice = self.encoder_choice(config)
        self.encoder = self.choice.open()
        self.positions = tuple(self.encoder.layer_index(k) for k in self.choice.layers)
        self.feature_dim = self.encoder.hidden_size
        rate = self.encoder.sample_rate
        hop = round(self.encoder.frame_shift * rate)
        if config.sample_rate != rate or config.hop_length != hop:
            raise ConfigError(
                f"features '{config.name}': got sample_rate={config.sample_rate}, "
                f"hop_length={config.hop_length}; the {self.choice.source} encoder needs "
                f"{rate} Hz and hop {hop} ({1000 * hop / rate:g} ms frames): set "
                f"features.sample_rate={rate} and features.hop_length={hop}"
            )
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def encoder_choice(cls, config: FeatureConfig) -> EncoderChoice:
        """The encoder and layers ``config`` asks for (its ``encoder_*`` fields)."""
        return EncoderChoice(
            config.encoder_source,
            tuple(config.encoder_layers),
            tuple(config.encoder_layer_weights),
            config.ge2e_weights,
            config.encoder_revision,
        )

    @classmethod
    def weights_identity(cls, config: FeatureConfig) -> str:
        """The encoder's weights identity (SHA-256 or repository@revision)."""
        return cls.encoder_choice(config).identity()

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """The encoder's frames (its own rule, e.g. GE2E ``1 + lengths // 160``).

        Shape:
            (B,) samples -> (B,) int64 frames.
        """
        return self.encoder.frame_lengths(lengths)

    def train(self, mode: bool = True) -> EncoderFrames:
        """Always in eval mode: the encoder is a frozen feature extractor."""
        return super().train(False)

    def hidden_states(
        self, wav: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> EncoderOutput:
        """Every layer of the encoder (as far as it was loaded), without gradients.

        Shape:
            (B, T), (B,) -> L x (B, N, H), (B,).
        """
        self.encoder.export_friendly = self.export_friendly
        with torch.no_grad():
            return self.encoder(wav, lengths)

    def compute(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The mix of the chosen layers for ``wav`` (B, T): (B, H, N)."""
        out = self.hidden_states(wav, lengths)
        return mix_layers(out, self.positions, self.choice.layer_weights).transpose(1, 2)


@FEATURES.register("ge2e")
class GE2EFrames(EncoderFrames):
    """Outputs of GE2E layer ``config.ge2e_layer`` (256 per 10 ms frame).

    A preset of :class:`EncoderFrames`. Frames are aligned with the other features
    (``1 + T // 160``, centred 25 ms windows). In a padded batch each item's level
    is normalised on its own valid samples and the LSTM runs forward in time, so
    valid frames equal the item computed alone.

    Raises:
        ConfigError: a rate other than 16 kHz, a hop other than 160 samples, or
            no GE2E checkpoint.
    """

    feature_dim = 256

    @classmethod
    def encoder_choice(cls, config: FeatureConfig) -> EncoderChoice:
        """GE2E, layer ``config.ge2e_layer``, checkpoint ``config.ge2e_weights``."""
        return EncoderChoice("ge2e", (config.ge2e_layer,), (), config.ge2e_weights)
