"""A prediction CSV that can be resumed: rows already written are skipped on rerun.

New rows are appended in chunks; each append rewrites the file through a
temporary sibling and an atomic rename, so an interrupted run leaves either the
old file or the old file plus whole new rows, never a torn line.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

from vocalis.errors import DataError
from vocalis.io import atomic_open, exists, read_bytes


def prediction_columns(classes: Sequence[str], heads: Sequence[Any] | None = None) -> list[str]:
    """``id, path, label, confidence, speech, p_<class>...`` (then every head's columns).

    ``label`` and ``confidence`` are empty when no speech was detected; ``speech``
    is the share of speech found by VAD (empty when the check was off). A multi-head
    model adds per head ``<head>`` (its answer as text) and ``<head>:<output>`` (the
    probability of each class or label, the value of each regression column).

    Example:
        >>> prediction_columns(["angry", "sad"])
        ['id', 'path', 'label', 'confidence', 'speech', 'p_angry', 'p_sad']
    """
    columns = ["id", "path", "label", "confidence", "speech", *[f"p_{c}" for c in classes]]
    for h in heads or []:
        columns += [h.name, *[f"{h.name}:{c}" for c in h.classes]]
    return columns


def prediction_row(pred: Any, classes: Sequence[str]) -> dict[str, str]:
    """One CSV row of a :class:`~vocalis.inference.Prediction` (every head's columns too)."""
    row = {
        "id": pred.id,
        "path": pred.path,
        "label": "" if pred.label is None else pred.label,
        "confidence": "" if pred.confidence is None else f"{pred.confidence:.6f}",
        "speech": "" if pred.speech is None else f"{pred.speech:.3f}",
    }
    row.update({f"p_{c}": f"{pred.probs[c]:.6f}" for c in classes})
    from vocalis.inference.predictor import head_answer

    for name, answer in (getattr(pred, "heads", None) or {}).items():
        row[name] = head_answer(answer)
        values = answer.get("probs") or answer.get("values") or {}
        row.update({f"{name}:{c}": f"{v:.6g}" for c, v in values.items()})
    return row


class ResumableCSV:
    """Append-only CSV keyed on one column or a tuple of columns.

    Args:
        path: the CSV (local or fsspec URL); created on the first append.
        columns: the header; an existing file must have exactly this header.
        key: column (or columns) whose values mark rows as done.

    Attributes:
        done: key values already in the file (tuples for a tuple key).

    Raises:
        DataError: the existing file has another header (another model's classes).
    """

    def __init__(
        self, path: str | os.PathLike, columns: Sequence[str], key: str | tuple[str, ...] = "path"
    ) -> None:
        self.path = path
        self.columns = list(columns)
        self.key = key
        self._text = ""
        self.done: set[Any] = set()
        if exists(path):
            self._text = read_bytes(path).decode("utf-8")
            reader = csv.DictReader(io.StringIO(self._text))
            header = list(reader.fieldnames or [])
            if header and header != self.columns:
                raise DataError(
                    f"{path}: existing CSV has columns {','.join(header)}, this run writes "
                    f"{','.join(self.columns)}; write to a new --out file or delete it"
                )
            self.done = {self._key(row) for row in reader}
            self.done.discard(None)
            if self._text and not self._text.endswith("\n"):
                self._text += "\n"

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Add ``rows`` (dicts keyed by column) atomically."""
        if not rows:
            return
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n")
        if not self._text:
            writer.writeheader()
        writer.writerows(rows)
        text = self._text + buf.getvalue()
        with atomic_open(self.path, "w") as fh:
            fh.write(text)
        self._text = text
        self.done.update(self._key(r) for r in rows)

    def _key(self, row: Mapping[str, Any]) -> Any:
        if isinstance(self.key, str):
            return str(row[self.key]) if row.get(self.key) else None
        return tuple(str(row.get(k) or "") for k in self.key)
