"""Frame-level fusion of two streams of the same width: concatenation, cross-attention, a gate.

The three ways :class:`~vocalis.models.sv_fusion.SVFusion` combines its
pretrained-model (PTM) frames ``p`` and its handcrafted-feature frames ``h``,
both (B, D, T) on one frame grid, with valid ``lengths`` (B,) frames:

- :class:`ConcatFusion`: ``Linear(cat(p, h))`` per frame (a 1x1 convolution, 2D -> D).
- :class:`CrossAttentionFusion`: each stream attends to the other (multi-head
  attention, padded frames masked as keys), residual + LayerNorm, then the two
  are concatenated and projected as above.
- :class:`GatedFusion`: ``g * p + (1 - g) * h`` with a learned gate
  ``g = sigmoid(w . cat(p, h) + b)`` in [0, 1], per frame or one per utterance
  (from the masked mean over time); ``g`` is the weight of the PTM stream.

Every fusion returns ``(fused (B, D, T), gate (B, T) or None)``.

Shape legend: B batch, D width, T frames.

Example:
    >>> import torch
    >>> p, h, n = torch.randn(2, 8, 5), torch.randn(2, 8, 5), torch.tensor([5, 3])
    >>> fused, gate = build_fusion("gating", 8)(p, h, n)
    >>> fused.shape, gate.shape, bool(((gate >= 0) & (gate <= 1)).all())
    (torch.Size([2, 8, 5]), torch.Size([2, 5]), True)
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from vocalis.errors import ConfigError
from vocalis.models.masking import lengths_to_mask, masked_mean

#: Fusion names (``model.params.fusion``).
FUSIONS = ("concat", "cross_attention", "gating")


class ConcatFusion(nn.Module):
    """Concatenate the two streams and project back to their width.

    Shape:
        p, h: (B, D, T), lengths: (B,) -> (B, D, T), None
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.proj = nn.Conv1d(2 * width, width, 1)

    def forward(self, p: Tensor, h: Tensor, lengths: Tensor | None) -> tuple[Tensor, None]:
        """Fuse ``p`` and ``h`` (B, D, T) frame by frame."""
        return self.proj(torch.cat([p, h], dim=1)), None


class CrossAttentionFusion(nn.Module):
    """Each stream attends to the other with multi-head attention, then concat + projection.

    Args:
        width: D, divisible by ``heads``.
        heads: attention heads (8 by default).
        dropout: attention dropout.

    Shape:
        p, h: (B, D, T), lengths: (B,) or None -> (B, D, T), None
    """

    def __init__(self, width: int, heads: int = 8, dropout: float = 0.0) -> None:
        super().__init__()
        if width % heads:
            raise ConfigError(
                f"model.params.attention_heads: {heads} heads do not divide width {width}; "
                "choose a width that is a multiple of the heads"
            )
        self.p_to_h = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.h_to_p = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.norm_p = nn.LayerNorm(width)
        self.norm_h = nn.LayerNorm(width)
        self.proj = nn.Conv1d(2 * width, width, 1)

    def forward(self, p: Tensor, h: Tensor, lengths: Tensor | None) -> tuple[Tensor, None]:
        """Cross-attend ``p`` and ``h`` (B, D, T); padded frames are never attended to."""
        pad = None if lengths is None else ~lengths_to_mask(lengths, p.shape[2])
        pt, ht = p.transpose(1, 2), h.transpose(1, 2)  # (B, T, D)
        p2 = self.norm_p(pt + self.p_to_h(pt, ht, ht, key_padding_mask=pad, need_weights=False)[0])
        h2 = self.norm_h(ht + self.h_to_p(ht, pt, pt, key_padding_mask=pad, need_weights=False)[0])
        return self.proj(torch.cat([p2, h2], dim=2).transpose(1, 2)), None


class GatedFusion(nn.Module):
    """A learned gate in [0, 1] mixing the PTM stream (weight g) and the handcrafted one (1 - g).

    Args:
        width: D.
        per: ``frame`` (one gate per frame) or ``utterance`` (one per item, from the
            masked mean of both streams over time).

    Shape:
        p, h: (B, D, T), lengths: (B,) or None -> (B, D, T), gate (B, T)
    """

    def __init__(self, width: int, per: Literal["frame", "utterance"] = "frame") -> None:
        super().__init__()
        if per not in ("frame", "utterance"):
            raise ConfigError(f"model.params.gate: got {per!r}, expected frame or utterance")
        self.per = per
        self.gate = nn.Conv1d(2 * width, 1, 1)

    def forward(self, p: Tensor, h: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        """Mix ``p`` and ``h`` (B, D, T) with the gate; also return the gate (B, T)."""
        both = torch.cat([p, h], dim=1)
        if self.per == "utterance":
            mask = None if lengths is None else lengths_to_mask(lengths, p.shape[2])
            g = torch.sigmoid(self.gate(masked_mean(both, mask)[:, :, None]))  # (B, 1, 1)
            g = g.expand(-1, -1, p.shape[2])
        else:
            g = torch.sigmoid(self.gate(both))  # (B, 1, T)
        return g * p + (1.0 - g) * h, g[:, 0]


def build_fusion(
    name: str, width: int, heads: int = 8, gate: str = "frame", dropout: float = 0.0
) -> nn.Module:
    """The fusion module named ``name`` (one of :data:`FUSIONS`).

    Raises:
        ConfigError: an unknown name.
    """
    if name == "concat":
        return ConcatFusion(width)
    if name == "cross_attention":
        return CrossAttentionFusion(width, heads, dropout)
    if name == "gating":
        return GatedFusion(width, gate)  # type: ignore[arg-type]
    raise ConfigError(f"model.params.fusion: got {name!r}, expected one of {', '.join(FUSIONS)}")
