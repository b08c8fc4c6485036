"""What every corpus preparer shares: root checks and file discovery.

A corpus preparer is a function ``prepare_<corpus>(root, **options) -> Manifest``
registered in :data:`vocalis.data.corpora.CORPORA`. It validates that ``root``
looks like the corpus, walks it once and returns absolute paths.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

from vocalis.errors import DataError

log = logging.getLogger("vocalis.data.corpora")

#: File suffixes the generic preparers treat as audio (lower case).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".m4a")


def check_root(root: str | os.PathLike, corpus: str, expected: str) -> Path:
    """``root`` as an absolute :class:`Path`; DataError unless it is a directory.

    Args:
        root: the folder the user gave.
        corpus: corpus name for the message ("EmoDB").
        expected: what the folder should hold, for the message.
    """
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DataError(f"{corpus} root {root} is not a directory; expected {expected}")
    return path.resolve()


def find_files(root: Path, suffixes: Iterable[str] = (".wav",)) -> list[Path]:
    """All files under ``root`` (recursively) whose suffix is in ``suffixes``, sorted.

    Hidden files and folders (starting with ``.``, e.g. macOS ``._x.wav``) are skipped.
    """
    wanted = {s.lower() for s in suffixes}
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if name.startswith(".") or Path(name).suffix.lower() not in wanted:
                continue
            out.append(Path(dirpath) / name)
    return sorted(out)


def match_files(
    files: Iterable[Path], pattern: re.Pattern[str], corpus: str
) -> list[tuple[Path, re.Match[str]]]:
    """Files whose name matches ``pattern``; the others are logged once and skipped."""
    matched, skipped = [], []
    for f in files:
        m = pattern.fullmatch(f.name)
        (matched.append((f, m)) if m else skipped.append(f))
    if skipped:
        log.warning(
            "%s: skipped %d file(s) whose name does not follow the corpus scheme (first: %s)",
            corpus,
            len(skipped),
            skipped[0],
        )
    return matched
