"""Temporal pooling layers: a sequence of frames in, one vector per item out.

All layers take ``x`` of shape (B, C, T) and integer ``lengths`` (B,) in frames
(or ``None`` when every frame is valid), ignore padded frames, and report the
size of what they return with ``output_dim(input_dim)``. ``pool(x, mask)`` takes
a precomputed boolean (B, T) mask instead (models build it once). They are registered in
:data:`POOLINGS` so models can pick one by name.

Shape legend: B batch, C channels, T frames.

Example:
    >>> import torch
    >>> pool = StatisticsPooling()
    >>> x = torch.randn(2, 8, 20)
    >>> pool(x, torch.tensor([20, 12])).shape
    torch.Size([2, 16])
    >>> pool.output_dim(8)
    16
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vocalis.errors import ConfigError
from vocalis.models.masking import (
    check_lengths,
    lengths_to_mask,
    masked_mean,
    masked_mean_std,
    masked_softmax,
    weighted_mean_std,
)
from vocalis.registry import Registry

#: Pooling layers by name; each is built as ``cls(input_dim, **kwargs)``.
POOLINGS: Registry[type[nn.Module]] = Registry("pooling")


def _mask(x: Tensor, lengths: Tensor | None) -> Tensor | None:
    lengths = check_lengths(lengths, x.shape[0], x.shape[2])
    return None if lengths is None else lengths_to_mask(lengths, x.shape[2])


@POOLINGS.register("mean")
class MeanPooling(nn.Module):
    """Average over valid frames.

    Args:
        input_dim: channels C (unused; accepted so every pooling builds alike).

    Shape:
        x: (B, C, T), lengths: (B,) -> (B, C)

    Example:
        >>> x = torch.tensor([[[1.0, 3.0, 9.0]]])
        >>> MeanPooling()(x, torch.tensor([2]))
        tensor([[2.]])
    """

    def __init__(self, input_dim: int = 0) -> None:
        super().__init__()

    def output_dim(self, input_dim: int) -> int:
        """Size of the pooled vector for ``input_dim`` channels."""
        return input_dim

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Pool ``x`` (B, C, T) over its valid frames (``lengths`` (B,)): (B, output_dim)."""
        return self.pool(x, _mask(x, lengths))

    def pool(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Pool with a boolean (B, T) mask of valid frames (``None``: all valid)."""
        return masked_mean(x, mask)


@POOLINGS.register("stats")
class StatisticsPooling(nn.Module):
    """Mean and standard deviation over valid frames, concatenated.

    Args:
        input_dim: channels C (unused).
        eps: variance floor before the square root.

    Shape:
        x: (B, C, T), lengths: (B,) -> (B, 2C)
    """

    def __init__(self, input_dim: int = 0, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def output_dim(self, input_dim: int) -> int:
        """Size of the pooled vector for ``input_dim`` channels."""
        return 2 * input_dim

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Pool ``x`` (B, C, T) over its valid frames (``lengths`` (B,)): (B, output_dim)."""
        return self.pool(x, _mask(x, lengths))

    def pool(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Pool with a boolean (B, T) mask of valid frames (``None``: all valid)."""
        mean, std = masked_mean_std(x, mask, self.eps)
        return torch.cat([mean, std], dim=1)


@POOLINGS.register("attentive_stats")
class AttentiveStatisticsPooling(nn.Module):
    """ECAPA-TDNN's attentive statistics pooling (Desplanques et al., 2020).

    Channel-wise attention over time; with ``global_context`` the attention also
    sees the utterance's (masked) mean and std, repeated over time. Returns the
    attention-weighted mean and std.

    Args:
        input_dim: channels C.
        attention_channels: bottleneck of the attention network.
        global_context: append utterance mean and std to each frame's input.
        eps: variance floor.

    Shape:
        x: (B, C, T), lengths: (B,) -> (B, 2C)

    Example:
        >>> pool = AttentiveStatisticsPooling(16, attention_channels=8).eval()
        >>> pool(torch.randn(3, 16, 10), torch.tensor([10, 4, 7])).shape
        torch.Size([3, 32])
    """

    def __init__(
        self,
        input_dim: int,
        attention_channels: int = 128,
        global_context: bool = True,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.eps = eps
        self.global_context = global_context
        self.input_dim = input_dim
        in_ch = 3 * input_dim if global_context else input_dim
        self.conv = nn.Conv1d(in_ch, attention_channels, kernel_size=1)
        self.norm = nn.BatchNorm1d(attention_channels)
        self.attention = nn.Conv1d(attention_channels, input_dim, kernel_size=1)

    def output_dim(self, input_dim: int) -> int:
        """Size of the pooled vector for ``input_dim`` channels."""
        return 2 * input_dim

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Pool ``x`` (B, C, T) over its valid frames (``lengths`` (B,)): (B, output_dim)."""
        return self.pool(x, _mask(x, lengths))

    def pool(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Pool with a boolean (B, T) mask of valid frames (``None``: all valid)."""
        if self.global_context:
            # conv([x; mean; std]) with mean and std constant over time equals
            # conv_x(x) + (W_mean mean + W_std std): same result, a third of the work.
            mean, std = masked_mean_std(x, mask, self.eps)
            w_x, w_mean, w_std = self.conv.weight[:, :, 0].split(self.input_dim, dim=1)
            context = torch.addmm(self.conv.bias, mean, w_mean.t()) + std @ w_std.t()
            hidden = F.conv1d(x, w_x.unsqueeze(2)) + context.unsqueeze(2)
        else:
            hidden = self.conv(x)
        hidden = torch.tanh(self.norm(F.relu(hidden)))
        weights = masked_softmax(self.attention(hidden), mask)
        mean, std = weighted_mean_std(x, weights, self.eps)
        return torch.cat([mean, std], dim=1)


@POOLINGS.register("attention")
class AttentionPooling(nn.Module):
    """Additive (Bahdanau-style) attention pooling with one or several heads.

    Each head scores frames with ``v_h . tanh(W x_t + b)`` and returns the
    softmax-weighted average of the frames; the heads' averages are concatenated.

    Args:
        input_dim: channels C.
        heads: number of attention heads.
        hidden: size of the shared tanh layer.

    Shape:
        x: (B, C, T), lengths: (B,) -> (B, heads * C)

    Example:
        >>> pool = AttentionPooling(8, heads=2, hidden=4)
        >>> pool(torch.randn(2, 8, 5), torch.tensor([5, 3])).shape
        torch.Size([2, 16])
    """

    def __init__(self, input_dim: int, heads: int = 1, hidden: int = 128) -> None:
        super().__init__()
        if heads < 1 or hidden < 1:
            raise ConfigError(
                f"attention pooling: heads={heads}, hidden={hidden}; both must be >= 1"
            )
        self.heads = heads
        self.proj = nn.Conv1d(input_dim, hidden, kernel_size=1)
        self.score = nn.Conv1d(hidden, heads, kernel_size=1)

    def output_dim(self, input_dim: int) -> int:
        """Size of the pooled vector for ``input_dim`` channels."""
        return self.heads * input_dim

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Pool ``x`` (B, C, T) over its valid frames (``lengths`` (B,)): (B, output_dim)."""
        return self.pool(x, _mask(x, lengths))

    def pool(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """Pool with a boolean (B, T) mask of valid frames (``None``: all valid)."""
        weights = masked_softmax(self.score(torch.tanh(self.proj(x))), mask)  # (B, H, T)
        pooled = torch.bmm(weights, x.transpose(1, 2))  # (B, H, C)
        return pooled.flatten(1)


def build_pooling(name: str, input_dim: int, **kwargs) -> nn.Module:
    """Build the pooling layer registered as ``name``.

    Example:
        >>> build_pooling("stats", 4).output_dim(4)
        8
    """
    return POOLINGS.get(name)(input_dim, **kwargs)
