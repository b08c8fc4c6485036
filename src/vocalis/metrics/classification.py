"""Classification, multi-label and regression metrics as small numpy functions.

Every function returns plain Python data (floats, lists, dicts) so the result
can go straight into ``metrics.json``. Class labels may be strings or integers;
``classes`` fixes their order (the columns of ``probs`` and of the confusion
matrix).

Example:
    >>> m = classification_metrics(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    >>> m["accuracy"], m["uar"], m["confusion"]
    (0.75, 0.75, [[1, 1], [0, 2]])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from vocalis.errors import DataError

__all__ = [
    "ccc",
    "classification_metrics",
    "encode_labels",
    "expected_calibration_error",
    "mae",
    "multilabel_metrics",
    "regression_metrics",
]


def _plain(label: Any) -> Any:
    """Turn numpy scalars into Python scalars (so labels survive JSON)."""
    return label.item() if isinstance(label, np.generic) else label


def encode_labels(
    y_true: Sequence[Any], y_pred: Sequence[Any], classes: Sequence[Any] | None = None
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Map labels to integer indices into ``classes``.

    Args:
        y_true: reference labels (names, or integer indices into ``classes``).
        y_pred: predicted labels, same convention.
        classes: class order; default: the sorted union of both label sets.

    Returns:
        ``(true_idx, pred_idx, classes)``.

    Shape:
        true_idx, pred_idx: (N,) int64.

    Raises:
        DataError: lengths differ or a label is not in ``classes``.

    Example:
        >>> encode_labels(["b", "a"], ["a", "a"])
        (array([1, 0]), array([0, 0]), ['a', 'b'])
        >>> encode_labels([0, 2], [1, 2], classes=["x", "y", "z"])[:2]
        (array([0, 2]), array([1, 2]))
    """
    yt, yp = list(map(_plain, y_true)), list(map(_plain, y_pred))
    if len(yt) != len(yp):
        raise DataError(
            f"y_true has {len(yt)} labels but y_pred has {len(yp)}; pass one prediction per item"
        )
    if classes is None:
        classes = sorted(set(yt) | set(yp), key=lambda c: (str(type(c)), c))
    classes = [_plain(c) for c in classes]
    index = {c: i for i, c in enumerate(classes)}
    as_indices = not any(isinstance(c, (int, np.integer)) for c in classes) and all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in yt + yp
    )

    def enc(values: list[Any], name: str) -> np.ndarray:
        if as_indices:
            out = np.asarray(values, dtype=np.int64)
            if out.size and (out.min() < 0 or out.max() >= len(classes)):
                raise DataError(
                    f"{name} holds class index {int(out.max())} but there are "
                    f"{len(classes)} classes; pass labels in 0..{len(classes) - 1}"
                )
            return out
        try:
            return np.asarray([index[v] for v in values], dtype=np.int64)
        except KeyError as err:
            raise DataError(
                f"{name} holds label {err.args[0]!r} which is not one of the classes "
                f"{classes}; add it to `classes` or fix the label"
            ) from None

    return enc(yt, "y_true"), enc(yp, "y_pred"), classes


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, n_bins: int = 15
) -> float:
    """Expected calibration error with equal-width confidence bins.

    ``ECE = sum_b |B_b|/N * |acc(B_b) - conf(B_b)|``, bin ``b`` holding
    confidences in ``(b/n_bins, (b+1)/n_bins]`` (0 goes into the first bin).

    Args:
        confidence: probability of the predicted class.
        correct: whether the prediction was right.
        n_bins: number of equal-width bins in [0, 1].

    Shape:
        confidence, correct: (N,).

    Example:
        >>> expected_calibration_error(np.array([0.9, 0.9]), np.array([1, 0]))
        0.4
    """
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=np.float64)
    if conf.size == 0:
        return float("nan")
    bins = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in np.unique(bins):
        m = bins == b
        ece += m.mean() * abs(ok[m].mean() - conf[m].mean())
    return round(float(ece), 12)


