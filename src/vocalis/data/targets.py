"""Label heads: which manifest columns one model predicts, and of which kind.

A run predicts one or more *heads*. Each head reads one column or a group of
columns of the manifest and is one of three kinds, chosen by its loss:

- ``multiclass`` (``ce``, ``focal``, ``aam``, and ``bce`` on one text column): one
  class per row. On one column the classes are its distinct values; on a group of
  0/1 columns (a one-hot group) the classes are the column names.
- ``multilabel`` (``bce`` on a group of columns, or on one 0/1 column): several
  independent binary labels; per-label decision thresholds are chosen on the
  validation split.
- ``regression`` (``mse``, ``smoothl1``): numeric columns, z-scored with the
  training split's mean and standard deviation; the scaler travels in the
  checkpoint so predictions come back in the column's units.

A :class:`HeadSpec` is the fitted description of one head (classes, scaler,
thresholds); the list of them is stored in the checkpoint's ``model.heads`` and
rebuilt by :meth:`HeadSpec.from_dict`. :func:`read_label_groups` reads the
label-group text file (one line per head, comma-separated columns).

Targets of all heads are packed in one float matrix (N, D), NaN marking a missing
annotation: one column of class ids per multiclass head, K columns of 0/1 per
multi-label head, K z-scored columns per regression head (:func:`encode_targets`).

Example:
    >>> from vocalis.data import Manifest
    >>> m = Manifest([{"path": f"/{i}.wav", "emotion": e, "gender": g, "dur": d}
    ...               for i, (e, g, d) in enumerate([("ang", "f", "1.0"), ("sad", "m", "3.0")])])
    >>> heads = fit_heads(m, [0, 1], [("emotion",), ("gender",), ("dur",)],
    ...                   {"dur": "mse"})
    >>> [(h.name, h.kind, h.size) for h in heads]
    [('emotion', 'multiclass', 2), ('gender', 'multiclass', 2), ('dur', 'regression', 1)]
    >>> encode_targets(m, heads).tolist()
    [[0.0, 0.0, -1.0], [1.0, 1.0, 1.0]]
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from vocalis.errors import ConfigError, DataError
from vocalis.registry import did_you_mean

HeadKind = Literal["multiclass", "multilabel", "regression"]

#: Head kinds, in the order the docs list them.
HEAD_KINDS = ("multiclass", "multilabel", "regression")

#: Losses of regression heads.
REGRESSION_LOSSES = ("mse", "smoothl1")

#: Losses of class heads (``bce`` also of multi-label heads).
CLASS_LOSSES = ("ce", "focal", "aam", "bce")

#: Every loss a head may name.
HEAD_LOSSES = CLASS_LOSSES + REGRESSION_LOSSES


def head_name(columns: Sequence[str]) -> str:
    """The name of the head over ``columns``: the column, or the columns joined by ``+``.

    Example:
        >>> head_name(["emotion"]), head_name(["cough", "wheeze"])
        ('emotion', 'cough+wheeze')
    """
    return "+".join(str(c) for c in columns)


@dataclass(frozen=True)
class HeadSpec:
    """One fitted head.

    Attributes:
        name: the head's name (:func:`head_name` of its columns).
        kind: ``multiclass``, ``multilabel`` or ``regression``.
        columns: the manifest columns it reads.
        classes: its outputs, in order: the class names (multiclass), else the columns.
        loss: the loss name (see :data:`HEAD_LOSSES`).
        weight: the weight of its loss in the total.
        thresholds: multi-label decision thresholds, one per label (0.5 until chosen).
        mean: regression targets' training mean, one per column.
        std: regression targets' training standard deviation, one per column.
        one_hot: a multiclass head over a group of 0/1 columns.
    """

    name: str
    kind: HeadKind
    columns: tuple[str, ...]
    classes: tuple[str, ...]
    loss: str = "ce"
    weight: float = 1.0
    thresholds: tuple[float, ...] = ()
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    one_hot: bool = False

    @property
    def size(self) -> int:
        """Outputs of the head (classes, labels or regression targets)."""
        return len(self.classes)

    @property
    def width(self) -> int:
        """Columns of the packed target matrix it takes (1 for a multiclass head)."""
        return 1 if self.kind == "multiclass" else len(self.classes)

    def to_units(self, values: Any) -> np.ndarray:
        """Regression values from the model's z-scored units to the columns' own units.

        The one place the training scaler is undone (``value * std + mean``, per
        column): metrics, predictions and cross-validation pooling all call it.

        Shape:
            values: (..., size) -> the same shape, float64.

        Example:
            >>> h = HeadSpec("d", "regression", ("d",), ("d",), "mse", mean=(2.0,), std=(0.5,))
            >>> h.to_units([[2.0], [-2.0]]).tolist()
            [[3.0], [1.0]]
        """
        return np.asarray(values, dtype=np.float64) * np.asarray(self.std) + np.asarray(self.mean)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as the checkpoint stores it."""
        return {
            "name": self.name,
            "kind": self.kind,
            "columns": list(self.columns),
            "classes": list(self.classes),
            "loss": self.loss,
            "weight": float(self.weight),
            "thresholds": [float(t) for t in self.thresholds],
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "one_hot": bool(self.one_hot),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HeadSpec:
        """Inverse of :meth:`to_dict`.

        Raises:
            DataError: a missing key or an unknown kind.
        """
        try:
            kind = str(data["kind"])
            if kind not in HEAD_KINDS:
                raise DataError(f"head {data.get('name')!r}: unknown kind {kind!r}")
            return cls(
                name=str(data["name"]),
                kind=kind,  # type: ignore[arg-type]
                columns=tuple(str(c) for c in data["columns"]),
                classes=tuple(str(c) for c in data["classes"]),
                loss=str(data.get("loss", "ce")),
                weight=float(data.get("weight", 1.0)),
                thresholds=tuple(float(t) for t in data.get("thresholds") or ()),
                mean=tuple(float(v) for v in data.get("mean") or ()),
                std=tuple(float(v) for v in data.get("std") or ()),
                one_hot=bool(data.get("one_hot", False)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DataError(f"checkpoint head entry {dict(data)!r} is malformed ({err})") from None


def heads_from_data(data: Any) -> list[HeadSpec]:
    """The heads stored in a checkpoint's ``model.heads`` (an empty list when absent)."""
    return [HeadSpec.from_dict(h) for h in (data or [])]


def read_label_groups(path: str | os.PathLike) -> list[list[str]]:
    r"""Read a label-group file: one head per line, its label columns comma-separated.

    Blank lines and lines starting with ``#`` are skipped; spaces around names are
    ignored.

    Args:
        path: the text file (local path or fsspec URL).

    Returns:
        One list of column names per head.

    Raises:
        DataError: a missing or empty file, an empty name (``a,,b`` or a trailing comma),
            or a column listed twice; the message names the file and the line.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "labels.txt"
        >>> _ = p.write_text("emotion\ncough, wheeze\n")
        >>> read_label_groups(p)
        [['emotion'], ['cough', 'wheeze']]
    """
    from vocalis.io import read_bytes

    try:
        text = read_bytes(path).decode("utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: label-group file not found") from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a UTF-8 text file (one line per head: a,b,c)") from None
    groups: list[list[str]] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        body = line.strip()
        if not body or body.startswith("#"):
            continue
        names = [n.strip() for n in body.split(",")]
        if any(not n for n in names):
            raise DataError(
                f"{path}:{number}: empty label name in {body!r}; write one head per line as "
                "comma-separated column names (col_a,col_b)"
            )
        for n in names:
            if n in seen:
                raise DataError(
                    f"{path}:{number}: column '{n}' is already in the head of line {seen[n]}; "
                    "a column belongs to one head"
                )
            seen[n] = number
        groups.append(names)
    if not groups:
        raise DataError(f"{path}: no label group in the file (one line per head: a,b,c)")
    return groups


def loss_for(name: str, losses: str | Mapping[str, str]) -> str:
    """The loss of head ``name`` under ``train.loss`` (one name, or a mapping by head)."""
    if isinstance(losses, str):
        return losses
    return str(losses.get(name, "ce"))


def check_head_options(
    names: Sequence[str], losses: str | Mapping[str, str], weights: Mapping[str, float]
) -> None:
    """Check ``train.loss`` and ``train.loss_weights`` against the head names.

    Raises:
        ConfigError: an unknown loss or a key naming no head (with the nearest name).
    """
    per_head = {losses: losses} if isinstance(losses, str) else dict(losses)
    for key, value in per_head.items():
        if value not in HEAD_LOSSES:
            at = "train.loss" if isinstance(losses, str) else f"train.loss.{key}"
            raise ConfigError(
                f"{at}: got {value!r}{did_you_mean(str(value), list(HEAD_LOSSES))}, expected "
                f"one of: {', '.join(HEAD_LOSSES)}"
            )
    for what, keys in (
        ("train.loss", [] if isinstance(losses, str) else list(losses)),
        ("train.loss_weights", list(weights)),
    ):
        for key in keys:
            if key not in names:
                raise ConfigError(
                    f"{what}: no head named {key!r}{did_you_mean(str(key), list(names))}; "
                    f"the heads are: {', '.join(names)} (from dataset.label_columns)"
                )
    for key, w in weights.items():
        if not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0):
            raise ConfigError(f"train.loss_weights.{key}: got {w!r}, expected a number >= 0")


def _is_binary(values: Sequence[str]) -> bool:
    return all(v.strip() in ("0", "1", "0.0", "1.0", "") for v in values)


def _number(value: str, where: str, column: str) -> float:
    if value.strip() == "":
        return float("nan")
    try:
        return float(value)
    except ValueError:
        raise DataError(
            f"{where}: column '{column}' has {value!r}; a regression or multi-label head needs "
            "numbers (an empty cell marks a missing annotation)"
        ) from None


def fit_heads(
    manifest: Any,
    train_rows: Sequence[int],
    groups: Sequence[Sequence[str]],
    losses: str | Mapping[str, str] = "ce",
    weights: Mapping[str, float] | None = None,
) -> list[HeadSpec]:
    """Describe every head from the training rows (classes, scalers).

    Args:
        manifest: the :class:`~vocalis.data.Manifest`.
        train_rows: row indices of the training split (classes and scalers come from them).
        groups: the label columns of each head.
        losses: ``train.loss``: one loss for every head, or ``{head: loss}`` (default ``ce``).
        weights: ``train.loss_weights`` (default 1 per head).

    Returns:
        One :class:`HeadSpec` per group, in order.

    Raises:
        DataError: a missing column, a class head with fewer than two classes, a
            non-numeric regression cell, or a regression column without spread.
    """
    weights = dict(weights or {})
    where = str(getattr(manifest, "source", "manifest"))
    rows = [int(i) for i in train_rows]
    heads = []
    for group in groups:
        cols = tuple(str(c) for c in group)
        manifest.require(*cols)
        name = head_name(cols)
        loss = loss_for(name, losses)
        w = float(weights.get(name, 1.0))
        values = {c: [str(v) for v in manifest.column(c)] for c in cols}
        train_vals = {c: [values[c][i] for i in rows] for c in cols}
        if loss in REGRESSION_LOSSES:
            mean, std = [], []
            for c in cols:
                x = np.asarray([_number(v, where, c) for v in train_vals[c]], dtype=np.float64)
                x = x[np.isfinite(x)]
                if len(x) < 2 or not float(x.std()) > 0:
                    raise DataError(
                        f"{where}: regression column '{c}' has {len(x)} numeric training "
                        "value(s) without spread; a regression head needs varying numbers"
                    )
                mean.append(float(x.mean()))
                std.append(float(x.std()))
            heads.append(
                HeadSpec(name, "regression", cols, cols, loss, w, (), tuple(mean), tuple(std))
            )
        elif loss == "bce" and (len(cols) > 1 or _is_binary(train_vals[cols[0]])):
            for c in cols:
                if not _is_binary(values[c]):
                    bad = next(v for v in values[c] if not _is_binary([v]))
                    raise DataError(
                        f"{where}: multi-label column '{c}' has {bad!r}; expected 0 or 1 (or an "
                        "empty cell for a missing annotation)"
                    )
            heads.append(HeadSpec(name, "multilabel", cols, cols, loss, w, (0.5,) * len(cols)))
        elif len(cols) > 1:  # one-hot group: the classes are the columns
            for c in cols:
                if not _is_binary(values[c]):
                    raise DataError(
                        f"{where}: head {name} (loss {loss}) reads a group of columns as one-hot "
                        f"classes, but column '{c}' is not 0/1; use loss bce for independent "
                        "labels or give one column per head"
                    )
            heads.append(HeadSpec(name, "multiclass", cols, cols, loss, w, one_hot=True))
        else:
            classes = sorted({v for v in train_vals[cols[0]] if v.strip() != ""})
            if len(classes) < 2:
                raise DataError(
                    f"{where}: head '{name}' has {len(classes)} class(es) in the training split "
                    f"({', '.join(classes) or 'none'}); a class head needs at least two (for "
                    "numbers use train.loss mse)"
                )
            heads.append(HeadSpec(name, "multiclass", cols, tuple(classes), loss, w))
    return heads


def encode_targets(manifest: Any, heads: Sequence[HeadSpec]) -> np.ndarray:
    """The packed target matrix of every row (see the module docstring).

    Args:
        manifest: the rows.
        heads: the fitted heads.

    Returns:
        (N, D) float64, ``D = sum(head.width)``; NaN marks a missing annotation.

    Raises:
        DataError: a class never seen in training (naming it and the known classes),
            a one-hot row without exactly one 1, or a non-numeric value.
    """
    where = str(getattr(manifest, "source", "manifest"))
    n = len(manifest)
    blocks = []
    for h in heads:
        cols = [[str(v) for v in manifest.column(c)] for c in h.columns]
        if h.kind == "multiclass" and not h.one_hot:
            index = {c: i for i, c in enumerate(h.classes)}
            out = np.full((n, 1), np.nan)
            for i, v in enumerate(cols[0]):
                if v.strip() == "":
                    continue
                if v not in index:
                    raise DataError(
                        f"{where}: row {i + 1} has {h.columns[0]}={v!r}, never seen in training "
                        f"(known classes: {', '.join(h.classes)}); map it with dataset.label_map "
                        "or remove those rows"
                    )
                out[i, 0] = index[v]
        elif h.kind == "multiclass":
            hot = np.stack(
                [
                    [_number(v, where, c) for v in col]
                    for c, col in zip(h.columns, cols, strict=True)
                ],
                axis=1,
            )
            out = np.full((n, 1), np.nan)
            for i, row in enumerate(hot):
                if np.isnan(row).all():
                    continue
                if np.nansum(row) != 1:
                    raise DataError(
                        f"{where}: row {i + 1} has {int(np.nansum(row))} of the one-hot columns "
                        f"{', '.join(h.columns)} set; exactly one must be 1 (or use loss bce)"
                    )
                out[i, 0] = float(np.nanargmax(row))
        else:
            out = np.stack(
                [
                    [_number(v, where, c) for v in col]
                    for c, col in zip(h.columns, cols, strict=True)
                ],
                axis=1,
            )
            if h.kind == "regression":
                out = (out - np.asarray(h.mean)) / np.asarray(h.std)
        blocks.append(out)
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0))


