"""TESS: Toronto Emotional Speech Set.

Dupuis & Pichora-Fuller, University of Toronto, 2010. Two female speakers,
``OAF`` (older, 64) and ``YAF`` (younger, 26), say 200 target words in the
carrier phrase "Say the word ___" in 7 emotions: 2800 files. Layout
``OAF_angry/OAF_back_angry.wav``; the emotion is the file name's suffix (``ps``
= pleasant surprise) or, failing that, the folder name's.

Columns: ``path, label, id, speaker, gender, word``. Labels: angry, disgust,
fear, happy, neutral, pleasant_surprise, sad.
"""

from __future__ import annotations

import os
import re

from vocalis.data.corpora import CORPORA
from vocalis.data.corpora.base import check_root, find_files, match_files
from vocalis.data.manifest import Manifest
from vocalis.errors import DataError

#: Spellings found in file and folder names -> label.
EMOTIONS = {
    "angry": "angry",
    "anger": "angry",
    "disgust": "disgust",
    "fear": "fear",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "ps": "pleasant_surprise",
    "pleasant_surprise": "pleasant_surprise",
    "pleasant_surprised": "pleasant_surprise",
    "surprise": "pleasant_surprise",
    "surprised": "pleasant_surprise",
}
AGES = {"OAF": 64, "YAF": 26}

PATTERN = re.compile(r"(?P<speaker>OAF|YAF)_(?P<word>[^_]+)_(?P<emotion>.+)\.wav", re.IGNORECASE)


def _emotion(text: str) -> str | None:
    return EMOTIONS.get(text.strip().lower().replace(" ", "_"))


@CORPORA.register("tess")
def prepare_tess(root: str | os.PathLike) -> Manifest:
    """Manifest of TESS.

    Args:
        root: folder holding the ``OAF_*`` / ``YAF_*`` folders (searched recursively).

    Raises:
        DataError: no TESS-named files, or a file whose emotion cannot be read
            from its name or folder.
    """
    base = check_root(root, "TESS", "OAF_angry/OAF_back_angry.wav ...")
    matched = match_files(find_files(base), PATTERN, "TESS")
    if not matched:
        raise DataError(
            f"TESS root {root}: no files named like OAF_back_angry.wav or YAF_back_ps.wav; "
            "expected the folder holding OAF_*/ and YAF_*/"
        )
    rows = []
    for path, m in matched:
        label = _emotion(m["emotion"])
        if label is None:
            folder = path.parent.name.split("_", 1)
            label = _emotion(folder[1]) if len(folder) == 2 else None
        if label is None:
            raise DataError(
                f"{path}: cannot tell the TESS emotion from '{m['emotion']}' or folder "
                f"'{path.parent.name}'; expected one of {', '.join(sorted(set(EMOTIONS)))}"
            )
        speaker = m["speaker"].upper()
        rows.append(
            {
                "path": str(path),
                "label": label,
                "speaker": speaker,
                "gender": "female",
                "word": m["word"].lower(),
                "age": AGES[speaker],
            }
        )
    return Manifest(rows, source=f"tess:{base}")
