"""SAVEE: Surrey Audio-Visual Expressed Emotion.

Haq & Jackson, 2009. Four male speakers (DC, JE, JK, KL), 480 utterances,
7 emotions coded by letters: a anger, d disgust, f fear, h happiness,
n neutral, sa sadness, su surprise. Two layouts are accepted: the flat
``DC_a01.wav`` and the original ``AudioData/DC/a01.wav``.

Columns: ``path, label, id, speaker, gender, sentence``.
"""

from __future__ import annotations

import os
import re

from vocalis.data.corpora import CORPORA
from vocalis.data.corpora.base import check_root, find_files
from vocalis.data.manifest import Manifest
from vocalis.errors import DataError

EMOTIONS = {
    "a": "anger",
    "d": "disgust",
    "f": "fear",
    "h": "happiness",
    "n": "neutral",
    "sa": "sadness",
    "su": "surprise",
}

FLAT = re.compile(r"(?P<speaker>[A-Z]{2})_(?P<emotion>sa|su|[adfhn])(?P<sentence>\d\d)\.wav")
NESTED = re.compile(r"(?P<emotion>sa|su|[adfhn])(?P<sentence>\d\d)\.wav")
SPEAKER_DIR = re.compile(r"[A-Z]{2}")


@CORPORA.register("savee")
def prepare_savee(root: str | os.PathLike) -> Manifest:
    """Manifest of SAVEE.

    Args:
        root: folder holding ``DC_a01.wav``-style files or ``AudioData/DC/a01.wav``.

    Raises:
        DataError: no SAVEE-named wav files.
    """
    base = check_root(root, "SAVEE", "DC_a01.wav ... or AudioData/DC/a01.wav ...")
    rows = []
    for path in find_files(base):
        m = FLAT.fullmatch(path.name)
        speaker = m["speaker"] if m else None
        if m is None and SPEAKER_DIR.fullmatch(path.parent.name):
            m = NESTED.fullmatch(path.name)
            speaker = path.parent.name
        if m is None:
            continue
        rows.append(
            {
                "path": str(path),
                "label": EMOTIONS[m["emotion"]],
                "speaker": speaker,
                "gender": "male",
                "sentence": m["sentence"],
                "id": f"{speaker}_{m['emotion']}{m['sentence']}",
            }
        )
    if not rows:
        raise DataError(
            f"SAVEE root {root}: no files named like DC_a01.wav or AudioData/DC/a01.wav"
        )
    return Manifest(rows, source=f"savee:{base}")
