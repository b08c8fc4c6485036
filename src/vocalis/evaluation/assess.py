"""Test a trained checkpoint on a manifest and write the evaluation record.

``assess`` is what ``vocalis test CKPT --manifest m.csv`` calls. It runs the
training engine's :func:`vocalis.training.evaluate` and writes::

    out_dir/
      metrics.json        # the run folder schema: test metrics, checkpoint and manifest
      predictions.csv     # path,speaker,true_label,pred_label,correct,confidence,p_<class>...
      errors.csv          # the most confident errors
      plots/confusion.png, confusion_normalized.png, per_class.png, reliability.png
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from vocalis.errors import ModelError
from vocalis.io import write_text

__all__ = ["assess", "default_out_dir", "write_error_table", "write_plots"]


def default_out_dir(checkpoint: str | os.PathLike, manifest: str | os.PathLike | None) -> Path:
    """``<run>/test_<manifest stem>`` for ``<run>/checkpoints/best.pt``."""
    ckpt = Path(checkpoint)
    run = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    stem = Path(str(manifest)).stem if manifest is not None else "manifest"
    return run / f"test_{stem}"


def write_plots(
    out_dir: str | os.PathLike, metrics: Mapping[str, Any], predictions: Any = None
) -> dict[str, str]:
    """Confusion matrices, per-class bars and (with probabilities) the reliability diagram.

    Args:
        out_dir: folder; plots go to ``out_dir/plots``.
        metrics: a :func:`~vocalis.evaluation.metrics.classification_metrics` dict.
        predictions: optional :class:`~vocalis.evaluation.predictions.Predictions`.

    Returns:
        ``{plot name: PNG path}``.
    """
    from vocalis.evaluation import plots

    d = Path(out_dir) / "plots"
    classes = [str(c) for c in metrics["classes"]]
    out = {
        "confusion": plots.plot_confusion(metrics["confusion"], classes, d / "confusion.png"),
        "confusion_normalized": plots.plot_confusion(
            metrics["confusion"], classes, d / "confusion_normalized.png", normalized=True
        ),
        "per_class": plots.plot_per_class(metrics["per_class"], d / "per_class.png"),
    }
    if predictions is not None and predictions.probs is not None:
        out["reliability"] = plots.plot_reliability(
            predictions.confidence, predictions.correct, d / "reliability.png"
        )
    return out


def write_error_table(path: str | os.PathLike, errors: Sequence[Mapping[str, Any]]) -> str:
    """Write :func:`~vocalis.evaluation.predictions.error_analysis` rows as CSV."""
    cols = ["path", "speaker", "true_label", "pred_label", "confidence", "p_true"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for row in errors:
        w.writerow({k: row.get(k) for k in cols})
    write_text(path, buf.getvalue())
    return str(path)


def assess(
    checkpoint: str | os.PathLike,
    manifest: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    visualize: bool = True,
    save_predictions: bool = True,
    *,
    top_errors: int = 20,
    evaluate_fn: Callable[..., Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """Evaluate ``checkpoint`` on every row of ``manifest`` and write the record.

    Args:
        checkpoint: a ``best.pt`` / ``last.pt`` written by training.
        manifest: manifest CSV with the test rows (labels required).
        out_dir: output folder (default :func:`default_out_dir`).
        visualize: write the plots.
        save_predictions: write ``predictions.csv`` and ``errors.csv``.
        top_errors: rows of the most-confident-errors table.
        evaluate_fn: the engine's evaluate (default :func:`vocalis.training.evaluate`).
            It is called as ``evaluate_fn(checkpoint, manifest, out=out_dir)`` and
            either returns the prediction rows under ``"predictions"`` or writes
            ``out_dir/predictions.csv`` itself (the engine does the latter).

    Returns:
        The metrics dict (also in ``metrics.json``) with ``out_dir`` and ``files``.

    Raises:
        ModelError: the engine returned no predictions.
    """
    from vocalis.evaluation.predictions import (
        Predictions,
        error_analysis,
        read_predictions,
        write_predictions,
    )
    from vocalis.training.runfolder import RunFolder

    if evaluate_fn is None:
        from vocalis.training import evaluate as evaluate_fn
    out = Path(out_dir) if out_dir is not None else default_out_dir(checkpoint, manifest)
    written = out / "predictions.csv"
    if written.is_file():
        written.unlink()  # never read a stale file from an earlier call
    result = evaluate_fn(str(checkpoint), str(manifest), out=str(out))
    rows = list(result.get("predictions") or [])
    if rows:
        pred = Predictions.from_rows(rows, result.get("classes"))
    elif written.is_file():
        pred = read_predictions(written)
    else:
        raise ModelError(
            f"evaluating {checkpoint} on {manifest} produced no predictions; check that the "
            "manifest has rows with labels"
        )
    if len(pred) == 0:
        raise ModelError(f"evaluating {checkpoint} on {manifest} produced no predictions")
    metrics = pred.metrics()
    metrics["checkpoint"] = str(checkpoint)
    metrics["manifest"] = str(manifest)
    for key in ("n_failed",):
        if key in result:
            metrics[key] = result[key]
    files: dict[str, str] = {}
    if save_predictions:
        files["predictions"] = write_predictions(written, pred)
        files["errors"] = write_error_table(out / "errors.csv", error_analysis(pred, top_errors))
    elif written.is_file():
        written.unlink()
    if visualize:
        files.update(write_plots(out, metrics, pred))
    metrics["files"] = files
    details = {
        k: metrics[k] for k in ("checkpoint", "manifest", "n_failed", "files") if k in metrics
    }
    RunFolder(out).write_metrics(
        kind="eval",
        model="neural",
        test={k: v for k, v in metrics.items() if k not in details},
        n_rows={"test": len(pred)},
        classes=list(pred.classes),
        details=details,
    )
    metrics["out_dir"] = str(out)
    return metrics
