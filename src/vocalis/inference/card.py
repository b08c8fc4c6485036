r"""The model card of the bundled model, and its limits in one line (for the web page).

The bundled emotion model ships with ``vocalis/resources/models/MODEL_CARD.md``,
a Markdown table with a ``Limits`` row. :func:`limits_line` keeps that row's
first two sentences, which the web page shows under the upload button with a
link to the whole card (``GET /model-card``). A checkpoint of your own has no
card: :func:`model_card` returns ``None`` for it.

Example:
    >>> card = "| | |\n|---|---|\n| Limits | Acted speech. Not for decisions. More text. |"
    >>> limits_line(card)
    'Acted speech. Not for decisions.'
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

__all__ = ["CARD_FILE", "limits_line", "model_card"]

#: File name of the bundled model's card, next to the model in ``vocalis/resources/models``.
CARD_FILE = "MODEL_CARD.md"


def model_card(checkpoint_source: str | os.PathLike) -> str | None:
    """The Markdown card of ``checkpoint_source`` when it is the bundled model, else ``None``."""
    try:
        folder = Path(str(resources.files("vocalis.resources") / "models"))
    except (ModuleNotFoundError, FileNotFoundError):
        return None
    card = folder / CARD_FILE
    try:
        same = Path(checkpoint_source).resolve().parent == folder.resolve()
    except (OSError, ValueError):
        same = False
    return card.read_text(encoding="utf-8") if same and card.is_file() else None


def limits_line(card: str, sentences: int = 2) -> str | None:
    """The first ``sentences`` sentences of the card's ``Limits`` row, Markdown removed."""
    match = re.search(r"^\|\s*Limits\s*\|(.+?)\|\s*$", card, flags=re.M)
    if match is None:
        return None
    text = re.sub(r"[`*_]", "", match.group(1)).strip()
    parts = re.split(r"(?<=[.!?])\s+", text)
    return " ".join(parts[:sentences])
