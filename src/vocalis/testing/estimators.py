"""A scripted :class:`~vocalis.training.estimator.Fitted` for testing runners and back-ends.

Cross-validation runners, back-ends (local, Ray, submitit) and reports only need a
fitted model that answers :meth:`predict_proba` deterministically and cheaply.
:class:`ScriptedFitted` reads each row's true label and is right on two rows in three
(wrong, on the next class, on every id whose number is a multiple of 3), so pooled
metrics have known values and a mixed-up row order shows.

Example:
    >>> rows = [{"id": "u1", "label": "b"}, {"id": "u3", "label": "b"}]
    >>> ScriptedFitted(("a", "b"), {}).predict_proba(rows, [0, 1]).argmax(1).tolist()
    [1, 0]
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np


@dataclasses.dataclass
class ScriptedFitted:
    """A fitted single-head model whose answers follow the rows' ids.

    Args:
        classes: class names (the columns of :meth:`predict_proba`).
        info: what the fit reports (``best_error``, ``best_epoch``...).
        on_predict: called with the predicted row indices (a test records them).
    """

    classes: tuple[str, ...]
    info: dict[str, Any]
    on_predict: Callable[[np.ndarray], None] | None = None

    def predict_proba(self, rows: Any, index: Sequence[int]) -> np.ndarray:
        """``(len(index), K)``: 0.7 on the true class (the next one for ids ``u<3k>``), else 0.1."""
        if self.on_predict is not None:
            self.on_predict(np.asarray(index, dtype=int))
        out = np.full((len(index), len(self.classes)), 0.1)
        for k, i in enumerate(index):
            r = rows[int(i)]
            c = self.classes.index(r["label"])
            if int(r["id"][1:]) % 3 == 0:
                c = (c + 1) % len(self.classes)
            out[k, c] = 0.7
        return out

    def predict_heads(self, rows: Any, index: Sequence[int]) -> None:
        """``None``: one head."""
        return None

    def save(self, path: str | os.PathLike) -> None:
        """Write a placeholder ``model.pt`` (the runner only checks it exists)."""
        Path(path).write_text("scripted")


__all__ = ["ScriptedFitted"]
