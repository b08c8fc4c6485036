"""Any corpus laid out as one sub-folder per label: ``root/<label>/**/<file>.<ext>``.

There is no speaker column unless ``speaker_regex`` extracts one from each
file's name (then LOSO and other speaker-independent splits
become possible). The id is the relative path without its suffix
(``happy/s01_take2``), unique by construction.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

from vocalis.data.corpora import CORPORA
from vocalis.data.corpora.base import AUDIO_EXTENSIONS, check_root, find_files
from vocalis.data.manifest import Manifest
from vocalis.errors import DataError


@CORPORA.register("folder")
def prepare_folder(
    root: str | os.PathLike,
    *,
    speaker_regex: str | None = None,
    extensions: Sequence[str] = AUDIO_EXTENSIONS,
) -> Manifest:
    r"""Manifest of a folder-per-label corpus.

    Args:
        root: folder whose sub-folders are the labels.
        speaker_regex: optional regular expression searched in each file's
            name (``spk03_x.wav`` of ``happy/spk03_x.wav``); the speaker is its ``speaker``
            named group, else its first group, else the whole match. Example:
            ``"(?P<speaker>spk\d+)_"``.
        extensions: audio suffixes to collect (case-insensitive).

    Raises:
        DataError: no label sub-folders with audio, an invalid regex, or a file
            the regex does not match.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> for f in ["sad/s1_a.wav", "sad/s2_b.wav", "happy/s1_c.wav"]:
        ...     (d / f).parent.mkdir(exist_ok=True); (d / f).touch()
        >>> m = prepare_folder(d, speaker_regex=r"(s\d)_")
        >>> m.column("id"), m.speakers
        (['happy/s1_c', 'sad/s1_a', 'sad/s2_b'], ['s1', 's1', 's2'])
    """
    base = check_root(root, "folder", "one sub-folder per label holding audio files")
    exts = tuple(e if e.startswith(".") else f".{e}" for e in extensions)
    try:
        regex = re.compile(speaker_regex) if speaker_regex else None
    except re.error as err:
        raise DataError(f"folder: speaker_regex {speaker_regex!r} is invalid ({err})") from None
    rows = []
    labels = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    for label_dir in labels:
        for path in find_files(label_dir, exts):
            rel = path.relative_to(base).as_posix()
            row = {"path": str(path), "label": label_dir.name, "id": rel.rsplit(".", 1)[0]}
            if regex is not None:
                m = regex.search(path.name)
                if m is None:
                    raise DataError(
                        f"{path}: speaker_regex {speaker_regex!r} does not match the file name "
                        f"'{path.name}'; fix the pattern or rename the file"
                    )
                groups = m.groupdict()
                row["speaker"] = groups.get("speaker") or (m.group(1) if m.groups() else m.group(0))
            rows.append(row)
    if not rows:
        raise DataError(
            f"folder root {root}: no audio files ({', '.join(exts)}) in label sub-folders; "
            "expected root/<label>/<file>"
        )
    return Manifest(rows, source=f"folder:{base}")
