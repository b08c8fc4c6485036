"""Tiny randomly initialised pretrained encoders for tests (a few hundred kB on disk).

:func:`save_tiny_hf_encoder` writes a ``transformers`` model with the usual 7-layer
convolutional feature encoder (20 ms frames, a 25 ms receptive field) but only 8
channels, a 32-wide transformer of 2 layers, into a folder that
:func:`vocalis.encoders.open_encoder` reads like a real checkpoint. Needs the
``transformers`` package (``pip install 'vocalis[ssl]'``).

Example:
    >>> folder = save_tiny_hf_encoder(tmp / "w2v")  # doctest: +SKIP
    >>> open_encoder(str(folder)).num_layers  # doctest: +SKIP
    3
"""

from __future__ import annotations

import os
from pathlib import Path

#: Config of the tiny models: 7 convolutions (strides 5*2^6 = 320 samples), 2 layers of 32.
TINY_HF_CONFIG = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=64,
    conv_dim=(8,) * 7,
    conv_stride=(5, 2, 2, 2, 2, 2, 2),
    conv_kernel=(10, 3, 3, 3, 3, 2, 2),
    num_conv_pos_embeddings=16,
    num_conv_pos_embedding_groups=2,
    vocab_size=8,
)

#: Architectures by name: (config class, model class) of ``transformers``.
TINY_HF_ARCHS = {
    "wav2vec2": ("Wav2Vec2Config", "Wav2Vec2Model"),
    "wavlm": ("WavLMConfig", "WavLMModel"),
    "hubert": ("HubertConfig", "HubertModel"),
}


def save_tiny_hf_encoder(
    folder: str | os.PathLike,
    arch: str = "wav2vec2",
    norm: str = "group",
    seed: int = 0,
    **overrides: object,
) -> Path:
    """Save a tiny random ``transformers`` speech encoder with ``save_pretrained``.

    Args:
        folder: where to write it (created).
        arch: ``wav2vec2``, ``wavlm`` or ``hubert``.
        norm: the feature encoder's norm: ``group`` (whole-input norm, items run
            one by one) or ``layer`` (per frame, the batch runs at once).
        seed: torch seed of the random weights.
        **overrides: config values replacing :data:`TINY_HF_CONFIG`'s.

    Returns:
        The folder.
    """
    import torch
    import transformers

    config_cls, model_cls = TINY_HF_ARCHS[arch]
    torch.manual_seed(seed)
    options = {**TINY_HF_CONFIG, **overrides}
    config = getattr(transformers, config_cls)(
        **options, feat_extract_norm=norm, do_stable_layer_norm=norm == "layer"
    )
    folder = Path(folder)
    getattr(transformers, model_cls)(config).save_pretrained(folder)
    return folder


__all__ = ["TINY_HF_ARCHS", "TINY_HF_CONFIG", "save_tiny_hf_encoder"]
