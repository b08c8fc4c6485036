"""Corpora: turn a corpus folder into a :class:`~vocalis.data.manifest.Manifest`.

Each corpus lives in ``corpora/<corpus>.py`` and registers itself here, so
``vocalis prepare --help`` and :func:`vocalis.data.prepare` list it:

==============  ===========================================================
``baved``       BAVED: Arabic words, 3 emotion levels, about 60 speakers
``emodb``       Berlin EmoDB: speaker, gender, age, text, take, 7 emotions
``ravdess``     RAVDESS audio: 8 emotions, intensity, statement, 24 actors
``crema-d``     CREMA-D: 91 actors, 6 emotions, sentence, intensity
``tess``        Toronto emotional speech set: 2 speakers (OAF, YAF), 7 emotions
``iemocap``     IEMOCAP: raw 10-code labels + V/A/D, speaker = session + gender
``savee``       SAVEE: 4 male speakers, 7 emotions
``folder``      one sub-folder per label; optional speaker regex
``uid-folders`` ``<uid>/waveform.EXT`` + ``metadata.json`` + split CSVs of UIDs
==============  ===========================================================

Register your own with ``@CORPORA.register("name")`` on a function
``(root, **options) -> Manifest``.
"""

from __future__ import annotations

from vocalis.registry import Registry

CORPORA: Registry = Registry("corpus")

# Importing the modules registers the corpora (they only need the standard library).
from vocalis.data.corpora import (  # noqa: E402, F401
    baved,
    crema_d,
    emodb,
    folder,
    iemocap,
    ravdess,
    savee,
    tess,
    uid_folders,
)

__all__ = ["CORPORA"]
