"""Evaluation plots written as PNG files (matplotlib, Agg backend).

Each function takes plain data (a metrics dict, a history table, a predictions
table), writes one PNG atomically and returns its path. matplotlib is imported
inside the functions so ``import vocalis`` stays cheap.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vocalis.errors import DataError
from vocalis.io import PATH_TYPES, atomic_open, read_bytes

__all__ = [
    "plot_confusion",
    "plot_fold_uar",
    "plot_gating",
    "plot_per_class",
    "plot_reliability",
    "plot_run",
    "plot_training_curves",
    "read_history",
]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike) -> str:
    plt = _pyplot()
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return str(path)


def plot_confusion(
    confusion: Sequence[Sequence[float]],
    classes: Sequence[str],
    path: str | os.PathLike,
    normalized: bool = False,
    title: str | None = None,
) -> str:
    """Confusion matrix heat map with a number in every cell.

    Args:
        confusion: counts, rows = true class, columns = predicted class.
        classes: class names in matrix order.
        path: PNG to write.
        normalized: show each row divided by its total (recall on the diagonal).
        title: figure title.

    Shape:
        confusion: (C, C).
    """
    plt = _pyplot()
    cm = np.asarray(confusion, dtype=np.float64)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(classes):
        raise DataError(f"confusion matrix {cm.shape} does not match {len(classes)} classes")
    shown = cm / np.maximum(cm.sum(1, keepdims=True), 1) if normalized else cm
    k = len(classes)
    size = max(3.6, 0.5 * k + 1.6)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalized else max(cm.max(), 1))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(k), labels=list(classes), rotation=45, ha="right")
    ax.set_yticks(range(k), labels=list(classes))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    limit = shown.max() / 2 if shown.size else 0
    for i in range(k):
        for j in range(k):
            text = f"{shown[i, j]:.2f}" if normalized else f"{int(cm[i, j])}"
            ax.text(
                j, i, text, ha="center", va="center", fontsize=8,
                color="white" if shown[i, j] > limit else "black",
            )  # fmt: skip
    ax.set_title(
        title or ("confusion matrix (row-normalised)" if normalized else "confusion matrix")
    )
    return _save(fig, path)


def plot_per_class(
    per_class: Mapping[str, Mapping[str, float]], path: str | os.PathLike, title: str | None = None
) -> str:
    """Grouped bars of precision, recall and F1 per class (support in the labels).

    Args:
        per_class: ``metrics["per_class"]`` ({class: {precision, recall, f1, support}}).
        path: PNG to write.
        title: figure title.
    """
    plt = _pyplot()
    names = list(per_class)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(names) + 2), 3.6))
    for off, key in zip((-0.27, 0.0, 0.27), ("precision", "recall", "f1"), strict=True):
        ax.bar(x + off, [per_class[n][key] for n in names], width=0.27, label=key)
    labels = [f"{n}\n(n={per_class[n].get('support', '?')})" for n in names]
    ax.set_xticks(x, labels=labels, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(ncol=3, fontsize=8, loc="lower right")
    ax.set_title(title or "per-class precision / recall / F1")
    return _save(fig, path)


def read_history(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read ``history.csv`` into ``{column: float array}`` (empty cells become NaN)."""
    try:
        text = read_bytes(path).decode("utf-8")
    except FileNotFoundError:
        raise DataError(f"training history {path} does not exist") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or "epoch" not in rows[0]:
        raise DataError(f"{path}: expected a CSV with an 'epoch' column and one row per epoch")

    def num(v: str | None) -> float:
        try:
            return float(v) if v not in (None, "") else float("nan")
        except ValueError:
            return float("nan")

    return {k: np.array([num(r.get(k)) for r in rows]) for k in rows[0]}


