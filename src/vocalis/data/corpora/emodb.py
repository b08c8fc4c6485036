"""Berlin Database of Emotional Speech (EmoDB).

Burkhardt et al., "A Database of German Emotional Speech", Interspeech 2005.
535 utterances by 10 actors (5 female, 5 male), 10 German sentences, 7 emotions.
File names ``SSTNNEV.wav`` (e.g. ``03a01Fa.wav``): speaker ``03``, text ``a01``,
emotion letter ``F``, take ``a``.

Columns: ``path, label, id, speaker, gender, text, take, age`` and, when the
authors' perception test ``erkennung.txt`` lies next to ``wav/``,
``recognition`` and ``naturalness`` (percent of 20 listeners).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from vocalis.data.corpora import CORPORA
from vocalis.data.corpora.base import check_root, find_files, match_files
from vocalis.data.manifest import Manifest
from vocalis.errors import DataError

#: Emotion letter (German initial) -> English label.
EMOTIONS = {
    "W": "anger",  # Wut / Aerger
    "L": "boredom",  # Langeweile
    "E": "disgust",  # Ekel
    "A": "fear",  # Angst
    "F": "happiness",  # Freude
    "T": "sadness",  # Trauer
    "N": "neutral",
}

#: Speaker -> (gender, age at recording), from the corpus documentation.
SPEAKERS = {
    "03": ("male", 31),
    "08": ("female", 34),
    "09": ("female", 21),
    "10": ("male", 32),
    "11": ("male", 26),
    "12": ("male", 30),
    "13": ("female", 32),
    "14": ("female", 35),
    "15": ("male", 25),
    "16": ("female", 31),
}

PATTERN = re.compile(
    r"(?P<speaker>\d\d)(?P<text>[ab]\d\d)(?P<emotion>[WLEAFTN])(?P<take>[a-z])\.wav"
)


def _perception(path: Path) -> dict[str, tuple[str, str]]:
    """``erkennung.txt`` -> {file name: (recognition %, naturalness %)}."""
    out = {}
    for line in path.read_text(encoding="latin-1").splitlines()[1:]:
        cells = [c.replace("\xa0", "").strip() for c in line.split("\t")]
        if len(cells) >= 4 and cells[1].endswith(".wav"):
            out[cells[1]] = (cells[2].replace(",", "."), cells[3].replace(",", "."))
    return out


@CORPORA.register("emodb")
def prepare_emodb(root: str | os.PathLike, *, min_recognition: float | None = None) -> Manifest:
    """Manifest of EmoDB.

    Args:
        root: the corpus folder (holding ``wav/``) or the ``wav`` folder itself.
        min_recognition: keep only utterances that at least this percentage of
            listeners recognised (needs ``erkennung.txt``); ``None`` keeps all.

    Returns:
        One row per utterance; labels anger, boredom, disgust, fear, happiness,
        sadness, neutral.

    Raises:
        DataError: no EmoDB-named wav files under ``root``.
    """
    base = check_root(root, "EmoDB", "the corpus folder holding wav/03a01Fa.wav ...")
    wav_dir = base / "wav" if (base / "wav").is_dir() else base
    matched = match_files(find_files(wav_dir), PATTERN, "EmoDB")
    if not matched:
        raise DataError(
            f"EmoDB root {root}: no files named like 03a01Fa.wav in {wav_dir}; expected the "
            "corpus folder holding wav/ (or wav/ itself)"
        )
    erk = wav_dir.parent / "erkennung.txt"
    perception = _perception(erk) if erk.is_file() else {}
    if min_recognition is not None and not perception:
        raise DataError(
            f"EmoDB: min_recognition needs {erk} (the authors' perception test); add it "
            "or drop the option"
        )
    rows = []
    for path, m in matched:
        gender, age = SPEAKERS.get(m["speaker"], ("", ""))
        row = {
            "path": str(path),
            "label": EMOTIONS[m["emotion"]],
            "speaker": m["speaker"],
            "gender": gender,
            "text": m["text"],
            "take": m["take"],
            "age": age,
        }
        if perception:
            rec, nat = perception.get(path.name, ("", ""))
            if min_recognition is not None and (not rec or float(rec) < min_recognition):
                continue
            row.update(recognition=rec, naturalness=nat)
        rows.append(row)
    return Manifest(rows, source=f"emodb:{base}")
