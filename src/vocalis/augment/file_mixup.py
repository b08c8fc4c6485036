"""File mixup: mix the waveforms of two utterances of a batch before features are computed.

Example:
    >>> import torch
    >>> waves = [torch.ones(4), 2 * torch.ones(3)]
    >>> mixed, perm, lam = FileMixup(alpha=0.4)(waves, torch.Generator().manual_seed(0))
    >>> [len(w) for w in mixed], sorted(perm.tolist()), 0.5 <= lam <= 1.0
    ([4, 3], [0, 1], True)
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from vocalis.augment.mixup import draw_mix


class FileMixup:
    """``lam * a + (1 - lam) * b`` for each waveform ``a`` and its partner ``b`` in the batch.

    One partner permutation and one ``lam ~ Beta(alpha, alpha)`` (>= 0.5) per batch,
    drawn as :class:`~vocalis.augment.mixup.Mixup` draws them, so the loss mixes the
    targets the same way: ``lam * loss(target) + (1 - lam) * loss(target[perm])``.
    Each utterance keeps its own length: a longer partner is cut, a shorter one
    zero-padded (it dominates with ``lam >= 0.5``).

    Args:
        alpha: Beta concentration, > 0.

    Shape:
        waveforms: B x (T_i,) -> (B x (T_i,), perm (B,), lam)

    Raises:
        ValueError: ``alpha <= 0``.
    """

    def __init__(self, alpha: float = 0.4) -> None:
        if not alpha > 0:
            raise ValueError(f"FileMixup: alpha={alpha}; expected > 0")
        self.alpha = float(alpha)

    def __call__(
        self, waveforms: Sequence[torch.Tensor], generator: torch.Generator
    ) -> tuple[list[torch.Tensor], torch.Tensor, float]:
        """The mixed waveforms, the partner of each item and ``lam``."""
        perm, lam = draw_mix(len(waveforms), self.alpha, generator)
        out = []
        for i, j in enumerate(perm.tolist()):
            a, b = waveforms[i], waveforms[j]
            partner = torch.zeros_like(a)
            n = min(a.shape[-1], b.shape[-1])
            partner[..., :n] = b[..., :n]
            out.append(lam * a + (1.0 - lam) * partner)
        return out, perm, lam