def plot_training_curves(
    history: str | os.PathLike | Mapping[str, Sequence[float]],
    path: str | os.PathLike,
    title: str | None = None,
) -> str:
    """Loss, accuracy/UAR and learning rate against epoch.

    Args:
        history: a ``history.csv`` path or its columns (``epoch``, ``train_loss``,
            ``train_acc``, ``val_loss``, ``val_acc``, ``val_uar``, ``lr``; missing
            ones are skipped).
        path: PNG to write.
        title: figure title.
    """
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    h = read_history(history) if isinstance(history, PATH_TYPES) else history
    h = {k: np.asarray(v, dtype=np.float64) for k, v in h.items()}
    if "epoch" not in h:
        raise DataError("training history has no 'epoch' column")
    ep = h["epoch"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    panels = (
        ("loss", ("train_loss", "val_loss")),
        ("accuracy / UAR", ("train_acc", "val_acc", "val_uar", "val_macro_f1")),
        ("learning rate", ("lr",)),
    )
    for ax, (name, keys) in zip(axes, panels, strict=True):
        for key in keys:
            if key in h and np.isfinite(h[key]).any():
                ax.plot(ep, h[key], marker="o", markersize=2.5, label=key)
        if name == "accuracy / UAR" and "val_uar" in h and np.isfinite(h["val_uar"]).any():
            best = int(np.nanargmax(h["val_uar"]))
            ax.axvline(ep[best], color="grey", ls="--", lw=0.8, label=f"best epoch {int(ep[best])}")
        if name == "learning rate":
            lr = h.get("lr")
            if lr is not None and np.all(lr[np.isfinite(lr)] > 0) and np.isfinite(lr).any():
                ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, y=1.04)
    return _save(fig, path)


def plot_reliability(
    confidence: np.ndarray,
    correct: np.ndarray,
    path: str | os.PathLike,
    n_bins: int = 15,
    title: str | None = None,
) -> str:
    """Reliability diagram: accuracy per confidence bin against the diagonal.

    Bars show each bin's accuracy, a second axis the share of items in it; the
    title carries the expected calibration error.

    Shape:
        confidence, correct: (N,).
    """
    from vocalis.metrics.classification import expected_calibration_error

    plt = _pyplot()
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=np.float64)
    keep = np.isfinite(conf)
    conf, ok = conf[keep], ok[keep]
    edges = np.linspace(0, 1, n_bins + 1)
    bins = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    acc = np.bincount(bins, weights=ok, minlength=n_bins) / np.maximum(count, 1)
    mean_conf = np.bincount(bins, weights=conf, minlength=n_bins) / np.maximum(count, 1)
    centers = (edges[:-1] + edges[1:]) / 2
    width = 1 / n_bins
    fig, (ax, axh) = plt.subplots(
        2, 1, figsize=(4.8, 5.2), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    used = count > 0
    ax.bar(centers[used], acc[used], width=width, edgecolor="k", lw=0.4, label="accuracy")
    ax.bar(
        centers[used], mean_conf[used] - acc[used], bottom=acc[used], width=width,
        color="tab:red", alpha=0.25, edgecolor="tab:red", lw=0.4, label="gap to confidence",
    )  # fmt: skip
    ax.plot([0, 1], [0, 1], "k--", lw=0.8, label="perfect calibration")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=7)
    axh.bar(centers, count, width=width, color="grey", edgecolor="k", lw=0.4)
    axh.set_ylabel("items")
    axh.set_xlabel("confidence (probability of the predicted class)")
    ece = expected_calibration_error(conf, ok, n_bins) if conf.size else float("nan")
    ax.set_title(title or f"reliability diagram (ECE {ece:.3f}, {n_bins} bins)")
    return _save(fig, path)


