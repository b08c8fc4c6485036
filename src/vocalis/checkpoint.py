"""The checkpoint format: everything needed to rebuild a model's whole pipeline.

A checkpoint is a ``torch.save`` dict (loaded with ``weights_only=True``) with:

- ``format`` = ``"vocalis-checkpoint"``, ``format_version`` (int), ``vocalis_version``;
- ``model``: ``{"name", "config", "input_dim", "num_classes"}`` for
  :func:`vocalis.models.build_model`; ``model_state``: the state dict;
- ``pipeline``: ``{"tier0": Tier0Config dict, "features": FeatureConfig dict}``;
- ``normalization``: ``{"mode": "global"|"utterance"|"speaker"|"none", "state": dict|None}``;
- ``labels``: :meth:`vocalis.data.LabelEncoder.to_dict` output;
- ``config``: the resolved experiment config (plain dict);
- training state, in run checkpoints only: ``optimizer``, ``scheduler``, ``scaler``,
  ``epoch``, ``step``, ``rng``, ``best``, ``history``.

Prediction, export and the service read the same keys, so nothing is configured
twice.
"""

from __future__ import annotations

import io
import os
from typing import Any

import torch

from vocalis import __version__
from vocalis.errors import ModelError
from vocalis.io import atomic_open, read_bytes

FORMAT = "vocalis-checkpoint"
FORMAT_VERSION = 1
REQUIRED_KEYS = ("model", "model_state", "pipeline", "normalization", "labels")


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> None:
    """Write ``payload`` (see the module docstring) atomically to ``path``."""
    missing = [k for k in REQUIRED_KEYS if k not in payload]
    if missing:
        raise ModelError(f"{path}: checkpoint payload lacks {', '.join(missing)}")
    data = {"format": FORMAT, "format_version": FORMAT_VERSION, "vocalis_version": __version__}
    data.update(payload)
    with atomic_open(path, "wb") as fh:
        torch.save(data, fh)


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> dict[str, Any]:
    """Read and validate a checkpoint written by :func:`save_checkpoint`.

    Raises:
        ModelError: the file is missing, not a Vocalis checkpoint, from a newer
            format version, or lacks a required key.
    """
    try:
        raw = read_bytes(path)
    except (FileNotFoundError, IsADirectoryError):
        raise ModelError(f"{path}: checkpoint not found") from None
    try:
        data = torch.load(io.BytesIO(raw), map_location=map_location, weights_only=True)
    except Exception as err:
        raise ModelError(f"{path}: not a readable checkpoint ({type(err).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelError(f"{path}: not a Vocalis checkpoint (no format marker)")
    if int(data.get("format_version", 0)) > FORMAT_VERSION:
        raise ModelError(
            f"{path}: checkpoint format {data['format_version']} is newer than this Vocalis "
            f"({__version__}, format {FORMAT_VERSION}); upgrade vocalis"
        )
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise ModelError(f"{path}: checkpoint lacks {', '.join(missing)}")
    return data


#: Keys a run checkpoint adds for resuming; prediction, export and serving never read them.
TRAINING_KEYS = (
    "optimizer",
    "scheduler",
    "scaler",
    "rng",
    "best",
    "history",
    "best_val",
    "epoch_step",
    "epoch_lr",
    "partial",
    "finished",
    "early_stopping",
)


def slim_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> dict[str, Any]:
    """Write ``src`` without its training state to ``dst`` (a model to ship).

    The result loads everywhere a run checkpoint does (prediction, export, the
    service) but cannot resume training. Returns the written payload.
    """
    data = load_checkpoint(src)
    slim = {k: v for k, v in data.items() if k not in TRAINING_KEYS}
    for key in ("format", "format_version", "vocalis_version"):
        slim.pop(key, None)
    save_checkpoint(dst, slim)
    return slim
