"""CREMA-D: Crowd-sourced Emotional Multimodal Actors Dataset.

Cao et al., IEEE Trans. Affective Computing 5(4), 2014. 7442 clips by 91
actors, 12 sentences, 6 emotions. Files ``AudioWAV/1001_DFA_ANG_XX.wav``:
actor id, sentence code, emotion (ANG, DIS, FEA, HAP, NEU, SAD) and intensity
(LO, MD, HI, XX unspecified).

Columns: ``path, label, id, speaker, sentence, intensity`` and ``gender``/``age``
when ``VideoDemographics.csv`` (ActorID, Age, Sex, ...) is found under root.
"""

from __future__ import annotations

import csv
import os
import re

from vocalis.data.corpora import CORPORA
from vocalis.data.corpora.base import check_root, find_files, match_files
from vocalis.data.manifest import Manifest
from vocalis.errors import DataError

EMOTIONS = {
    "ANG": "anger",
    "DIS": "disgust",
    "FEA": "fear",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
INTENSITIES = {"LO": "low", "MD": "medium", "HI": "high", "XX": "unspecified", "X": "unspecified"}

PATTERN = re.compile(
    r"(?P<actor>\d{4})_(?P<sentence>[A-Z]{3})_(?P<emotion>[A-Z]{3})_(?P<intensity>[A-Z]{1,2})\.wav"
)


def _demographics(root) -> dict[str, tuple[str, str]]:
    for path in sorted(root.rglob("VideoDemographics.csv")):
        with open(path, newline="", encoding="utf-8-sig") as fh:
            return {
                r["ActorID"].strip(): (r.get("Sex", "").strip().lower(), r.get("Age", "").strip())
                for r in csv.DictReader(fh)
                if r.get("ActorID")
            }
    return {}


@CORPORA.register("crema-d")
def prepare_crema_d(root: str | os.PathLike) -> Manifest:
    """Manifest of CREMA-D.

    Args:
        root: the corpus folder (holding ``AudioWAV/``) or ``AudioWAV`` itself.

    Raises:
        DataError: no CREMA-D-named wav files, or an unknown emotion code.
    """
    base = check_root(root, "CREMA-D", "AudioWAV/1001_DFA_ANG_XX.wav ...")
    matched = match_files(find_files(base), PATTERN, "CREMA-D")
    if not matched:
        raise DataError(
            f"CREMA-D root {root}: no files named like 1001_DFA_ANG_XX.wav; expected the "
            "corpus folder holding AudioWAV/"
        )
    demo = _demographics(base)
    rows = []
    for path, m in matched:
        if m["emotion"] not in EMOTIONS:
            raise DataError(
                f"{path}: unknown CREMA-D emotion code {m['emotion']}; expected one of "
                f"{', '.join(EMOTIONS)}"
            )
        row = {
            "path": str(path),
            "label": EMOTIONS[m["emotion"]],
            "speaker": m["actor"],
            "sentence": m["sentence"],
            "intensity": INTENSITIES.get(m["intensity"], m["intensity"].lower()),
        }
        if demo:
            gender, age = demo.get(m["actor"], ("", ""))
            row.update(gender=gender, age=age)
        rows.append(row)
    return Manifest(rows, source=f"crema-d:{base}")
