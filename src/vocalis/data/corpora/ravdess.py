"""RAVDESS: Ryerson Audio-Visual Database of Emotional Speech and Song.

Livingstone & Russo, PLoS ONE 13(5), 2018. 24 actors (odd ids male, even
female). Audio files ``Actor_XX/MM-CC-EE-II-SS-RR-AA.wav`` with seven 2-digit
fields: modality (01 AV, 02 video, 03 audio), vocal channel (01 speech,
02 song), emotion (01 neutral, 02 calm, 03 happy, 04 sad, 05 angry,
06 fearful, 07 disgust, 08 surprised), intensity (01 normal, 02 strong),
statement (01 "Kids are talking by the door", 02 "Dogs are sitting by the
door"), repetition (01, 02), actor (01-24).

Columns: ``path, label, id, speaker, gender, channel, intensity, statement,
repetition`` (speaker = the 2-digit actor id).
"""

from __future__ import annotations

import os
import re
from typing import Literal

from vocalis.data.corpora import CORPORA
from vocalis.data.corpora.base import check_root, find_files, match_files
from vocalis.data.manifest import Manifest
from vocalis.errors import DataError

EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
CHANNELS = {"01": "speech", "02": "song"}
INTENSITIES = {"01": "normal", "02": "strong"}

PATTERN = re.compile(
    r"(?P<modality>0[1-3])-(?P<channel>0[12])-(?P<emotion>0[1-8])-(?P<intensity>0[12])-"
    r"(?P<statement>0[12])-(?P<repetition>0[12])-(?P<actor>\d\d)\.wav"
)


@CORPORA.register("ravdess")
def prepare_ravdess(
    root: str | os.PathLike, *, channel: Literal["speech", "song", "both"] = "speech"
) -> Manifest:
    """Manifest of the RAVDESS audio files.

    Args:
        root: folder holding the ``Actor_XX`` folders (searched recursively, so
            ``Audio_Speech_Actors_01-24/`` works too).
        channel: ``speech`` (the usual SER set, 1440 files), ``song`` or ``both``.

    Raises:
        DataError: no RAVDESS-named wav files, or a bad ``channel``.
    """
    if channel not in ("speech", "song", "both"):
        raise DataError(f"ravdess: channel={channel!r}; expected speech, song or both")
    base = check_root(root, "RAVDESS", "Actor_01/03-01-05-01-02-01-01.wav ...")
    matched = match_files(find_files(base), PATTERN, "RAVDESS")
    if not matched:
        raise DataError(
            f"RAVDESS root {root}: no files named like Actor_01/03-01-05-01-02-01-01.wav; "
            "expected the folder holding the Actor_XX folders"
        )
    rows = []
    for path, m in matched:
        ch = CHANNELS[m["channel"]]
        if channel != "both" and ch != channel:
            continue
        actor = int(m["actor"])
        rows.append(
            {
                "path": str(path),
                "label": EMOTIONS[m["emotion"]],
                "speaker": m["actor"],
                "gender": "male" if actor % 2 else "female",
                "channel": ch,
                "intensity": INTENSITIES[m["intensity"]],
                "statement": m["statement"],
                "repetition": m["repetition"],
            }
        )
    if not rows:
        raise DataError(f"RAVDESS root {root}: no {channel} files; try channel='both'")
    return Manifest(rows, source=f"ravdess:{base}")
