"""Model kinds: how a checkpoint's model becomes a waveform -> probabilities module.

:data:`MODEL_KINDS` maps a checkpoint's ``model.kind`` to a builder
``(ckpt: Checkpoint) -> nn.Module`` whose module takes a tier-0 waveform batch and
its lengths and returns class probabilities::

    waveform (B, T) float32, lengths (B,) int64 samples  ->  probs (B, K)

with K = ``len(ckpt.classes)``, classes in checkpoint order. Tier 0 up to and
including level normalisation has already run (level normalisation is added in
front for exported graphs, see :meth:`vocalis.inference.Pipeline.waveform_to_probs`).

Kinds shipped with Vocalis register themselves in the module named in
:data:`PROVIDERS`, imported on first use; a plug-in registers its own::

    >>> from vocalis.inference.kinds import MODEL_KINDS
    >>> @MODEL_KINDS.register("my_kind")  # doctest: +SKIP
    ... def build(ckpt):
    ...     return MyModule(ckpt)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from vocalis.registry import Registry

if TYPE_CHECKING:
    from torch import Tensor, nn

    from vocalis.checkpoint import Checkpoint

#: ``model.kind`` -> builder ``(Checkpoint) -> nn.Module`` (waveform, lengths) -> probs.
MODEL_KINDS: Registry[Callable[[Checkpoint], nn.Module]] = Registry("model kind")

#: Module that registers each built-in kind, imported when the kind is first needed.
PROVIDERS = {"neural": "vocalis.inference.neural", "ensemble": "vocalis.ensemble"}


@runtime_checkable
class SpeakerModel(Protocol):
    """A built module that may need each clip's speaker (per-speaker statistics).

    A functionals ensemble trained with ``speaker_norm`` standardises every
    speaker with that speaker's own statistics, so the clips of one speaker are
    scored together (:meth:`vocalis.inference.Predictor.predict_speakers`).

    Attributes:
        needs_speakers: True when :meth:`predict_speakers` is the only way to score.
    """

    needs_speakers: bool

    def predict_speakers(
        self, waveform: Tensor, lengths: Tensor, speakers: Sequence[str] | None
    ) -> Tensor:
        """``(B, K)`` probabilities; ``speakers``: the B clips' speaker ids."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """A built module that gives utterance embeddings (``vocalis embed``).

    ``kind`` is ``pt``, ``ft`` or ``st`` and ``pooling`` ``mean`` or ``sum``; what each
    means is the model kind's (a neural model's backbone, head and shared layers;
    an ensemble's functionals). A kind the model lacks raises a one-line ``ModelError``.
    """

    def embed(self, waveform: Tensor, lengths: Tensor, kind: str, pooling: str) -> Tensor:
        """``(B, E)`` embeddings of ``waveform`` (B, T) with ``lengths`` (B,) samples."""
        ...


def kind_builder(kind: str) -> Callable[[Checkpoint], nn.Module]:
    """The builder registered for ``kind`` (importing its provider first).

    Raises:
        ConfigError: no builder for that kind (the message lists the known kinds).
    """
    if kind not in MODEL_KINDS and kind in PROVIDERS:
        importlib.import_module(PROVIDERS[kind])
    return MODEL_KINDS.get(kind)
