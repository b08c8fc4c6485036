"""What to predict: files, folders of audio and manifest CSVs, as (path, id) pairs."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from vocalis.errors import DataError
from vocalis.io import PATH_TYPES, is_url

#: File endings searched for in folders (whatever libsndfile decodes).
AUDIO_EXTENSIONS = (
    ".wav",
    ".flac",
    ".ogg",
    ".oga",
    ".opus",
    ".mp3",
    ".aif",
    ".aiff",
    ".au",
    ".w64",
)


def _stem(path: str) -> str:
    name = path.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def audio_files(folder: str | os.PathLike) -> list[str]:
    """Audio files under ``folder`` (recursively, sorted), by :data:`AUDIO_EXTENSIONS`."""
    root = Path(folder)
    return sorted(
        str(p) for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
    )


def manifest_items(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``(path, id)`` rows of a manifest CSV; a ``label`` column is not needed.

    Read by :func:`vocalis.data.read_manifest` (``required=("path",)``), so relative
    audio paths, legacy column names (``file_path``, ...) and refusals are the same as
    for training manifests.

    Raises:
        DataError: unreadable file, no ``path`` column, an empty path or duplicate ids.
    """
    from vocalis.data import read_manifest

    manifest = read_manifest(path, required=("path",))
    return list(zip(manifest.paths, manifest.ids, strict=True))


def collect_inputs(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
) -> list[tuple[str, str]]:
    """Expand files, folders and manifest CSVs into ``(path, id)`` pairs, in order.

    A pair given twice is listed once; manifest rows that share a file under
    different ids are all kept.

    Args:
        inputs: one input or a list; folders are searched recursively for audio,
            ``.csv`` files are read as manifests, anything else is an audio file.

    Raises:
        DataError: nothing to predict (an empty folder, no inputs).

    Example:
        >>> collect_inputs(["a.wav", "b.flac"])
        [('a.wav', 'a'), ('b.flac', 'b')]
    """
    if isinstance(inputs, PATH_TYPES):
        inputs = [inputs]
    items: dict[tuple[str, str], None] = {}  # (path, id): manifest rows sharing a file stay
    for raw in inputs:
        text = str(raw)
        if not is_url(text) and Path(text).is_dir():
            found = audio_files(text)
            if not found:
                raise DataError(
                    f"{text}: folder holds no audio files ({', '.join(AUDIO_EXTENSIONS)})"
                )
            for p in found:
                items.setdefault((p, _stem(p)))
        elif text.lower().endswith(".csv"):
            for p, uid in manifest_items(text):
                items.setdefault((p, uid))
        else:
            items.setdefault((text, _stem(text)))
    if not items:
        raise DataError("nothing to predict: give audio files, folders or a manifest CSV")
    return list(items)
