"""What to predict: files, folders of audio and manifest CSVs, as (path, id) pairs."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path

from vocalis.errors import DataError
from vocalis.io import PATH_TYPES, is_url, read_bytes

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

    Relative audio paths are resolved against the CSV's folder, legacy column
    names (``file_path``, ...) are accepted, as in :func:`vocalis.data.read_manifest`.

    Raises:
        DataError: unreadable file, or no ``path`` column.
    """
    from vocalis.data import read_manifest
    from vocalis.data.manifest import COLUMN_ALIASES

    name = str(path)
    try:
        text = read_bytes(path).decode("utf-8-sig")
    except (FileNotFoundError, IsADirectoryError):
        raise DataError(f"{name}: manifest not found; check the path") from None
    except UnicodeDecodeError:
        raise DataError(f"{name}: manifest is not UTF-8 text; save it as UTF-8 CSV") from None
    header = next(csv.reader(io.StringIO(text)), [])
    columns = {COLUMN_ALIASES.get(h.strip(), h.strip()) for h in header}
    if "path" not in columns:
        raise DataError(
            f"{name}: no 'path' column (found: {', '.join(header) or 'nothing'}); a manifest "
            "to predict needs a path column"
        )
    if "label" in columns:
        manifest = read_manifest(path)
    else:  # read_manifest insists on labels, which prediction does not need
        from vocalis.data.manifest import Manifest

        manifest = Manifest(read_manifest_text(text, name), source=name)
    return list(zip(manifest.paths, manifest.ids, strict=False))


def read_manifest_text(text: str, name: str) -> list[dict[str, str]]:
    """Rows of a label-less manifest CSV with paths resolved like ``read_manifest``."""
    from vocalis.data.manifest import COLUMN_ALIASES

    reader = csv.DictReader(io.StringIO(text))
    base = name.rsplit("/", 1)[0] if is_url(name) else str(Path(name).parent)
    rows = []
    for row in reader:
        row = {COLUMN_ALIASES.get(k.strip(), k.strip()): (v or "").strip() for k, v in row.items()}
        cell = row.get("path", "")
        if not cell:
            continue
        if not (is_url(cell) or os.path.isabs(cell)):
            cell = f"{base}/{cell}" if is_url(name) else str(Path(base) / cell)
        row["path"] = cell
        rows.append(row)
    if not rows:
        raise DataError(f"{name}: manifest has a header but no rows")
    return rows


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
