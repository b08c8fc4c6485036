"""Where a ``--checkpoint`` points: the bundled model, a run folder, ``RUN/model``, a file.

Torch-free, so that every verb can refuse a checkpoint that is not there in one
line before the model (or torch) is loaded; :func:`resolve_checkpoint` is the one
resolver (:mod:`vocalis.inference.pipeline` and the CLI both use it).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from vocalis.errors import ModelError

__all__ = ["BUNDLED_MODEL", "MODEL_FILE", "bundled_checkpoint", "resolve_checkpoint"]

#: The run folder's deployable checkpoint (:data:`vocalis.checkpoint.MODEL_FILE`;
#: a test keeps the two equal without this module importing torch).
MODEL_FILE = "model.pt"

#: File name of the model shipped in ``vocalis/resources/models``.
BUNDLED_MODEL = "default_emotion.pt"


def bundled_checkpoint() -> Path:
    """Path of the default emotion model shipped with this install.

    Raises:
        ModelError: this install has no bundled model.
    """
    try:
        res = resources.files("vocalis.resources") / "models" / BUNDLED_MODEL
        path = Path(str(res))
        if path.is_file():
            return path
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    raise ModelError(
        "no bundled model in this install; pass --checkpoint runs/<name> "
        f"(vocalis/resources/models/{BUNDLED_MODEL} is missing)"
    )


def resolve_checkpoint(checkpoint: str | os.PathLike | None) -> str | os.PathLike:
    """The checkpoint file ``--checkpoint`` names; every verb resolves it here.

    Accepted: None (the bundled model); a run folder (its ``model.pt``, else the
    ``checkpoints/best.pt`` of a run that has not finished); ``RUN/model`` (->
    ``RUN/model.pt``); any checkpoint file (returned as is). Each may be a local
    path or an fsspec URL (``gs://bucket/runs/exp1/model``).

    Raises:
        ModelError: None and no bundled model, or a folder holding no checkpoint.

    Example:
        >>> import tempfile
        >>> run = Path(tempfile.mkdtemp())
        >>> _ = (run / "model.pt").write_bytes(b"")
        >>> resolve_checkpoint(run).name, resolve_checkpoint(run / "model").name
        ('model.pt', 'model.pt')
    """
    if checkpoint is None:
        return bundled_checkpoint()
    from vocalis.io import as_path

    path = as_path(checkpoint)
    if path.is_dir():
        for candidate in (path / MODEL_FILE, path / "checkpoints" / "best.pt"):
            if candidate.is_file():
                return candidate
        raise ModelError(
            f"{checkpoint}: is a folder without {MODEL_FILE} or checkpoints/best.pt; pass a run "
            "folder, RUN/model or a checkpoint file (e.g. runs/<name>/checkpoints/last.pt)"
        )
    if not path.exists() and path.with_suffix(".pt").is_file():
        return path.with_suffix(".pt")
    return checkpoint
