"""``tier1``: a compact speech-emotion classifier on MFCCs (SER_Tier1).

Pipeline (B batch, C input coefficients, T frames)::

    MFCC (B, C, T) -> multi-head channel attention (per-coefficient weights)
      -> residual 1-D conv blocks (depthwise-separable, kernel 5, BN, GELU, dropout)
      -> 2-layer BiLSTM (padding is never read; see vocalis.models.rnn)
      -> attention pooling over time (or mean)
      -> head: LayerNorm -> dropout -> Linear   (plus optional valence-arousal head)

Every step respects ``lengths``: masked statistics in the channel attention,
padded frames zeroed after each conv block, a length-aware BiLSTM (each direction
reads only the item's frames, without the slow packed-sequence path) and a masked
softmax in the pooling, so an item gives the same output alone or in a
padded batch (eval mode). In training mode BatchNorm's batch statistics include
the zeroed padded frames; bucket batches by length to keep padding small.

Example:
    >>> import torch
    >>> from vocalis.models import build_model
    >>> model = build_model("tier1", {"channels": [16, 32], "lstm_hidden": 16}, 40, 4).eval()
    >>> out = model(torch.randn(2, 40, 50), torch.tensor([50, 30]))
    >>> out.logits.shape, out.extras["confidence"].shape
    (torch.Size([2, 4]), torch.Size([2]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vocalis.errors import ConfigValueError
from vocalis.models.base import ModelOutput, SpeechClassifier
from vocalis.models.heads import HeadFields, MultiHead
from vocalis.models.masking import (
    apply_mask,
    lengths_to_mask,
    masked_max,
    masked_mean,
)
from vocalis.models.pooling import AttentionPooling, MeanPooling
from vocalis.models.registry import MODELS
from vocalis.models.rnn import LengthAwareBiLSTM


@dataclass(frozen=True)
class Tier1Config(HeadFields):
    """Configuration of :class:`Tier1`.

    Attributes:
        attention_heads: heads of the channel attention.
        attention_reduction: bottleneck ratio of each head's shared MLP.
        channels: output channels of the residual conv blocks, one entry per block.
        conv: ``separable`` (depthwise + pointwise) or ``plain`` convolutions.
        kernel_size: odd temporal kernel of the conv blocks.
        conv_dropout: dropout inside the conv blocks.
        lstm_hidden: hidden size per direction (BiLSTM output is twice this).
        lstm_layers: stacked BiLSTM layers.
        lstm_dropout: dropout between LSTM layers.
        lstm_packed: run the LSTM on packed sequences (torch's reference way to skip
            padding; 5-8x slower to train on CPU) instead of reversing each item
            within its length for the backward direction. Same outputs, same weights.
        pooling: ``attention`` (additive attention) or ``mean``.
        pooling_heads: heads of the attention pooling.
        pooling_hidden: hidden size of the attention pooling.
        va_head: add a valence-arousal regression head (``extras["va"]``, (B, 2)).
        temperature: scale logits by a temperature (fit with ``calibrate_temperature``).
        input_norm: built-in global mean-variance normalisation of the input.
    """

    attention_heads: int = 4
    attention_reduction: int = 4
    channels: list[int] = field(default_factory=lambda: [128, 256])
    conv: Literal["separable", "plain"] = "separable"
    kernel_size: int = 5
    conv_dropout: float = 0.1
    lstm_hidden: int = 128
    lstm_layers: int = 2
    lstm_dropout: float = 0.1
    lstm_packed: bool = False
    pooling: Literal["attention", "mean"] = "attention"
    pooling_heads: int = 1
    pooling_hidden: int = 128
    va_head: bool = False
    temperature: bool = False
    input_norm: bool = False
    head_layernorm: bool = True
    head_dropout: float = 0.3

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ConfigValueError("kernel_size", self.kernel_size, "a positive odd number")
        if not self.channels or min(self.channels) < 1:
            raise ConfigValueError(
                "channels", list(self.channels), "a non-empty list of sizes >= 1, e.g. [128, 256]"
            )
        for key in ("attention_heads", "lstm_layers", "lstm_hidden"):
            if getattr(self, key) < 1:
                raise ConfigValueError(key, getattr(self, key), "an integer >= 1")


class ChannelAttention(nn.Module):
    """Multi-head channel attention over input coefficients.

    Each head pools the sequence over valid frames by average and max, passes
    both through its own two-layer MLP (shared between the two streams), sums
    them and applies a sigmoid: one weight per coefficient. A learned linear
    layer mixes the heads' weights (initialised to their average); the input is
    scaled by the result. All heads run as one batched einsum.

    Shape:
        x: (B, C, T), mask: (B, T) or None -> ((B, C, T), weights (B, C))
    """

    def __init__(self, channels: int, heads: int = 4, reduction: int = 4) -> None:
        super().__init__()
        hidden = max(channels // max(reduction, 1), 4)
        self.w1 = nn.Parameter(torch.empty(heads, channels, hidden))
        self.b1 = nn.Parameter(torch.zeros(heads, hidden))
        self.w2 = nn.Parameter(torch.empty(heads, hidden, channels))
        self.b2 = nn.Parameter(torch.zeros(heads, channels))
        nn.init.uniform_(self.w1, -1 / math.sqrt(channels), 1 / math.sqrt(channels))
        nn.init.uniform_(self.w2, -1 / math.sqrt(hidden), 1 / math.sqrt(hidden))
        self.combine = nn.Linear(heads, 1)
        nn.init.constant_(self.combine.weight, 1.0 / heads)
        nn.init.zeros_(self.combine.bias)

    def forward(self, x: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """Attend over channels of ``x`` (B, C, T); returns the reweighted input and the weights."""
        streams = torch.stack([masked_mean(x, mask), masked_max(x, mask)], dim=1)  # (B, 2, C)
        h = F.relu(torch.einsum("bsc,hcr->bshr", streams, self.w1) + self.b1)
        scores = torch.einsum("bshr,hrc->bshc", h, self.w2) + self.b2  # (B, 2, H, C)
        per_head = torch.sigmoid(scores.sum(dim=1))  # (B, H, C)
        weights = self.combine(per_head.transpose(1, 2)).squeeze(2)  # (B, C)
        return x * weights.unsqueeze(2), weights


class ResidualConvBlock(nn.Module):
    """Conv (separable or plain) -> BatchNorm -> GELU -> dropout, plus a residual.

    The input's padded frames must be zero; the output's padded frames are zeroed.

    Shape:
        x: (B, C_in, T), mask: (B, T) or None -> (B, C_out, T)
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int, conv: str, dropout: float) -> None:
        super().__init__()
        pad = kernel_size // 2
        if conv == "separable":
            self.conv = nn.Sequential(
                nn.Conv1d(c_in, c_in, kernel_size, padding=pad, groups=c_in, bias=False),
                nn.Conv1d(c_in, c_out, 1, bias=False),
            )
        else:
            self.conv = nn.Conv1d(c_in, c_out, kernel_size, padding=pad, bias=False)
        self.norm = nn.BatchNorm1d(c_out)
        self.act = nn.GELU()
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv1d(c_in, c_out, 1, bias=False) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Depthwise-separable conv -> norm -> activation -> dropout, plus the residual."""
        y = self.dropout(self.act(self.norm(self.conv(x))))
        return apply_mask(y + self.skip(x), mask)


@MODELS.register("tier1")
class Tier1(SpeechClassifier):
    """SER_Tier1: channel attention + residual convs + BiLSTM + attention pooling.

    Args:
        config: :class:`Tier1Config`.
        input_dim: MFCC coefficients C.
        num_classes: classes, or one entry per head.
        feature_name: features the model is built for (error messages).

    Shape:
        features: (B, C, T), lengths: (B,) -> logits (B, classes), embedding (B, E)
        with E = 2 * lstm_hidden * (pooling_heads if pooling == "attention" else 1).
    """

    config_cls = Tier1Config

    def __init__(
        self,
        config: Tier1Config,
        input_dim: int,
        num_classes: int | list[int],
        feature_name: str | None = None,
    ) -> None:
        super().__init__(config, input_dim, num_classes, feature_name)
        c = config
        self.channel_attention = ChannelAttention(
            input_dim, c.attention_heads, c.attention_reduction
        )
        blocks, c_in = [], input_dim
        for c_out in c.channels:
            blocks.append(ResidualConvBlock(c_in, c_out, c.kernel_size, c.conv, c.conv_dropout))
            c_in = c_out
        self.blocks = nn.ModuleList(blocks)
        self.lstm = LengthAwareBiLSTM(
            c_in, c.lstm_hidden, c.lstm_layers, c.lstm_dropout, packed=c.lstm_packed
        )
        seq_dim = 2 * c.lstm_hidden
        if c.pooling == "attention":
            self.pooling: nn.Module = AttentionPooling(seq_dim, c.pooling_heads, c.pooling_hidden)
        else:
            self.pooling = MeanPooling(seq_dim)
        self.embedding_dim = self.pooling.output_dim(seq_dim)
        self.head = MultiHead.from_config(c, self.embedding_dim, num_classes)
        self.va = nn.Linear(self.embedding_dim, 2) if c.va_head else None

    def encode(self, features: Tensor, lengths: Tensor) -> Tensor:
        """The pooled utterance embedding of ``features`` (B, F, T) with frame ``lengths`` (B,)."""
        return self._encode(features, lengths)[0]

    def _encode(self, features: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Embedding (B, E) and channel-attention weights (B, C)."""
        t = features.shape[2]
        short = self._mask_lengths(lengths, t)  # None when nothing is padding
        mask = None if short is None else lengths_to_mask(short, t)
        x = apply_mask(features, mask)
        x, weights = self.channel_attention(x, mask)
        for block in self.blocks:
            x = block(x, mask)
        seq = self.lstm(x.transpose(1, 2), short)  # (B, T, 2H)
        return self.pooling.pool(seq.transpose(1, 2), mask), weights

    def forward(self, features: Tensor, lengths: Tensor | None = None) -> ModelOutput:
        """Classify; extras add ``channel_weights`` (B, C) and, with ``va_head``, ``va`` (B, 2).

        Shape:
            features: (B, C, T), lengths: (B,) -> logits (B, classes)
        """
        features, lengths = self._prepare(features, lengths)
        embedding, weights = self._encode(features, lengths)
        out = self.classify(embedding)
        out.extras["channel_weights"] = weights
        if self.va is not None:
            out.extras["va"] = self.va(embedding)
        return out