def plot_fold_uar(
    fold_uar: Mapping[str, float],
    path: str | os.PathLike,
    pooled: float | None = None,
    title: str | None = None,
    metric: str = "UAR",
) -> str:
    """One bar per fold (e.g. per left-out speaker) with the mean and pooled lines.

    Args:
        fold_uar: {fold name: UAR}.
        path: PNG to write.
        pooled: pooled UAR over all folds' predictions (drawn as a line).
        title: figure title.
        metric: axis label.
    """
    plt = _pyplot()
    names = list(fold_uar)
    vals = np.array([fold_uar[n] for n in names], dtype=np.float64)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.55 * len(names) + 2), 3.4))
    ax.bar(range(len(names)), vals, color="tab:blue")
    if vals.size:
        ax.axhline(
            np.nanmean(vals), color="k", ls="--", lw=0.9, label=f"mean {np.nanmean(vals):.3f}"
        )
    if pooled is not None:
        ax.axhline(pooled, color="tab:red", ls=":", lw=1.2, label=f"pooled {pooled:.3f}")
    for i, v in enumerate(vals):
        ax.text(i, v + 0.01, f"{v:.2f}", ha="center", fontsize=7)
    ax.set_xticks(range(len(names)), labels=names, rotation=45 if len(names) > 12 else 0)
    ax.set_ylim(0, 1.08)
    ax.set_ylabel(metric)
    ax.set_xlabel("fold")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title(title or f"{metric} per fold")
    return _save(fig, path)


def plot_gating(gating_csv: str | os.PathLike, path: str | os.PathLike) -> str:
    """Box plots of a fusion gate per speaker (and per class when ``gating.csv`` has one).

    Args:
        gating_csv: ``gating.csv`` of a run (``id, speaker[, class], gate_ptm``; written
            by :func:`vocalis.training.artifacts.write_gating`).
        path: PNG to write.

    Raises:
        DataError: the file is missing or has no ``gate_ptm`` column.
    """
    try:
        text = read_bytes(gating_csv).decode("utf-8")
    except FileNotFoundError:
        raise DataError(f"gating table {gating_csv} does not exist") from None
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows or "gate_ptm" not in rows[0]:
        raise DataError(f"{gating_csv}: expected columns id, speaker, [class,] gate_ptm")
    kinds = [k for k in ("speaker", "class") if k in rows[0]]
    plt = _pyplot()
    groups = {k: sorted({r[k] for r in rows}) for k in kinds}
    width = max(6.0, 0.22 * max(len(g) for g in groups.values()))
    fig, axes = plt.subplots(len(kinds), 1, figsize=(width, 3.2 * len(kinds)), squeeze=False)
    for ax, kind in zip(axes[:, 0], kinds, strict=True):
        names = groups[kind]
        data = [[float(r["gate_ptm"]) for r in rows if r[kind] == n] for n in names]
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(names) + 1), names, rotation=90, fontsize=6)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel("gate (PTM weight)")
        ax.set_title(f"gate per {kind} (1 = pretrained encoder only, 0 = handcrafted only)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_run(run_dir: str | os.PathLike) -> list[str]:
    """Draw the PNGs of a finished training run from its files; return their paths.

    ``training_curves.png`` from ``history.csv``, ``confusion_val.png`` from the
    validation confusion matrix in ``metrics.json`` (closed-set speaker
    identification for speaker-labelled runs) and ``gating.png`` from ``gating.csv``;
    a file whose source is missing is left out.
    """
    import json

    from vocalis.io import as_path

    run = as_path(run_dir)
    out = []
    if (run / "history.csv").is_file():
        history = str(run / "history.csv")  # a str: the plot takes paths or a mapping
        out.append(plot_training_curves(history, run / "training_curves.png", run.name))
    if (run / "metrics.json").is_file():
        metrics = json.loads(read_bytes(run / "metrics.json").decode("utf-8"))
        val = metrics.get("val") or {}
        classes = val.get("classes") or metrics.get("classes") or []
        if val.get("confusion") is not None and 0 < len(classes) <= 200:
            out.append(
                plot_confusion(
                    val["confusion"],
                    classes,
                    run / "confusion_val.png",
                    title="validation, closed-set identification (kept epoch)",
                )
            )
    if (run / "gating.csv").is_file():
        out.append(plot_gating(run / "gating.csv", run / "gating.png"))
    return out