def classification_metrics(
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    probs: np.ndarray | None = None,
    classes: Sequence[Any] | None = None,
    n_bins: int = 15,
) -> dict[str, Any]:
    """Accuracy, UAR, F1, per-class scores, confusion matrices and calibration.

    ``uar`` (unweighted average recall) is the mean recall over the classes
    present in ``y_true``; ``macro_f1`` averages F1 over the classes present in
    ``y_true`` or ``y_pred`` (scikit-learn's convention).

    Args:
        y_true: reference labels (names or indices into ``classes``).
        y_pred: predicted labels.
        probs: optional class probabilities, columns in ``classes`` order; gives
            ``ece``, ``mean_confidence_correct`` and ``mean_confidence_wrong``
            (None without it).
        classes: class order; default: sorted union of the labels seen.
        n_bins: bins of the expected calibration error.

    Returns:
        dict with ``n``, ``accuracy``, ``uar``, ``macro_f1``, ``weighted_f1``,
        ``per_class`` ({class: {precision, recall, f1, support}}), ``confusion``
        (rows: true, columns: predicted, counts), ``confusion_normalized``
        (rows sum to 1), ``classes``, ``ece``, ``mean_confidence_correct``,
        ``mean_confidence_wrong``.

    Shape:
        y_true, y_pred: (N,); probs: (N, C).

    Raises:
        DataError: mismatched lengths, unknown labels or a ``probs`` of wrong shape.

    Example:
        >>> p = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
        >>> m = classification_metrics([0, 1, 1], [0, 1, 0], probs=p, classes=["x", "y"])
        >>> m["uar"], m["per_class"]["y"]["recall"], round(m["ece"], 3)
        (0.75, 0.5, 0.3)
    """
    t, p, classes = encode_labels(y_true, y_pred, classes)
    k, n = len(classes), len(t)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    support = cm.sum(1)
    predicted = cm.sum(0)
    tp = np.diag(cm).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / np.maximum(predicted, 1), 0.0)
        recall = np.where(support > 0, tp / np.maximum(support, 1), 0.0)
        denom = precision + recall
        f1 = np.where(denom > 0, 2 * precision * recall / np.where(denom > 0, denom, 1), 0.0)
    present = support > 0
    seen = present | (predicted > 0)
    out: dict[str, Any] = {
        "n": int(n),
        "accuracy": float(tp.sum() / n) if n else float("nan"),
        "uar": float(recall[present].mean()) if present.any() else float("nan"),
        "macro_f1": float(f1[seen].mean()) if seen.any() else float("nan"),
        "weighted_f1": float((f1 * support).sum() / n) if n else float("nan"),
        "classes": list(classes),
        "per_class": {
            str(c): {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, c in enumerate(classes)
        },
        "confusion": cm.tolist(),
        "confusion_normalized": (cm / np.maximum(support, 1)[:, None]).tolist(),
        "ece": None,
        "mean_confidence_correct": None,
        "mean_confidence_wrong": None,
    }
    if probs is not None:
        probs = np.asarray(probs, dtype=np.float64)
        if probs.shape != (n, k):
            raise DataError(
                f"probs has shape {probs.shape}, expected ({n}, {k}) = (items, classes "
                f"{classes}); pass one probability column per class"
            )
        conf = probs[np.arange(n), p]
        correct = t == p
        out["ece"] = expected_calibration_error(conf, correct, n_bins)
        out["mean_confidence_correct"] = float(conf[correct].mean()) if correct.any() else None
        out["mean_confidence_wrong"] = float(conf[~correct].mean()) if (~correct).any() else None
    return out


def multilabel_metrics(
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float = 0.5,
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Per-label ROC AUC and F1 (at ``threshold``) with macro and micro averages.

    A label whose reference column is constant has an undefined AUC (``None``)
    and is left out of ``macro_auc``.

    Args:
        y_true: 0/1 reference matrix.
        scores: scores or probabilities, higher = more likely.
        threshold: decision threshold for F1.
        names: label names (default ``"0"``, ``"1"``, ...).

    Shape:
        y_true, scores: (N, K).

    Example:
        >>> y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
        >>> s = np.array([[0.9, 0.2], [0.1, 0.7], [0.8, 0.4], [0.3, 0.1]])
        >>> m = multilabel_metrics(y, s, names=["x", "y"])
        >>> m["per_label"]["x"]["auc"], m["per_label"]["y"]["f1"], m["macro_auc"]
        (1.0, 0.6666666666666666, 1.0)
    """
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y_true)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 2 or y.shape != s.shape:
        raise DataError(
            f"multilabel y_true {y.shape} and scores {s.shape} must both be (items, labels)"
        )
    names = [str(i) for i in range(y.shape[1])] if names is None else list(names)
    pred = s >= threshold
    per: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(names):
        col = y[:, j].astype(bool)
        auc = float(roc_auc_score(col, s[:, j])) if 0 < col.sum() < len(col) else None
        tp = float((col & pred[:, j]).sum())
        den = col.sum() + pred[:, j].sum()
        per[name] = {
            "auc": auc,
            "f1": float(2 * tp / den) if den else 0.0,
            "support": int(col.sum()),
        }
    aucs = [v["auc"] for v in per.values() if v["auc"] is not None]
    yb = y.astype(bool)
    den = yb.sum() + pred.sum()
    return {
        "n": int(y.shape[0]),
        "per_label": per,
        "macro_auc": float(np.mean(aucs)) if aucs else None,
        "macro_f1": float(np.mean([v["f1"] for v in per.values()])),
        "micro_f1": float(2 * (yb & pred).sum() / den) if den else 0.0,
        "threshold": float(threshold),
    }


def ccc(x: np.ndarray, y: np.ndarray) -> float:
    """Lin's concordance correlation coefficient.

    ``2 cov(x, y) / (var x + var y + (mean x - mean y)^2)`` with population
    (biased) moments; 1 for identical series, penalises bias and scale.

    Shape:
        x, y: (N,).

    Example:
        >>> ccc(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0]))
        1.0
        >>> round(ccc(np.array([1.0, 2.0, 3.0]), np.array([2.0, 3.0, 4.0])), 4)
        0.5714
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mx, my = x.mean(), y.mean()
    cov = ((x - mx) * (y - my)).mean()
    den = x.var() + y.var() + (mx - my) ** 2
    return float(2 * cov / den) if den > 0 else float("nan")


