"""IEMOCAP: Interactive Emotional Dyadic Motion Capture database.

Busso et al., Language Resources and Evaluation 42(4), 2008. Five sessions,
each a dyad of one female and one male actor (10 speakers), improvised and
scripted dialogues. Utterance labels come from the evaluation files
``Session*/dialog/EmoEvaluation/<dialog>.txt``, lines like::

    [6.2901 - 8.2357]	Ses01F_impro01_F000	neu	[2.5000, 2.5000, 2.5000]

and audio from ``Session*/sentences/wav/<dialog>/<utterance>.wav``.

The raw categorical codes are kept: ``neu hap sad ang sur fea dis fru exc oth``
plus ``xxx`` (no majority among the annotators). Map them with the builtin
``iemocap4`` (the usual 4 classes) or ``4class`` label map. The speaker is the
session plus the gender letter of the utterance (``Ses01F_impro01_M003`` is
spoken by ``Ses01M``, the male actor of session 1).

Columns: ``path, label, id, speaker, gender, session, dialog, method (impro |
script), start, end, valence, activation, dominance``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Literal

from vocalis.data.corpora import CORPORA
from vocalis.data.corpora.base import check_root, log
from vocalis.data.manifest import Manifest
from vocalis.errors import DataError

LABELS = ("neu", "hap", "sad", "ang", "sur", "fea", "dis", "fru", "exc", "oth", "xxx")

LINE = re.compile(
    r"\[(?P<start>[\d.]+) - (?P<end>[\d.]+)\]\s+(?P<utt>Ses\S+)\s+(?P<label>\w+)\s+"
    r"\[(?P<v>[\d.]+), (?P<a>[\d.]+), (?P<d>[\d.]+)\]"
)
UTT = re.compile(r"Ses(?P<session>\d\d)[FM]_(?P<method>impro|script)\S*_(?P<gender>[FM])\d+")


@CORPORA.register("iemocap")
def prepare_iemocap(
    root: str | os.PathLike,
    *,
    sessions: Sequence[int] | None = None,
    method: Literal["impro", "script", "both"] = "both",
    missing: Literal["error", "skip"] = "error",
) -> Manifest:
    """Manifest of IEMOCAP with its raw labels.

    Args:
        root: the release folder holding ``Session1`` ... ``Session5``.
        sessions: session numbers to keep (default all found).
        method: ``impro``, ``script`` or ``both``.
        missing: a labelled utterance whose wav is absent raises (``error``) or
            is skipped with a warning (``skip``).

    Raises:
        DataError: no ``Session*/dialog/EmoEvaluation/*.txt``, a missing wav with
            ``missing="error"``, or bad options.
    """
    if method not in ("impro", "script", "both"):
        raise DataError(f"iemocap: method={method!r}; expected impro, script or both")
    if missing not in ("error", "skip"):
        raise DataError(f"iemocap: missing={missing!r}; expected error or skip")
    base = check_root(root, "IEMOCAP", "Session1/ ... Session5/")
    session_dirs = sorted(p for p in base.glob("Session*") if p.is_dir())
    if sessions is not None:
        wanted = {int(s) for s in sessions}
        session_dirs = [
            p for p in session_dirs if p.name[7:].isdigit() and int(p.name[7:]) in wanted
        ]
    label_files = [
        f
        for s in session_dirs
        for f in sorted((s / "dialog" / "EmoEvaluation").glob("*.txt"))
        if not f.name.startswith(".")
    ]
    if not label_files:
        raise DataError(
            f"IEMOCAP root {root}: no Session*/dialog/EmoEvaluation/*.txt label files; "
            "expected the release folder holding Session1 ... Session5"
        )
    rows, absent = [], []
    for lf in label_files:
        session_dir = lf.parents[2]
        dialog = lf.stem
        for line in lf.read_text(encoding="utf-8", errors="replace").splitlines():
            m = LINE.match(line.strip())
            if not m:
                continue
            u = UTT.fullmatch(m["utt"])
            if u is None:
                raise DataError(f"{lf}: cannot parse the utterance id '{m['utt']}'")
            if method != "both" and u["method"] != method:
                continue
            wav = session_dir / "sentences" / "wav" / dialog / f"{m['utt']}.wav"
            if not wav.is_file():
                absent.append(wav)
                continue
            rows.append(
                {
                    "path": str(wav),
                    "label": m["label"],
                    "id": m["utt"],
                    "speaker": f"Ses{u['session']}{u['gender']}",
                    "gender": "female" if u["gender"] == "F" else "male",
                    "session": str(int(u["session"])),
                    "dialog": dialog,
                    "method": u["method"],
                    "start": m["start"],
                    "end": m["end"],
                    "valence": m["v"],
                    "activation": m["a"],
                    "dominance": m["d"],
                }
            )
    if absent and missing == "error":
        raise DataError(
            f"IEMOCAP: {len(absent)} labelled utterance(s) have no wav (first: {absent[0]}); "
            "complete the corpus or pass missing='skip'"
        )
    if absent:
        log.warning(
            "IEMOCAP: skipped %d utterance(s) without wav (first: %s)", len(absent), absent[0]
        )
    if not rows:
        raise DataError(f"IEMOCAP root {root}: no labelled utterances with audio found")
    return Manifest(rows, source=f"iemocap:{base}")
