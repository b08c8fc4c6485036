"""Features: MFCC, log-mel filterbank energies, pitch and their combinations.

Pure torch, batched, on one 10 ms frame grid (``num_frames(T) = 1 + T // hop``),
found by name in :data:`FEATURES`::

    >>> import torch
    >>> from vocalis.features import FeatureConfig, extract
    >>> extract(torch.randn(16000), FeatureConfig(name="mfcc")).shape
    torch.Size([40, 101])
    >>> FEATURES.names()  # doctest: +NORMALIZE_WHITESPACE
    ['fbank', 'mfbe', 'mfbe_only', 'mfbe_pitch', 'mfcc', 'mfcc_only', 'mfcc_pitch',
     'pitch', 'pitch_only']

Also here: normalisation (:mod:`~vocalis.features.normalize`), the content-keyed
cache (:mod:`~vocalis.features.cache`) and file-level extraction
(:mod:`~vocalis.features.pipeline`).
"""

from vocalis.features import combos as _combos  # noqa: F401  (registers)
from vocalis.features.base import (
    FEATURES,
    FeatureExtractor,
    build_extractor,
    extract,
    feature_dim,
    frame_lengths,
)
from vocalis.features.config import FeatureConfig, num_frames
from vocalis.features.pitch import Pitch, PitchOnly, estimate_pitch
from vocalis.features.spectral import MFCC, Fbank

_LAZY = {
    "FeatureCache": "vocalis.features.cache",
    "GlobalMVN": "vocalis.features.normalize",
    "SpeakerMVN": "vocalis.features.normalize",
    "cmvn": "vocalis.features.normalize",
    "ExtractionResult": "vocalis.features.pipeline",
    "PipelineConfig": "vocalis.features.pipeline",
    "compute_features": "vocalis.features.pipeline",
    "extract_many": "vocalis.features.pipeline",
}


def __getattr__(name: str):
    """Import the cache, normalisation and file pipeline on first use."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vocalis.features' has no attribute '{name}'")


__all__ = [
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
    "num_frames",
]
