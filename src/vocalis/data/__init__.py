"""Data: manifests, corpus preparers, label maps and speaker-independent splits.

Importing the package imports neither numpy nor pandas: every name is loaded
from its module on first use, and :mod:`vocalis.data.manifest` (``Manifest``,
``read_manifest``) needs only the standard library.

Example:
    >>> from vocalis.data import Manifest, LabelEncoder
    >>> m = Manifest([{"path": "/x/03a01Wa.wav", "label": "anger", "speaker": "03"}])
    >>> LabelEncoder.from_labels(m.labels()).classes
    ('anger',)
"""

from __future__ import annotations

import inspect
import os
from typing import TYPE_CHECKING, Any

from vocalis.errors import ConfigError
from vocalis.lazy import lazy_exports
from vocalis.registry import did_you_mean

if TYPE_CHECKING:
    from vocalis.data.labels import LabelMap
    from vocalis.data.manifest import Manifest

_LAZY = {
    "COLUMN_ALIASES": "vocalis.data.manifest",
    "Manifest": "vocalis.data.manifest",
    "read_manifest": "vocalis.data.manifest",
    "LabelEncoder": "vocalis.data.labels",
    "LabelMap": "vocalis.data.labels",
    "apply_label_map": "vocalis.data.labels",
    "encode_known": "vocalis.data.labels",
    "builtin_label_maps": "vocalis.data.labels",
    "load_label_map": "vocalis.data.labels",
    "CORPORA": "vocalis.data.corpora",
    "SPLITTERS": "vocalis.data.splits",
    "Fold": "vocalis.data.splits",
    "GroupKFold": "vocalis.data.splits",
    "LeaveOneSpeakerOut": "vocalis.data.splits",
    "SpeakerDependentWarning": "vocalis.data.splits",
    "SpeakerHoldout": "vocalis.data.splits",
    "StratifiedGroupKFold": "vocalis.data.splits",
    "StratifiedHoldout": "vocalis.data.splits",
    "SplitParts": "vocalis.data.splits",
    "TrainValTestSplit": "vocalis.data.splits",
    "stratified_val_split": "vocalis.data.splits",
}


def corpus_options(name: str) -> dict[str, Any]:
    """The keyword options of corpus ``name`` with their defaults."""
    from vocalis.data.corpora import CORPORA

    sig = inspect.signature(CORPORA.get(name))
    return {
        p.name: p.default
        for p in sig.parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def prepare(
    name: str,
    root: str | os.PathLike,
    *,
    label_map: str | os.PathLike | LabelMap | None = None,
    unmapped: str = "error",
    **options: Any,
) -> Manifest:
    """Build the manifest of corpus ``name`` found at ``root``.

    Args:
        name: a corpus in :data:`CORPORA` (``emodb``, ``ravdess``, ``folder``, ...).
        root: the corpus folder.
        label_map: optional builtin map name (``4class``) or YAML path applied to
            ``label`` (the original stays in ``label_orig``).
        unmapped: ``error`` or ``drop`` for labels the map does not list.
        **options: the corpus preparer's own keyword options (see :func:`corpus_options`).

    Raises:
        ConfigError: unknown corpus or option (with the valid ones listed).
        DataError: the folder does not look like the corpus, or a label is unmapped.
    """
    from vocalis.data.corpora import CORPORA
    from vocalis.data.labels import apply_label_map

    fn = CORPORA.get(name)
    valid = corpus_options(name)
    for key in options:
        if key not in valid:
            raise ConfigError(
                f"corpus '{name}' has no option '{key}'{did_you_mean(key, list(valid))}; "
                f"valid options: {', '.join(valid) or 'none'}"
            )
    manifest = fn(root, **options)
    if label_map is not None:
        manifest = apply_label_map(manifest, label_map, unmapped=unmapped)
    return manifest


__all__ = [
    "COLUMN_ALIASES",
    "CORPORA",
    "SPLITTERS",
    "Fold",
    "GroupKFold",
    "LabelEncoder",
    "LabelMap",
    "LeaveOneSpeakerOut",
    "Manifest",
    "SpeakerDependentWarning",
    "SpeakerHoldout",
    "SplitParts",
    "StratifiedGroupKFold",
    "StratifiedHoldout",
    "TrainValTestSplit",
    "apply_label_map",
    "builtin_label_maps",
    "corpus_options",
    "encode_known",
    "load_label_map",
    "prepare",
    "read_manifest",
    "stratified_val_split",
]

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
