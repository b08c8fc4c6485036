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
  (:func:`mix_layers`).

Example:
    >>> encoder_class("ge2e").__name__, encoder_class("/models/wav2vec2-base").__name__
    ('GE2EEncoder', 'HFEncoder')
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

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
    output: EncoderOutput, positions: Sequence[int], weights: Sequence[float] | None = None
) -> torch.Tensor:
    """One ``(B, T', H)`` tensor from chosen layers.

    The layer itself, their mean, or a weighted mean (weights divided by their sum).

    Args:
        output: an encoder's output.
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
    states = [output.hidden_states[p] for p in positions]
    if len(states) == 1:
        return states[0]
    stacked = torch.stack(states)
    if weights is None or len(weights) == 0:
        return stacked.mean(0)
    w = torch.as_tensor(weights, dtype=stacked.dtype, device=stacked.device)
    return torch.einsum("l,l...->...", w / w.sum(), stacked)


__all__ = [
    "encoder_class",
    "encoder_identity",
    "mix_layers",
    "open_encoder",
]
