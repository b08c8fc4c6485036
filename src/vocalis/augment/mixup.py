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

from vocalis.augment.draw import chance


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


def draw_mix(
    batch_size: int, alpha: float, generator: torch.Generator
) -> tuple[torch.Tensor, float]:
    """The partner permutation and weight of one mixup: ``(perm (B,), lam in [0.5, 1])``.

    ``lam ~ Beta(alpha, alpha)``, folded to ``max(lam, 1 - lam)`` so each item keeps
    the larger share. Shared by :class:`Mixup` (features) and
    :class:`~vocalis.augment.file_mixup.FileMixup` (waveforms).

    Example:
        >>> perm, lam = draw_mix(4, 0.4, torch.Generator().manual_seed(0))
        >>> sorted(perm.tolist()), 0.5 <= lam <= 1.0
        ([0, 1, 2, 3], True)
    """
    perm = torch.randperm(batch_size, generator=generator)
    rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,), generator=generator)))
    lam = float(rng.beta(alpha, alpha))
    return perm, max(lam, 1.0 - lam)


class Mixup(nn.Module):
    """Mix each utterance with a random partner of the same batch.

    ``lam ~ Beta(alpha, alpha)`` once per batch (kept >= 0.5 so the original item
    dominates and its length is kept). Targets are mixed through the loss:
    :meth:`MixedBatch.mix_loss`.

    Args:
        alpha: Beta concentration, > 0 (0.2 to 0.4 usual).
        seed: seed of the generator used when ``forward`` gets none.
        p: probability that a batch is mixed (the caller asks :meth:`draws`).

    Shape:
        features: (B, F, T), lengths: (B,) -> MixedBatch

    Raises:
        ValueError: ``alpha <= 0``.
    """

    def __init__(self, alpha: float = 0.4, seed: int = 0, p: float = 1.0) -> None:
        super().__init__()
        if not alpha > 0:
            raise ValueError(f"Mixup: alpha={alpha}; expected > 0 (disable mixup instead of 0)")
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Mixup: p={p}; expected a probability in [0, 1]")
        self.alpha = float(alpha)
        self.p = float(p)
        self.generator = torch.Generator().manual_seed(int(seed))

    def draws(self, generator: torch.Generator | None = None) -> bool:
        """Whether this batch is mixed: True with probability ``p`` (no draw at ``p = 1``)."""
        return chance(generator or self.generator, self.p)

    def forward(
        self,
        features: torch.Tensor,
        lengths: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> MixedBatch:
        """Mix each item with a random partner; see the class docstring for shapes."""
        perm, lam = draw_mix(features.shape[0], self.alpha, generator or self.generator)
        perm_dev = perm.to(features.device)
        mixed = lam * features + (1.0 - lam) * features[perm_dev]
        new_lengths = torch.maximum(lengths, lengths[perm.to(lengths.device)])
        return MixedBatch(mixed, new_lengths, perm_dev, lam)
