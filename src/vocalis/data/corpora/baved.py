"""BAVED: Basic Arabic Vocal Emotions Dataset.

Isolated Arabic words (7 words, folders ``0/`` .. ``6/``) spoken at three
levels of expressed emotion by about 60 speakers (github:
40uf411/Basic-Arabic-Vocal-Emotions-Dataset). File names
``speaker-gender-age-word-level-record.wav`` (e.g. ``12-m-21-3-2-104.wav``).
Levels: 0 ``low`` (tired), 1 ``neutral``, 2 ``high`` (strong emotion).

Speaker ids are prefixed (``baved_12`` by default) so that a manifest joined
with another corpus (EmoDB's ``03``...) never merges two people into one.

Columns: ``path, label, id, speaker, gender, age, word, record``.
"""

from __future__ import annotations

import os
import re

from vocalis.data.corpora import CORPORA
from vocalis.data.corpora.base import check_root, find_files, match_files
from vocalis.data.manifest import Manifest
from vocalis.errors import DataError

#: Emotion level digit -> label.
LEVELS = {"0": "low", "1": "neutral", "2": "high"}

PATTERN = re.compile(
    r"(?P<speaker>\d+)-(?P<gender>[mf])-(?P<age>\d+)-(?P<word>[0-6])-(?P<level>[012])"
    r"-(?P<record>\d+)\.wav"
)


@CORPORA.register("baved")
def prepare_baved(root: str | os.PathLike, *, speaker_prefix: str = "baved_") -> Manifest:
    """Manifest of BAVED.

    Args:
        root: the corpus folder (holding ``0/`` .. ``6/``).
        speaker_prefix: put before every speaker id (``""``: the bare numbers).

    Returns:
        One row per clip; labels ``low``, ``neutral``, ``high`` (the emotion level).

    Raises:
        DataError: no BAVED-named wav files under ``root``.
    """
    base = check_root(root, "BAVED", "the corpus folder holding 0/ .. 6/ with 12-m-21-3-2-104.wav")
    matched = match_files(find_files(base), PATTERN, "BAVED")
    if not matched:
        raise DataError(
            f"BAVED root {root}: no files named like 12-m-21-3-2-104.wav "
            "(speaker-gender-age-word-level-record); expected the corpus folder holding 0/ .. 6/"
        )
    rows = [
        {
            "path": str(path),
            "label": LEVELS[m["level"]],
            "id": f"baved_{path.stem}",
            "speaker": f"{speaker_prefix}{m['speaker']}",
            "gender": {"m": "male", "f": "female"}[m["gender"]],
            "age": m["age"],
            "word": m["word"],
            "record": m["record"],
        }
        for path, m in matched
    ]
    return Manifest(rows, source=f"baved:{base}")
