"""Every chosen layer of a frozen pretrained encoder, stacked, alone or with handcrafted features.

The inputs of the speaker-verification model (:mod:`vocalis.models.sv_fusion`):
its pretrained-model (PTM) branch learns softmax weights over the encoder's
layers, so it needs all of them, not their mean (what ``encoder`` features
give). ``ptm`` stacks the layers ``config.encoder_layers`` of
``config.encoder_source`` (GE2E 1-3, 3 x 256; a base SSL model 0-12, 13 x 768)
layer after layer along the feature axis; ``ptm_<mode>`` puts the handcrafted
features of ``<mode>`` (``mfbe_pitch`` 81, ``mfcc_pitch`` 41, ``mfbe_only`` 80,
``mfcc_only`` 40, ``pitch_only`` 1) after them::

    ptm:         (B, L*H, N)        frames of the encoder (its own frame rule)
    ptm_<mode>:  (B, L*H + C, N)    frames of the handcrafted features (10 ms,
                                    ``1 + T // hop_length``); encoder frames are
                                    taken at the nearest earlier time (GE2E's
                                    10 ms frames map one to one)

Computed once and kept in the feature cache like every extractor (the key
holds the encoder's weights identity), so trainings of every mode and fusion
reuse one pass of the encoder.

Shape legend: B batch, T samples, N frames, L layers, H hidden size, C handcrafted features.

Example:
    >>> import torch
    >>> from vocalis.features import build_extractor
    >>> from vocalis.features.config import FeatureConfig
    >>> ex = build_extractor(FeatureConfig(name="ptm_pitch_only", encoder_layers=(1, 2, 3)))
    >>> ex.layout
    (3, 256, 1)
    >>> ex(torch.randn(2, 3200), torch.tensor([3200, 1600])).shape
    torch.Size([2, 769, 21])
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import torch

from vocalis.errors import ConfigError
from vocalis.features.base import FEATURES, FeatureExtractor
from vocalis.features.config import HANDCRAFTED_MODES, FeatureConfig
from vocalis.features.pretrained import EncoderFrames


class PTMStack(FeatureExtractor):
    """The stacked layers of an encoder, then (``ptm_<mode>``) handcrafted features.

    Attributes:
        layout: ``(L, H, C)``: layers, hidden size, handcrafted features (0 for ``ptm``).

    Raises:
        ConfigError: the encoder is not found or lacks a layer, layer weights were given
            (the model learns them), or a sample rate / hop the encoder cannot follow.
    """

    handcrafted: ClassVar[str | None] = None

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__(config)
        if config.encoder_layer_weights:
            raise ConfigError(
                f"features '{config.name}': encoder_layer_weights="
                f"{list(config.encoder_layer_weights)}; stacked layers are weighted by the "
                "model (a learned softmax), so leave encoder_layer_weights empty"
            )
        self.choice = EncoderFrames.encoder_choice(config)
        self.encoder = self.choice.open()
        self.positions = tuple(self.encoder.layer_index(k) for k in self.choice.layers)
        rate = self.encoder.sample_rate
        self.encoder_hop = round(self.encoder.frame_shift * rate)
        if config.sample_rate != rate:
            raise ConfigError(
                f"features '{config.name}': sample_rate={config.sample_rate}, but the "
                f"{self.choice.source} encoder takes {rate} Hz: set features.sample_rate={rate}"
            )
        self.hand: FeatureExtractor | None = None
        if self.handcrafted is not None:
            self.hand = FEATURES.get(self.handcrafted)(
                dataclasses.replace(config, name=self.handcrafted)
            )
        elif config.hop_length != self.encoder_hop:
            raise ConfigError(
                f"features 'ptm': hop_length={config.hop_length}; the {self.choice.source} "
                f"encoder gives a frame every {self.encoder_hop} samples: set "
                f"features.hop_length={self.encoder_hop}"
            )
        c = self.hand.feature_dim if self.hand is not None else 0
        self.layout = (len(self.positions), self.encoder.hidden_size, c)
        self.feature_dim = len(self.positions) * self.encoder.hidden_size + c
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def weights_identity(cls, config: FeatureConfig) -> str:
        """The encoder's weights identity (SHA-256 or repository@revision)."""
        return EncoderFrames.encoder_choice(config).identity()

    def train(self, mode: bool = True) -> PTMStack:
        """Always in eval mode: the encoder is frozen."""
        return super().train(False)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """The handcrafted features' frames, or the encoder's for ``ptm``.

        Shape:
            (B,) samples -> (B,) int64 frames.
        """
        if self.hand is not None:
            return self.hand.frame_lengths(lengths)
        return self.encoder.frame_lengths(lengths)

    def compute(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """The stacked features of ``wav`` (B, T): (B, L*H [+ C], N)."""
        if lengths is None:
            lengths = torch.full((wav.shape[0],), wav.shape[1], dtype=torch.long)
        self.encoder.export_friendly = self.export_friendly
        with torch.no_grad():
            out = self.encoder(wav, lengths)
        layers = torch.cat([out.hidden_states[p] for p in self.positions], dim=2)  # (B, N', L*H)
        if self.hand is None:
            return layers.transpose(1, 2)
        hand = self.hand.compute(wav, lengths)  # (B, C, N)
        n = hand.shape[2]
        # frame k of the handcrafted grid sits at k * hop samples; take the encoder frame there
        hop_ratio = self.config.hop_length / self.encoder_hop
        k = torch.arange(n, device=wav.device)
        index = torch.floor(k * hop_ratio + 1e-6).long()[None, :]  # (1, N)
        last = (out.lengths.to(wav.device) - 1).clamp(min=0)[:, None]
        index = torch.minimum(index, last).clamp(max=layers.shape[1] - 1)  # (B, N)
        picked = torch.gather(layers, 1, index[:, :, None].expand(-1, -1, layers.shape[2]))
        return torch.cat([picked.transpose(1, 2).to(hand.dtype), hand], dim=1)


FEATURES.register("ptm")(PTMStack)
for _mode in HANDCRAFTED_MODES:
    FEATURES.register(f"ptm_{_mode}")(
        type(f"PTMStack_{_mode}", (PTMStack,), {"handcrafted": _mode, "__doc__": PTMStack.__doc__})
    )
