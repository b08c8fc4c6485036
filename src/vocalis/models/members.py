"""Several trained copies of one model as one classifier: their probabilities averaged.

``train.members=N`` trains N copies of a model with different seeds
(:mod:`vocalis.training.members`); :class:`MemberAverage` holds them and is what the
run's ``model.pt`` rebuilds (:func:`vocalis.inference.neural.model_from_checkpoint`,
``model.members`` of the checkpoint). It answers as a
:class:`~vocalis.models.SpeechClassifier` does, so prediction, serving, embedding and
ONNX export need nothing else.

Shape legend: B batch, F features, T frames, C classes, E embedding size, N members.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from vocalis.errors import ModelError
from vocalis.models.base import ModelOutput

#: Probabilities are floored here before the log (an average of softmaxes is never 0,
#: but a float32 underflow would give -inf logits).
TINY = 1e-12


class MemberAverage(nn.Module):
    """The mean of N single-head classifiers' class probabilities.

    Args:
        members: the trained models (one class head each, same classes and input).

    The output's ``logits`` are ``log(mean probabilities)`` (so a softmax of them gives
    the mean back), ``extras["probs"]`` the mean itself, ``extras["confidence"]`` its
    maximum, and the ``embedding`` the members' embeddings side by side.

    Shape:
        features: (B, F, T), lengths: (B,) -> logits (B, C), embedding (B, N * E)

    Raises:
        ModelError: fewer than two members.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ModelError(f"MemberAverage needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)

    @property
    def head(self) -> nn.Module:
        """The first member's head (its sizes and kinds are every member's)."""
        return self.members[0].head

    def set_head_kinds(self, kinds: list[str]) -> None:
        """Set the head kinds of every member."""
        for m in self.members:
            m.set_head_kinds(kinds)

    def forward(self, features: Tensor, lengths: Tensor | None = None) -> ModelOutput:
        """The members' mean class probabilities of a padded batch.

        Shape:
            features: (B, F, T), lengths: (B,) -> logits (B, C), embedding (B, N * E)
        """
        outs = [m(features, lengths) for m in self.members]
        probs = torch.stack([o.probs() for o in outs]).mean(0)
        extras = {"probs": probs, "confidence": probs.amax(dim=1)}
        embedding = torch.cat([o.embedding for o in outs], dim=1)
        return ModelOutput(logits=probs.clamp(min=TINY).log(), embedding=embedding, extras=extras)

    def embed(
        self,
        features: Tensor,
        lengths: Tensor | None = None,
        kind: Literal["pt", "ft", "st"] = "pt",
        pooling: Literal["mean", "sum"] = "mean",
    ) -> Tensor:
        """Every member's embedding of ``kind``, side by side (see ``SpeechClassifier.embed``).

        Shape:
            features: (B, F, T), lengths: (B,) -> (B, N * E')
        """
        return torch.cat([m.embed(features, lengths, kind, pooling) for m in self.members], dim=1)


__all__ = ["MemberAverage"]
