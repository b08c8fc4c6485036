"""Metrics of every head of a multi-head model, from its concatenated outputs.

A model with several heads gives one output matrix (N, C) with each head's outputs
side by side (softmax probabilities of a multiclass head, sigmoids of a multi-label
head, values of a regression head, in z-scored units) and the packed target matrix
(N, D) of :func:`vocalis.data.targets.encode_targets`. :func:`score_heads` scores
each head with the metric of its kind:

- multiclass: :func:`~vocalis.metrics.classification.classification_metrics`
  (accuracy, UAR, macro-F1, per-class scores, confusion, ECE);
- multi-label: :func:`~vocalis.metrics.classification.multilabel_metrics` at each
  label's own threshold (per-label AUC and F1, macro AUC, macro/micro F1), plus
  ``uar`` (mean balanced accuracy over labels) and ``accuracy``;
- regression: :func:`~vocalis.metrics.classification.regression_metrics` in the
  column's own units (CCC, Pearson r, MAE, RMSE).

Rows without an annotation for a head (NaN target) are left out of that head's
metrics. :func:`head_columns` flattens the headline numbers into
``val_<head>_<metric>`` history columns.

Example:
    >>> import numpy as np
    >>> from vocalis.data.targets import HeadSpec
    >>> heads = [HeadSpec("e", "multiclass", ("e",), ("a", "b")),
    ...          HeadSpec("d", "regression", ("d",), ("d",), "mse", mean=(2.0,), std=(1.0,))]
    >>> out = np.array([[0.9, 0.1, -1.0], [0.2, 0.8, 1.0], [0.6, 0.4, 0.0]])
    >>> tgt = np.array([[0.0, -1.0], [1.0, 1.0], [1.0, np.nan]])
    >>> m = score_heads(heads, out, tgt)
    >>> m["e"]["uar"], m["d"]["mae"], m["d"]["n"]
    (0.75, 0.0, 2)
    >>> sorted(head_columns(m))[:3]
    ['d_ccc', 'd_mae', 'd_rmse']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vocalis.data.targets import HeadLayout, HeadSpec

#: The headline metrics of each kind, as history columns ``val_<head>_<metric>``.
HEADLINE = {
    "multiclass": ("acc", "uar", "macro_f1"),
    "multilabel": ("uar", "macro_f1", "macro_auc"),
    "regression": ("ccc", "mae", "rmse"),
}


def _multilabel(head: HeadSpec, y: np.ndarray, s: np.ndarray) -> dict[str, Any]:
    from vocalis.metrics.classification import multilabel_metrics

    keep = np.isfinite(y).all(axis=1)
    y, s = y[keep], s[keep]
    th = np.asarray(head.thresholds or (0.5,) * head.size)
    out = multilabel_metrics(y.astype(np.int64), s - th + 0.5, 0.5, names=head.classes)
    pred = s >= th
    truth = y > 0.5
    bal, acc = [], []
    for j, name in enumerate(head.classes):
        t, p = truth[:, j], pred[:, j]
        rec = [float((p[t == v] == v).mean()) for v in (True, False) if (t == v).any()]
        bal.append(float(np.mean(rec)) if rec else float("nan"))
        acc.append(float((t == p).mean()) if len(t) else float("nan"))
        out["per_label"][name]["threshold"] = float(th[j])
        out["per_label"][name]["uar"] = bal[-1]
    out["uar"] = float(np.nanmean(bal)) if len(y) else float("nan")
    out["accuracy"] = float(np.nanmean(acc)) if len(y) else float("nan")
    out["thresholds"] = [float(t) for t in th]
    del out["threshold"]
    return out


def score_head(head: HeadSpec, outputs: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    """The metrics of one head.

    Args:
        head: the head.
        outputs: its outputs (N, C_h): probabilities, or z-scored regression values.
        targets: its packed targets (N, width).

    Returns:
        The metrics dict of its kind (see the module docstring) with ``kind`` and ``n``.
    """
    from vocalis.metrics.classification import classification_metrics, regression_metrics

    outputs = np.asarray(outputs, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if head.kind == "multiclass":
        keep = np.isfinite(targets[:, 0])
        probs, t = outputs[keep], targets[keep, 0].astype(np.int64)
        names = list(head.classes)
        out = classification_metrics(
            [names[i] for i in t],
            [names[i] for i in probs.argmax(axis=1)],
            probs,
            classes=names,
        )
    elif head.kind == "multilabel":
        out = _multilabel(head, targets, outputs)
    else:
        y, p = head.to_units(targets), head.to_units(outputs)
        keep = np.isfinite(y).all(axis=1)
        out = regression_metrics(y[keep], p[keep], names=head.classes)
        out["per_target"] = out.pop("per_dim")
    return {"kind": head.kind, **out}


def score_heads(
    heads: Sequence[HeadSpec], outputs: np.ndarray, targets: np.ndarray
) -> dict[str, dict[str, Any]]:
    """Every head's metrics, keyed by head name (see the module docstring).

    Shape:
        outputs: (N, sum C_h), targets: (N, sum width_h) -> {head: metrics}
    """
    layout = HeadLayout(tuple(heads))
    return {
        h.name: score_head(h, outputs[:, o0:o1], targets[:, t0:t1])
        for h, (o0, o1), (t0, t1) in zip(heads, layout.outputs, layout.targets, strict=True)
    }


def pool_heads(
    parts: Sequence[tuple[Sequence[HeadSpec], np.ndarray, np.ndarray]],
) -> tuple[list[HeadSpec], np.ndarray, np.ndarray]:
    """Several models' head outputs on disjoint rows (cross-validation folds), as one set.

    Each fold's heads are fitted on its own training rows, so regression scalers,
    multi-label thresholds and even class lists differ between folds. Every fold is
    put in common units first, then the rows are concatenated:

    - multiclass: probabilities and targets on the union of the folds' classes (in
      first-seen order; probability 0 for a class a fold never trained on);
    - multi-label: scores centred on the fold's own thresholds (``score - threshold
      + 0.5``) and scored at 0.5, so each row keeps its fold's decision (as
      :func:`score_head` does within one fold);
    - regression: outputs and targets in the columns' units
      (:meth:`~vocalis.data.targets.HeadSpec.to_units`), scored with mean 0, std 1.

    :func:`score_heads` of the result gives the pooled metrics, in the same schema
    as one fold's.

    Args:
        parts: per fold ``(heads, outputs (N_k, sum C_h), targets (N_k, sum width_h))``,
            as :func:`score_heads` takes them; every fold has the same head names.

    Returns:
        ``(heads, outputs, targets)`` of all rows.

    Raises:
        DataError: folds whose heads differ (names, kinds or columns).

    Example:
        >>> from vocalis.data.targets import HeadSpec
        >>> def fold(mean):
        ...     return [HeadSpec("d", "regression", ("d",), ("d",), mean=(mean,), std=(1.0,))]
        >>> heads, out, tgt = pool_heads([(fold(0.0), np.array([[1.0]]), np.array([[0.0]])),
        ...                               (fold(5.0), np.array([[1.0]]), np.array([[2.0]]))])
        >>> out.ravel().tolist(), tgt.ravel().tolist(), heads[0].mean
        ([1.0, 6.0], [0.0, 7.0], (0.0,))
    """
    from dataclasses import replace

    from vocalis.errors import DataError

    if not parts:
        raise DataError("no fold to pool")
    first = [(h.name, h.kind, h.columns) for h in parts[0][0]]
    for heads, _, _ in parts[1:]:
        if [(h.name, h.kind, h.columns) for h in heads] != first:
            raise DataError(
                f"cannot pool folds with different heads: {[h[0] for h in first]} vs "
                f"{[h.name for h in heads]} (kinds or columns differ)"
            )
    pooled: list[HeadSpec] = []
    out_blocks: list[list[np.ndarray]] = [[] for _ in parts]
    tgt_blocks: list[list[np.ndarray]] = [[] for _ in parts]
    for j, head in enumerate(parts[0][0]):
        if head.kind == "multiclass":
            classes = list(dict.fromkeys(c for heads, _, _ in parts for c in heads[j].classes))
            pooled.append(replace(head, classes=tuple(classes)))
        elif head.kind == "multilabel":
            pooled.append(replace(head, thresholds=(0.5,) * head.size))
        else:
            ones = (1.0,) * head.size
            pooled.append(replace(head, mean=(0.0,) * head.size, std=ones))
        for k, (heads, outputs, targets) in enumerate(parts):
            h = heads[j]
            layout = HeadLayout(tuple(heads))
            (o0, o1), (t0, t1) = layout.outputs[j], layout.targets[j]
            out = np.asarray(outputs, dtype=np.float64)[:, o0:o1]
            tgt = np.asarray(targets, dtype=np.float64)[:, t0:t1]
            if h.kind == "multiclass":
                at = [pooled[j].classes.index(c) for c in h.classes]
                wide = np.zeros((len(out), pooled[j].size))
                wide[:, at] = out
                ids = np.full_like(tgt, np.nan)
                known = np.isfinite(tgt)
                ids[known] = np.asarray(at, dtype=np.float64)[tgt[known].astype(np.int64)]
                out, tgt = wide, ids
            elif h.kind == "multilabel":
                th = np.asarray(h.thresholds or (0.5,) * h.size)
                out = out - th + 0.5
            else:
                out, tgt = h.to_units(out), h.to_units(tgt)
            out_blocks[k].append(out)
            tgt_blocks[k].append(tgt)
    outputs = np.concatenate([np.concatenate(b, axis=1) for b in out_blocks], axis=0)
    targets = np.concatenate([np.concatenate(b, axis=1) for b in tgt_blocks], axis=0)
    return pooled, outputs, targets


def head_columns(metrics: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Headline numbers ``<head>_<metric>`` of :func:`score_heads` output (prefix with ``val_``)."""
    out: dict[str, float] = {}
    for name, m in metrics.items():
        for key in HEADLINE[m["kind"]]:
            value = m.get("accuracy" if key == "acc" else key)
            out[f"{name}_{key}"] = float("nan") if value is None else float(value)
    return out


def primary(
    heads: Sequence[HeadSpec], metrics: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any] | None:
    """The metrics of the first class head (multiclass or multi-label), or ``None``.

    A multi-head run reports them as its top-level ``val_acc`` / ``val_uar`` /
    ``val_macro_f1`` (and ``metrics.json``'s top-level ``val`` / ``test``).
    """
    for h in heads:
        if h.kind != "regression":
            return dict(metrics[h.name])
    return None


def mean_ccc(heads: Sequence[HeadSpec], metrics: Mapping[str, Mapping[str, Any]]) -> float:
    """Mean CCC over the regression heads (NaN without any): the ``val_ccc`` column."""
    values = [float(metrics[h.name]["ccc"]) for h in heads if h.kind == "regression"]
    return float(np.mean(values)) if values else float("nan")


__all__ = [
    "HEADLINE",
    "head_columns",
    "mean_ccc",
    "pool_heads",
    "primary",
    "score_head",
    "score_heads",
]
