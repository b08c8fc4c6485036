"""Features: MFCC, log-mel energies, pitch, their combinations, and pretrained encoder frames.

Pure torch, batched; each extractor answers ``frame_lengths(lengths)`` (spectral
and pitch features share one centred 10 ms grid; ``encoder`` frames follow the
encoder's: GE2E 10 ms, wav2vec 2.0 20 ms), found by name in :data:`FEATURES`::

    >>> import torch
    >>> from vocalis.features import FEATURES, FeatureConfig, extract
    >>> extract(torch.randn(16000), FeatureConfig(name="mfcc")).shape
    torch.Size([40, 101])
    >>> FEATURES.names()  # doctest: +NORMALIZE_WHITESPACE
    ['encoder', 'fbank', 'ge2e', 'mfbe', 'mfbe_only', 'mfbe_pitch', 'mfcc', 'mfcc_only',
     'mfcc_pitch', 'npy', 'pitch', 'pitch_only', 'precomputed', 'ptm', 'ptm_mfbe_only',
     'ptm_mfbe_pitch', 'ptm_mfcc_only', 'ptm_mfcc_pitch', 'ptm_pitch_only', 'waveform']

Also here: normalisation (:mod:`~vocalis.features.normalize`), the content-keyed
cache (:mod:`~vocalis.features.cache`) and file-level extraction
(:mod:`~vocalis.features.pipeline`).

Importing the package (or its torch-free modules :mod:`~vocalis.features.config`,
:mod:`~vocalis.features.cache`, :mod:`~vocalis.features.hashindex`,
:mod:`~vocalis.features.result`) does not import torch: every name below is
loaded on first use, and loading :data:`FEATURES` (or any torch-backed name)
registers all built-in extractors. ``FeatureConfig``, ``PipelineConfig``,
``FeatureCache`` and ``ExtractionResult`` stay torch-free.
"""

from __future__ import annotations

import importlib

from vocalis.lazy import lazy_exports

#: Names of the built-in extractors, known without importing torch (CLI choices).
#: ``tests/features/test_features_cache_fast.py`` checks it against :data:`FEATURES`.
BUILTIN_FEATURES = (
    "encoder",
    "fbank",
    "ge2e",
    "mfbe",
    "mfbe_only",
    "mfbe_pitch",
    "mfcc",
    "mfcc_only",
    "mfcc_pitch",
    "npy",
    "pitch",
    "pitch_only",
    "precomputed",
    "ptm",
    "ptm_mfbe_only",
    "ptm_mfbe_pitch",
    "ptm_mfcc_only",
    "ptm_mfcc_pitch",
    "ptm_pitch_only",
    "waveform",
)

_LAZY = {
    "FEATURES": "vocalis.features.base",
    "FeatureExtractor": "vocalis.features.base",
    "build_extractor": "vocalis.features.base",
    "extract": "vocalis.features.base",
    "feature_dim": "vocalis.features.base",
    "frame_lengths": "vocalis.features.base",
    "FeatureConfig": "vocalis.features.config",
    "Pitch": "vocalis.features.pitch",
    "PitchOnly": "vocalis.features.pitch",
    "estimate_pitch": "vocalis.features.pitch",
    "MFCC": "vocalis.features.spectral",
    "Fbank": "vocalis.features.spectral",
    "FeatureCache": "vocalis.features.cache",
    "GlobalMVN": "vocalis.features.normalize",
    "SpeakerMVN": "vocalis.features.normalize",
    "cmvn": "vocalis.features.normalize",
    "ExtractionResult": "vocalis.features.result",
    "PipelineConfig": "vocalis.features.config",
    "compute_features": "vocalis.features.pipeline",
    "extract_many": "vocalis.features.pipeline",
}

#: Modules that import neither torch nor numpy (loading them registers nothing).
_LIGHT = ("vocalis.features.config", "vocalis.features.cache", "vocalis.features.result")


def _register_builtins(module: str) -> None:
    """Torch-backed modules need the built-in extractors registered first."""
    if module not in _LIGHT:
        importlib.import_module("vocalis.features.combos")


__all__ = [
    "BUILTIN_FEATURES",
    "FEATURES",
    "MFCC",
    "ExtractionResult",
    "Fbank",
    "FeatureCache",
    "FeatureConfig",
    "FeatureExtractor",
    "GlobalMVN",
    "PipelineConfig",
    "Pitch",
    "PitchOnly",
    "SpeakerMVN",
    "build_extractor",
    "cmvn",
    "compute_features",
    "estimate_pitch",
    "extract",
    "extract_many",
    "feature_dim",
    "frame_lengths",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY, before_import=_register_builtins)
