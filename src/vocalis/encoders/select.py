"""Choosing an encoder and its layers: one ``source`` string, layer numbers, a layer mix.

Features (:mod:`vocalis.features.pretrained`, ``encoder_stats``) and models name an
encoder the same way:

* ``source``: a registered encoder name other than ``hf`` (``ge2e``: the GE2E
  speaker encoder that ships with Vocalis, its checkpoint in ``weights``), or else
  a folder written by ``save_pretrained`` / a model id in the Hugging Face cache,
  read by the ``hf`` encoder (:mod:`vocalis.encoders.hf`);
* ``layers``: layer numbers as the encoder numbers them
  (:meth:`~vocalis.encoders.base.PretrainedEncoder.layer_index`; ``-1`` the last);
* a mix of those layers: one layer as it is, their average, or a weighted average
  (:func:`mix_layers`; :class:`LayerMix` learns the weights).

Example:
    >>> encoder_class("ge2e").__name__, encoder_class("/models/wav2vec2-base").__name__
    ('GE2EEncoder', 'HFEncoder')
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from vocalis.encoders.base import ENCODERS, EncoderOutput, PretrainedEncoder


def encoder_class(source: str) -> type[PretrainedEncoder]:
    """The encoder class that reads ``source``: a registered name, else ``hf``.

    A registered name wins over a folder of the same name; give ``./ge2e`` for a folder.
    """
    import vocalis.encoders.ge2e
    import vocalis.encoders.hf  # noqa: F401   transformers is imported only on load)

    source = str(source)
    if source in ENCODERS and source != "hf":
        return ENCODERS.get(source)
    return ENCODERS.get("hf")


def open_encoder(
    source: str, layers: Sequence[int] = (-1,), *, weights: str = "", revision: str = ""
) -> PretrainedEncoder:
    """The encoder ``source`` names, with its pretrained weights, in eval mode.

    Args:
        source: ``ge2e`` (or another registered name), or a ``save_pretrained``
            folder / Hugging Face cache model id.
        layers: the layer numbers the caller reads (GE2E loads only up to the
            deepest, so layers 1-2 work with the weights shipped with Vocalis).
        weights: a weights file for encoders that read one (GE2E; ``""``: its default).
        revision: revision of a cached model id (``""``: ``main``).

    Raises:
        ConfigError: weights or model not found (one line saying where it looked).
    """
    encoder = encoder_class(source).from_source(str(source), tuple(layers), weights, revision)
    return encoder.eval()


def encoder_identity(
    source: str, layers: Sequence[int] = (-1,), *, weights: str = "", revision: str = ""
) -> str:
    """The identity :func:`open_encoder` would give, for cache keys, without building it.

    See :attr:`~vocalis.encoders.base.PretrainedEncoder.identity`.

    Raises:
        ConfigError: weights or model not found.
    """
    cls = encoder_class(source)
    return cls.source_identity(str(source), tuple(layers), weights, revision)


def mix_layers(
    output: EncoderOutput | Sequence[torch.Tensor],
    positions: Sequence[int],
    weights: Sequence[float] | torch.Tensor | None = None,
) -> torch.Tensor:
    """One ``(B, T', H)`` tensor from chosen layers.

    The layer itself, their mean, or a weighted mean (weights divided by their sum).

    Args:
        output: an encoder's output, or its layers' tensors (any one shape, e.g.
            ``(B, H, T')``: the mix is element-wise).
        positions: indices into ``output.hidden_states``
            (:meth:`~vocalis.encoders.base.PretrainedEncoder.layer_index`).
        weights: one weight per position (a tensor keeps its gradient: learned
            weights); ``None`` or empty: the plain mean.

    Shape:
        num_layers x (B, T', H) -> (B, T', H).

    Example:
        >>> h = (torch.zeros(1, 2, 1), torch.ones(1, 2, 1), torch.full((1, 2, 1), 4.0))
        >>> out = EncoderOutput(h, torch.tensor([2]))
        >>> mix_layers(out, [2]).flatten().tolist(), mix_layers(out, [0, 1]).flatten().tolist()
        ([4.0, 4.0], [0.5, 0.5])
        >>> mix_layers(out, [1, 2], [3.0, 1.0]).flatten().tolist()
        [1.75, 1.75]
    """
    hidden = output.hidden_states if isinstance(output, EncoderOutput) else output
    states = [hidden[p] for p in positions]
    if len(states) == 1:
        return states[0]
    stacked = torch.stack(states)
    if weights is None or len(weights) == 0:
        return stacked.mean(0)
    w = torch.as_tensor(weights, dtype=stacked.dtype, device=stacked.device)
    return torch.einsum("l,l...->...", w / w.sum(), stacked)


class LayerMix(nn.Module):
    """Learned softmax weights over chosen layers, their mean, or one layer as it is.

    The ``ssl`` model mixes an encoder's layers with it; ``sv_fusion`` the layers
    of a precomputed PTM input.

    Args:
        positions: indices into the layers (:attr:`EncoderOutput.hidden_states`).
        learned: learn the weights; else the plain mean.
        init: the learned weights' starting values, one positive number per position
            (normalised to sum 1; the logits start at their logarithms); ``None``: equal.

    Shape:
        L x (B, T', H) -> (B, T', H) (or any one shape per layer).

    Raises:
        ValueError: ``init`` has not one positive number per position.

    Example:
        >>> [round(w, 4) for w in LayerMix([0, 1], learned=True, init=[1, 3]).weights.tolist()]
        [0.25, 0.75]
    """

    def __init__(
        self, positions: Sequence[int], learned: bool, init: Sequence[float] | None = None
    ) -> None:
        super().__init__()
        self.positions = list(positions)
        self.logits: nn.Parameter | None = None
        if init is not None and (len(init) != len(self.positions) or min(init) <= 0):
            raise ValueError(
                f"layer weights init {list(init)}: expected {len(self.positions)} positive "
                "numbers, one per layer"
            )
        if learned and len(self.positions) > 1:
            start = torch.zeros(len(self.positions))
            if init is not None:
                w = torch.tensor([float(v) for v in init])
                start = torch.log(w / w.sum())
            self.logits = nn.Parameter(start)

    @property
    def weights(self) -> torch.Tensor | None:
        """The layer weights (softmax of the learned logits), or None for a mean / one layer."""
        return None if self.logits is None else torch.softmax(self.logits, 0)

    def forward(self, output: EncoderOutput | Sequence[torch.Tensor]) -> torch.Tensor:
        """Mix the chosen layers of ``output`` (see :func:`mix_layers`)."""
        return mix_layers(output, self.positions, self.weights)


__all__ = [
    "LayerMix",
    "encoder_class",
    "encoder_identity",
    "mix_layers",
    "open_encoder",
]