def mae(x: np.ndarray, y: np.ndarray) -> float:
    """Mean absolute error.

    Example:
        >>> mae(np.array([1.0, 2.0]), np.array([2.0, 4.0]))
        1.5
    """
    return float(np.mean(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))


def regression_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, names: Sequence[str] | None = None
) -> dict[str, Any]:
    """CCC, Pearson r, MAE and RMSE, per target dimension and averaged.

    Shape:
        y_true, y_pred: (N,) or (N, D) (e.g. arousal, valence, dominance).

    Example:
        >>> m = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
        >>> m["mae"], round(m["ccc"], 3)
        (0.3333333333333333, 0.857)
    """
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape:
        raise DataError(f"regression y_true {t.shape} and y_pred {p.shape} must have one shape")
    t2 = t.reshape(len(t), -1)
    p2 = p.reshape(len(p), -1)
    names = [str(i) for i in range(t2.shape[1])] if names is None else list(names)
    per = {}
    for j, name in enumerate(names):
        a, b = t2[:, j], p2[:, j]
        r = float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
        per[name] = {
            "ccc": ccc(a, b),
            "pearson": r,
            "mae": mae(a, b),
            "rmse": float(np.sqrt(np.mean((a - b) ** 2))),
        }
    out: dict[str, Any] = {
        key: float(np.mean([v[key] for v in per.values()]))
        for key in ("ccc", "pearson", "mae", "rmse")
    }
    out["n"] = len(t)
    if t.ndim > 1:
        out["per_dim"] = per
    return out
