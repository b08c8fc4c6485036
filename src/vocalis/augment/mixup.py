"""Mixup (Zhang et al. 2018) for padded feature batches.

Example:
    >>> import torch
    >>> mix = Mixup(alpha=0.4, seed=0)
    >>> x, lengths = torch.randn(3, 2, 5), torch.tensor([5, 4, 2])
    >>> out = mix(x, lengths)
    >>> out.features.shape, bool((out.lengths >= lengths).all()), 0.0 <= out.lam <= 1.0
    (torch.Size([3, 2, 5]), True, True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass
class MixedBatch:
    """The output of :class:`Mixup`.

    Attributes:
        features: (B, F, T) ``lam * x + (1 - lam) * x[perm]``.
        lengths: (B,) ``max(lengths, lengths[perm])``.
        perm: (B,) the partner of each item.
        lam: the mixing weight of the original item.
    """

    features: torch.Tensor
    lengths: torch.Tensor
    perm: torch.Tensor
    lam: float

    def mix_loss(self, loss_fn, target: torch.Tensor) -> torch.Tensor:
        """``lam * loss_fn(target) + (1 - lam) * loss_fn(target[perm])``."""
        return self.lam * loss_fn(target) + (1.0 - self.lam) * loss_fn(target[self.perm])


class Mixup(nn.Module):
    """Mix each utterance with a random partner of the same batch.

    ``lam ~ Beta(alpha, alpha)`` once per batch (kept >= 0.5 so the original item
    dominates and its length is kept). Targets are mixed through the loss:
    :meth:`MixedBatch.mix_loss`.

    Args:
        alpha: Beta concentration, > 0 (0.2 to 0.4 usual).
        seed: seed of the generator used when ``forward`` gets none.

    Shape:
        features: (B, F, T), lengths: (B,) -> MixedBatch

    Raises:
        ValueError: ``alpha <= 0``.
    """

    def __init__(self, alpha: float = 0.4, seed: int = 0) -> None:
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"Mixup: alpha={alpha}; expected > 0 (disable mixup instead of 0)")
        self.alpha = float(alpha)
        self.generator = torch.Generator().manual_seed(int(seed))

    def forward(
        self,
        features: torch.Tensor,
        lengths: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> MixedBatch:
        """Mix each item with a random partner; see the class docstring for shapes."""
        g = generator or self.generator
        b = features.shape[0]
        perm = torch.randperm(b, generator=g)
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=g)))
        lam = float(rng.beta(self.alpha, self.alpha))
        lam = max(lam, 1.0 - lam)
        perm_dev = perm.to(features.device)
        mixed = lam * features + (1.0 - lam) * features[perm_dev]
        new_lengths = torch.maximum(lengths, lengths[perm.to(lengths.device)])
        return MixedBatch(mixed, new_lengths, perm_dev, lam)
