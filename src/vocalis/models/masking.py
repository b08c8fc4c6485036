"""Length masks and masked reductions over the time axis.

Every layer that looks across time takes integer ``lengths`` (valid frames per
item, never fractions) and ignores the padded frames, so a padded batch gives
the same output as each item alone. ``lengths=None`` means "every frame is
valid": the fast path used when all items of a batch have the same length
(fixed-size training crops), which skips building and applying masks.

Shape legend: B batch, C channels, T frames.

Example:
    >>> import torch
    >>> x = torch.tensor([[[1.0, 2.0, 3.0, 100.0]]])  # (B=1, C=1, T=4)
    >>> mask = lengths_to_mask(torch.tensor([3]), 4)
    >>> mask
    tensor([[ True,  True,  True, False]])
    >>> masked_mean(x, mask)
    tensor([[2.]])
"""

from __future__ import annotations

import torch
from torch import Tensor

from vocalis.errors import ModelError


def lengths_to_mask(lengths: Tensor, max_len: int) -> Tensor:
    """Boolean mask of valid frames.

    Args:
        lengths: integer valid frames per item.
        max_len: padded length T.

    Returns:
        ``True`` where a frame is valid.

    Shape:
        lengths: (B,) -> (B, T)

    Example:
        >>> lengths_to_mask(torch.tensor([1, 3]), 3).int()
        tensor([[1, 0, 0],
                [1, 1, 1]], dtype=torch.int32)
    """
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def check_lengths(lengths: Tensor | None, batch: int, max_len: int) -> Tensor | None:
    """Validate integer lengths; return ``None`` when every item fills ``max_len``.

    Args:
        lengths: valid frames per item, or ``None`` (all valid).
        batch: batch size B.
        max_len: padded length T.

    Returns:
        ``lengths`` as int64, or ``None`` when no frame is padding (fast path).

    Raises:
        ModelError: lengths that are fractional, of the wrong size, < 1 or > T.

    Example:
        >>> check_lengths(torch.tensor([4, 4]), 2, 4) is None
        True
        >>> check_lengths(torch.tensor([2, 4]), 2, 4)
        tensor([2, 4])
    """
    if lengths is None:
        return None
    if lengths.is_floating_point() or lengths.dtype == torch.bool:
        raise ModelError(
            f"lengths must be integer frame counts, got dtype {lengths.dtype}: "
            "pass valid frames per item (relative lengths in [0, 1] are not supported)"
        )
    if lengths.dim() != 1 or lengths.shape[0] != batch:
        raise ModelError(
            f"lengths must have shape ({batch},), got {tuple(lengths.shape)}: one length per item"
        )
    lo, hi = int(lengths.min()), int(lengths.max())
    if lo < 1 or hi > max_len:
        raise ModelError(
            f"lengths must lie in [1, {max_len}] frames, got min {lo} and max {hi}: "
            "pass lengths in frames of the padded features"
        )
    if lo == max_len:
        return None
    return lengths.long()


def apply_mask(x: Tensor, mask: Tensor | None) -> Tensor:
    """Zero the padded frames of ``x``; a no-op when ``mask`` is None.

    Shape:
        x: (B, C, T), mask: (B, T) -> (B, C, T)
    """
    if mask is None:
        return x
    return x * mask.unsqueeze(1).to(x.dtype)


def masked_mean(x: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over valid frames.

    Shape:
        x: (B, C, T), mask: (B, T) -> (B, C)
    """
    if mask is None:
        return x.mean(dim=2)
    m = mask.unsqueeze(1).to(x.dtype)
    return (x * m).sum(dim=2) / m.sum(dim=2)


def masked_mean_std(x: Tensor, mask: Tensor | None, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Mean and standard deviation over valid frames (population variance, floored at eps).

    Shape:
        x: (B, C, T), mask: (B, T) -> ((B, C), (B, C))

    Example:
        >>> x = torch.tensor([[[1.0, 3.0, 50.0]]])
        >>> mean, std = masked_mean_std(x, lengths_to_mask(torch.tensor([2]), 3))
        >>> mean, std
        (tensor([[2.]]), tensor([[1.]]))
    """
    if mask is None:
        weights = torch.full_like(x[:, :1, :], 1.0 / x.shape[2])
    else:
        m = mask.unsqueeze(1).to(x.dtype)
        weights = m / m.sum(dim=2, keepdim=True)
    return weighted_mean_std(x, weights, eps)


def weighted_mean_std(x: Tensor, weights: Tensor, eps: float = 1e-5) -> tuple[Tensor, Tensor]:
    """Mean and std of ``x`` over time under weights that sum to one over time.

    Shape:
        x: (B, C, T), weights: (B, C or 1, T) -> ((B, C), (B, C))
    """
    mean = (weights * x).sum(dim=2)
    var = (weights * (x - mean.unsqueeze(2)).pow(2)).sum(dim=2)
    return mean, var.clamp(min=eps).sqrt()


def masked_max(x: Tensor, mask: Tensor | None) -> Tensor:
    """Maximum over valid frames.

    Shape:
        x: (B, C, T), mask: (B, T) -> (B, C)
    """
    if mask is None:
        return x.amax(dim=2)
    return x.masked_fill(~mask.unsqueeze(1), float("-inf")).amax(dim=2)


def masked_softmax(scores: Tensor, mask: Tensor | None) -> Tensor:
    """Softmax over time that gives padded frames zero weight.

    Shape:
        scores: (B, C, T), mask: (B, T) -> (B, C, T)
    """
    if mask is not None:
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
    return torch.softmax(scores, dim=2)
