"""The predictions table: one row per test item, written as ``predictions.csv``.

Columns: ``path,speaker,true_label,pred_label,correct,confidence,p_<class>...``
(one probability column per class, in class order). Every evaluation writes it;
pooled cross-validation metrics, error analysis, reports and comparisons read
it back.

Example:
    >>> rows = [
    ...     {"path": "a.wav", "speaker": "03", "true_label": "ang", "pred_label": "ang",
    ...      "p_ang": 0.8, "p_neu": 0.2},
    ...     {"path": "b.wav", "speaker": "03", "true_label": "neu", "pred_label": "ang",
    ...      "p_ang": 0.9, "p_neu": 0.1},
    ... ]
    >>> pred = Predictions.from_rows(rows)
    >>> pred.classes, pred.correct.tolist(), pred.confidence.tolist()
    (['ang', 'neu'], [True, False], [0.8, 0.9])
    >>> error_analysis(pred)[0]["path"]
    'b.wav'
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vocalis.errors import DataError
from vocalis.io import read_bytes, write_text

__all__ = [
    "BASE_COLUMNS",
    "Predictions",
    "concat_predictions",
    "error_analysis",
    "prediction_rows",
    "read_predictions",
    "score",
    "write_predictions",
]

#: Fixed leading columns of ``predictions.csv``; ``p_<class>`` columns follow.
BASE_COLUMNS = ("path", "speaker", "true_label", "pred_label", "correct", "confidence")


@dataclass(frozen=True)
class Predictions:
    """Predictions of one evaluation, as arrays.

    Attributes:
        path: audio path (or id) of each item.
        speaker: speaker of each item ("" when unknown).
        true_label: reference label.
        pred_label: predicted label.
        confidence: probability of the predicted class (NaN when unknown).
        probs: class probabilities, columns in ``classes`` order, or None.
        classes: class names (the ``p_<class>`` columns, else the labels seen).

    Shape:
        path, speaker, true_label, pred_label, confidence: (N,); probs: (N, C).
    """

    path: np.ndarray
    speaker: np.ndarray
    true_label: np.ndarray
    pred_label: np.ndarray
    confidence: np.ndarray
    probs: np.ndarray | None
    classes: list[str]

    def __len__(self) -> int:
        return len(self.path)

    @property
    def correct(self) -> np.ndarray:
        """(N,) bool: predicted label equals the reference."""
        return self.true_label == self.pred_label

    @classmethod
    def from_rows(
        cls, rows: Iterable[Mapping[str, Any]], classes: Sequence[str] | None = None
    ) -> Predictions:
        """Build from dicts with the CSV column names (``p_<class>`` optional).

        ``correct`` is recomputed; ``confidence`` defaults to the probability of
        the predicted class.
        """
        rows = list(rows)
        if classes is None:
            classes = sorted({k[2:] for r in rows for k in r if k.startswith("p_")})
        classes = [str(c) for c in classes]
        for i, r in enumerate(rows):
            for key in ("path", "true_label", "pred_label"):
                if key not in r:
                    raise DataError(
                        f"prediction row {i} has no '{key}' column; expected columns "
                        f"{', '.join(BASE_COLUMNS)}, p_<class>..."
                    )
        have_probs = bool(classes) and all(f"p_{c}" in r for r in rows for c in classes)
        probs = (
            np.array([[float(r[f"p_{c}"]) for c in classes] for r in rows], dtype=np.float64)
            if have_probs and rows
            else None
        )
        if not classes:
            labels = {str(r["true_label"]) for r in rows} | {str(r["pred_label"]) for r in rows}
            classes = sorted(labels)
        pred = np.array([str(r["pred_label"]) for r in rows], dtype=object)
        conf = []
        for i, r in enumerate(rows):
            value = r.get("confidence")
            if value not in (None, ""):
                conf.append(float(value))
            elif probs is not None and pred[i] in classes:
                conf.append(float(probs[i, classes.index(pred[i])]))
            else:
                conf.append(float("nan"))
        return cls(
            path=np.array([str(r["path"]) for r in rows], dtype=object),
            speaker=np.array([str(r.get("speaker", "") or "") for r in rows], dtype=object),
            true_label=np.array([str(r["true_label"]) for r in rows], dtype=object),
            pred_label=pred,
            confidence=np.array(conf, dtype=np.float64),
            probs=probs,
            classes=classes,
        )

    def rows(self) -> list[dict[str, Any]]:
        """The table as dicts in CSV column order."""
        out = []
        for i in range(len(self)):
            row: dict[str, Any] = {
                "path": self.path[i],
                "speaker": self.speaker[i],
                "true_label": self.true_label[i],
                "pred_label": self.pred_label[i],
                "correct": int(self.true_label[i] == self.pred_label[i]),
                "confidence": float(self.confidence[i]),
            }
            if self.probs is not None:
                row.update({f"p_{c}": float(self.probs[i, j]) for j, c in enumerate(self.classes)})
            out.append(row)
        return out

    def metrics(self) -> dict[str, Any]:
        """:func:`~vocalis.metrics.classification.classification_metrics` of this table."""
        from vocalis.metrics.classification import classification_metrics

        classes = list(self.classes)
        extra = sorted((set(self.true_label) | set(self.pred_label)) - set(classes))
        probs = self.probs if not extra else None
        return classification_metrics(
            list(self.true_label), list(self.pred_label), probs=probs, classes=classes + extra
        )


def write_predictions(
    path: str | os.PathLike,
    predictions: Predictions | Iterable[Mapping[str, Any]],
    classes: Sequence[str] | None = None,
) -> str:
    """Atomically write ``predictions.csv`` (schema in the module docstring).

    Args:
        path: output CSV path (local or fsspec URL).
        predictions: a :class:`Predictions` or rows as dicts.
        classes: class order of the ``p_<class>`` columns when rows are given.

    Returns:
        ``path`` as a string.
    """
    if not isinstance(predictions, Predictions):
        predictions = Predictions.from_rows(predictions, classes)
    fields = list(BASE_COLUMNS)
    if predictions.probs is not None:
        fields += [f"p_{c}" for c in predictions.classes]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in predictions.rows():
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    write_text(path, buf.getvalue())
    return str(path)


def read_predictions(path: str | os.PathLike) -> Predictions:
    """Read a ``predictions.csv``.

    Raises:
        DataError: the file is missing or lacks a required column.
    """
    try:
        text = read_bytes(path).decode("utf-8")
    except FileNotFoundError:
        raise DataError(
            f"predictions file {path} does not exist; run an evaluation with save_predictions first"
        ) from None
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in ("path", "true_label", "pred_label") if c not in header]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {', '.join(missing)}; expected "
            f"{','.join(BASE_COLUMNS)},p_<class>..."
        )
    classes = [c[2:] for c in header if c.startswith("p_")]
    return Predictions.from_rows(list(reader), classes or None)


def concat_predictions(parts: Sequence[Predictions]) -> Predictions:
    """Stack the predictions of several folds (for pooled metrics).

    Probability columns are aligned on the union of the classes; a fold without
    probabilities drops them for the whole table.
    """
    if not parts:
        raise DataError("no predictions to concatenate; did every fold fail?")
    classes: list[str] = []
    for p in parts:
        classes += [c for c in p.classes if c not in classes]
    probs = None
    if all(p.probs is not None for p in parts):
        blocks = []
        for p in parts:
            block = np.zeros((len(p), len(classes)))
            for j, c in enumerate(p.classes):
                block[:, classes.index(c)] = p.probs[:, j]
            blocks.append(block)
        probs = np.concatenate(blocks)
    return Predictions(
        path=np.concatenate([p.path for p in parts]),
        speaker=np.concatenate([p.speaker for p in parts]),
        true_label=np.concatenate([p.true_label for p in parts]),
        pred_label=np.concatenate([p.pred_label for p in parts]),
        confidence=np.concatenate([p.confidence for p in parts]),
        probs=probs,
        classes=classes,
    )


def error_analysis(predictions: Predictions, top: int = 20) -> list[dict[str, Any]]:
    """The most confident errors, most confident first.

    Args:
        predictions: a predictions table.
        top: how many rows to return.

    Returns:
        rows with ``path``, ``speaker``, ``true_label``, ``pred_label``,
        ``confidence`` and ``p_true`` (the probability given to the right class,
        None without probabilities).
    """
    wrong = np.nonzero(~predictions.correct)[0]
    conf = np.nan_to_num(predictions.confidence[wrong], nan=-1.0)
    order = wrong[np.argsort(-conf, kind="mergesort")][:top]
    out = []
    for i in order:
        p_true = None
        if predictions.probs is not None and predictions.true_label[i] in predictions.classes:
            p_true = float(
                predictions.probs[i, predictions.classes.index(predictions.true_label[i])]
            )
        out.append(
            {
                "path": str(predictions.path[i]),
                "speaker": str(predictions.speaker[i]),
                "true_label": str(predictions.true_label[i]),
                "pred_label": str(predictions.pred_label[i]),
                "confidence": float(predictions.confidence[i]),
                "p_true": p_true,
            }
        )
    return out


def score(targets: Sequence[int], probs: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Classification metrics of ``probs`` (N, C) against class ids ``targets`` (N,)."""
    from vocalis.metrics.classification import classification_metrics

    pred = probs.argmax(axis=1)
    names = list(classes)
    return classification_metrics(
        [names[int(t)] for t in targets], [names[int(p)] for p in pred], probs, classes=names
    )


def prediction_rows(
    manifest: Any, targets: Sequence[int], probs: np.ndarray, classes: Sequence[str]
) -> list[dict[str, Any]]:
    """Rows of ``predictions.csv`` for the rows of ``manifest`` (a :class:`~vocalis.data.Manifest`).

    Args:
        manifest: the N scored rows (``path``; ``speaker`` when present).
        targets: (N,) class ids of the reference labels.
        probs: (N, C) class probabilities, columns in ``classes`` order.
        classes: the C class names.

    Returns:
        Dicts with the :data:`BASE_COLUMNS` and one ``p_<class>`` column per class.
    """
    speakers = manifest.column("speaker") if "speaker" in manifest.columns else [""] * len(manifest)
    rows = []
    for i, path in enumerate(manifest.paths):
        k = int(probs[i].argmax())
        true = classes[int(targets[i])]
        row: dict[str, Any] = {
            "path": path,
            "speaker": speakers[i],
            "true_label": true,
            "pred_label": classes[k],
            "correct": classes[k] == true,
            "confidence": float(probs[i, k]),
        }
        row.update({f"p_{c}": float(probs[i, j]) for j, c in enumerate(classes)})
        rows.append(row)
    return rows