def with_thresholds(head: HeadSpec, thresholds: Sequence[float]) -> HeadSpec:
    """``head`` with new multi-label decision thresholds."""
    return replace(head, thresholds=tuple(float(t) for t in thresholds))


def best_thresholds(y_true: np.ndarray, scores: np.ndarray) -> list[float]:
    """Per-label thresholds that maximise F1 on held-out (validation) data.

    A label without a positive (or a missing column) keeps 0.5. Ties go to the
    threshold nearest 0.5.

    Shape:
        y_true, scores: (N, K) (NaN in ``y_true`` = missing) -> K thresholds.

    Example:
        >>> best_thresholds(np.array([[1.0], [0.0], [1.0]]), np.array([[0.3], [0.1], [0.4]]))
        [0.2]
    """
    y = np.asarray(y_true, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    out = []
    for j in range(y.shape[1]):
        keep = np.isfinite(y[:, j])
        t, p = y[keep, j] > 0.5, s[keep, j]
        if not t.any() or t.all():
            out.append(0.5)
            continue
        cand = np.unique(p)
        mids = np.concatenate([[cand[0] / 2], (cand[:-1] + cand[1:]) / 2, [(cand[-1] + 1) / 2]])
        best, best_f1 = 0.5, -1.0
        for c in sorted(mids, key=lambda m: abs(m - 0.5)):
            pred = p >= c
            tp = float((pred & t).sum())
            f1 = 2 * tp / (pred.sum() + t.sum())
            if f1 > best_f1 + 1e-12:
                best, best_f1 = float(c), f1
        out.append(round(best, 6))
    return out


def decode_outputs(
    heads: Sequence[HeadSpec], outputs: Sequence[float], standardized: bool = True
) -> dict[str, Any]:
    """One item's model outputs, read per head.

    Args:
        heads: the heads, in model order.
        outputs: the item's concatenated outputs (probabilities of class heads,
            values of regression heads), ``sum(head.size)`` numbers.
        standardized: regression values are z-scored (the model's own outputs);
            ``False``: already in the column's units (the inference graph's outputs).

    Returns:
        ``{head: answer}``: a multiclass head gives ``{"kind", "label", "confidence",
        "probs": {class: p}}``; a multi-label head ``{"kind", "labels": [on labels],
        "probs": {label: p}, "thresholds": {label: t}}``; a regression head ``{"kind",
        "values": {column: value in the column's units}}``.

    Example:
        >>> h = [HeadSpec("e", "multiclass", ("e",), ("a", "b")),
        ...      HeadSpec("d", "regression", ("d",), ("d",), "mse", mean=(2.0,), std=(0.5,))]
        >>> out = decode_outputs(h, [0.25, 0.75, 2.0])
        >>> out["e"]["label"], out["d"]["values"]
        ('b', {'d': 3.0})
    """
    values = [float(v) for v in outputs]
    result: dict[str, Any] = {}
    start = 0
    for h in heads:
        part = values[start : start + h.size]
        start += h.size
        if h.kind == "multiclass":
            k = int(np.argmax(part))
            result[h.name] = {
                "kind": h.kind,
                "label": h.classes[k],
                "confidence": part[k],
                "probs": dict(zip(h.classes, part, strict=True)),
            }
        elif h.kind == "multilabel":
            th = list(h.thresholds) or [0.5] * h.size
            result[h.name] = {
                "kind": h.kind,
                "labels": [c for c, p, t in zip(h.classes, part, th, strict=True) if p >= t],
                "probs": dict(zip(h.classes, part, strict=True)),
                "thresholds": dict(zip(h.classes, th, strict=True)),
            }
        else:
            result[h.name] = {
                "kind": h.kind,
                "values": dict(
                    zip(h.classes, h.to_units(part).tolist() if standardized else part, strict=True)
                ),
            }
    return result


@dataclass(frozen=True)
class HeadLayout:
    """Where each head sits in the model's concatenated outputs and the packed targets.

    Args:
        heads: the heads, in model order.

    Example:
        >>> h = [HeadSpec("e", "multiclass", ("e",), ("a", "b", "c")),
        ...      HeadSpec("v", "regression", ("v",), ("v",), "mse", mean=(0.0,), std=(1.0,))]
        >>> HeadLayout(h).outputs, HeadLayout(h).targets
        ([(0, 3), (3, 4)], [(0, 1), (1, 2)])
    """

    heads: tuple[HeadSpec, ...]
    outputs: list[tuple[int, int]] = field(init=False)
    targets: list[tuple[int, int]] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "heads", tuple(self.heads))
        outs, tgts, o, t = [], [], 0, 0
        for h in self.heads:
            outs.append((o, o + h.size))
            tgts.append((t, t + h.width))
            o, t = o + h.size, t + h.width
        object.__setattr__(self, "outputs", outs)
        object.__setattr__(self, "targets", tgts)

    @property
    def sizes(self) -> list[int]:
        """Outputs per head (what the model's ``num_classes`` list is)."""
        return [h.size for h in self.heads]

    @property
    def kinds(self) -> list[str]:
        """Kind per head."""
        return [h.kind for h in self.heads]


__all__ = [
    "CLASS_LOSSES",
    "HEAD_KINDS",
    "HEAD_LOSSES",
    "REGRESSION_LOSSES",
    "HeadLayout",
    "HeadSpec",
    "best_thresholds",
    "check_head_options",
    "decode_outputs",
    "encode_targets",
    "fit_heads",
    "head_name",
    "heads_from_data",
    "loss_for",
    "read_label_groups",
    "with_thresholds",
]
