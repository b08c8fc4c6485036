"""Pretrained speech encoders behind one contract, found by name in :data:`ENCODERS`.

Every encoder is a :class:`PretrainedEncoder` (an ``nn.Module``) with a
``sample_rate``, ``num_layers``, ``hidden_size``, ``frame_shift``, an
``identity`` string for cache keys (weights SHA-256, or repository@revision),
its own ``frame_lengths(lengths)`` rule, and ``forward(waveform (B, T),
lengths (B,)) -> EncoderOutput`` (every layer's ``(B, T', H)`` output and the
valid frames). One ``source`` string names an encoder for features and models
(:func:`open_encoder`, :mod:`vocalis.encoders.select`). Built in: ``ge2e``
(:mod:`vocalis.encoders.ge2e`, the GE2E speaker encoder) and ``hf``
(:mod:`vocalis.encoders.hf`: wav2vec 2.0, HuBERT, WavLM and other
``transformers`` audio encoders, from a local folder or the Hugging Face cache;
``pip install 'vocalis[ssl]'``).

Importing this package imports neither torch nor any optional package; names
are loaded on first use, and loading :data:`ENCODERS` registers the built-ins.

Example:
    >>> import vocalis.encoders as enc
    >>> enc.ENCODERS.names()
    ['ge2e', 'hf']
"""

from __future__ import annotations

import importlib

from vocalis.lazy import lazy_exports

_LAZY = {
    "ENCODERS": "vocalis.encoders.base",
    "EncoderOutput": "vocalis.encoders.base",
    "PretrainedEncoder": "vocalis.encoders.base",
    "load_encoder": "vocalis.encoders.base",
    "encoder_class": "vocalis.encoders.select",
    "encoder_identity": "vocalis.encoders.select",
    "mix_layers": "vocalis.encoders.select",
    "LayerMix": "vocalis.encoders.select",
    "open_encoder": "vocalis.encoders.select",
    "GE2EEncoder": "vocalis.encoders.ge2e",
    "HFEncoder": "vocalis.encoders.hf",
}

#: Modules that register built-in encoders (none of them imports an optional package).
_BUILTINS = ("vocalis.encoders.ge2e", "vocalis.encoders.hf")


def _register_builtins(module: str) -> None:
    for name in _BUILTINS:
        importlib.import_module(name)


__all__ = [
    "ENCODERS",
    "EncoderOutput",
    "GE2EEncoder",
    "HFEncoder",
    "LayerMix",
    "PretrainedEncoder",
    "encoder_class",
    "encoder_identity",
    "load_encoder",
    "mix_layers",
    "open_encoder",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, before_import=_register_builtins)
