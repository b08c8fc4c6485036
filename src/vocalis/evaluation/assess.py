"""Score a model on a labelled manifest and write the evaluation record.

:func:`evaluate` is what ``vocalis eval CKPT --manifest m.csv`` (alias ``vocalis
test``) calls. It predicts every row with the checkpoint's own pipeline, read by
the one reader and rebuilt by the one builder (:class:`vocalis.inference.Predictor`:
tier 0, features, normalisation, model; any model kind), scores the predictions
and, given ``out``, writes::

    out/
      metrics.json        # the run folder schema: test metrics, checkpoint and manifest
      predictions.csv     # path,speaker,true_label,pred_label,correct,confidence,p_<class>...
      misclassified.csv   # the most confident errors (path, true and predicted label...)
      errors.csv          # rows that could not be scored (id, path, stage, kind, reason)
      plots/confusion.png, confusion_normalized.png, per_class.png, reliability.png
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vocalis.data.failures import Skipped, check_failures, classify, summary, write_errors
from vocalis.errors import DataError
from vocalis.io import as_path, write_text

__all__ = ["evaluate", "write_misclassified", "write_plots"]


def write_plots(
    out_dir: str | os.PathLike, metrics: Mapping[str, Any], predictions: Any = None
) -> dict[str, str]:
    """Confusion matrices, per-class bars and (with probabilities) the reliability diagram.

    Args:
        out_dir: folder; plots go to ``out_dir/plots``.
        metrics: a :func:`~vocalis.metrics.classification.classification_metrics` dict.
        predictions: optional :class:`~vocalis.metrics.predictions.Predictions`.

    Returns:
        ``{plot name: PNG path}``.
    """
    from vocalis.evaluation import plots

    d = as_path(out_dir) / "plots"
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


def write_misclassified(path: str | os.PathLike, errors: Sequence[Mapping[str, Any]]) -> str:
    """Write :func:`~vocalis.metrics.predictions.error_analysis` rows (``misclassified.csv``)."""
    cols = ["path", "speaker", "true_label", "pred_label", "confidence", "p_true"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for row in errors:
        w.writerow({k: row.get(k) for k in cols})
    write_text(path, buf.getvalue())
    return str(path)


def _labelled_rows(checkpoint: Any, manifest: Any) -> tuple[Any, str]:
    """The manifest with the training run's label map applied, and its label column."""
    from vocalis.data import Manifest, apply_label_map, read_manifest

    rows = manifest if isinstance(manifest, Manifest) else read_manifest(manifest)
    # a neural experiment keeps its labels in ``dataset:``, an ensemble recipe at its top
    # level (:class:`~vocalis.ensemble.recipe_file.EnsembleRecipe`); the keys are the same
    config = checkpoint.config
    dataset = config if checkpoint.model.kind == "ensemble" else (config.get("dataset") or {})
    column = str(dataset.get("label_column") or "label")
    rows.require(column)
    if dataset.get("label_map") is not None:
        rows = apply_label_map(
            rows, dataset["label_map"], column=column, unmapped=dataset.get("unmapped", "error")
        )
    return rows, column


def evaluate(
    checkpoint: str | os.PathLike | None,
    manifest: str | os.PathLike | Any,
    out: str | os.PathLike | None = None,
    *,
    visualize: bool = True,
    save_predictions: bool = True,
    top_errors: int = 20,
    batch_size: int = 16,
    device: str = "cpu",
    progress: bool = True,
    max_failures: float | int = 0.1,
    cache_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Score a model on every row of a labelled manifest.

    Args:
        checkpoint: a run folder, ``RUN/model``, a checkpoint file, or None for the
            bundled model (see :func:`vocalis.inference.resolve_checkpoint`).
        manifest: manifest CSV path or :class:`~vocalis.data.Manifest`; the training
            run's ``dataset.label_map`` is applied to it.
        out: folder for the record (``None``: write nothing).
        visualize: write the plots (with ``out``).
        save_predictions: write ``predictions.csv`` and ``misclassified.csv`` (with
            ``out``); ``errors.csv`` (the rows that could not be scored) is always
            written with ``out``.
        top_errors: rows of the most-confident-errors table.
        batch_size: files per forward pass.
        device: ``cpu``, ``cuda``...
        progress: progress bar.
        max_failures: unreadable rows tolerated, a fraction (float) or a count (int);
            more raise after every row was tried.
        cache_dir: a feature cache (folder or URL, e.g. the training run's
            ``features.cache_dir``): features of the checkpoint's pipeline are read from
            it, or computed once and kept there (:meth:`Predictor.predict_cached`).

    Returns:
        :func:`vocalis.metrics.classification.classification_metrics` of the predictions,
        plus ``n`` (scored rows), ``n_failed`` (unreadable files), ``rows`` (the
        counts: ``n_rows``, ``n_used``, ``n_skipped`` by kind), ``checkpoint``,
        ``manifest`` and, with ``out``, ``out_dir`` and ``files``.

    Raises:
        ModelError: a missing, old or inconsistent checkpoint.
        DataError: a label the model was never trained on (named, with the known
            classes), no readable file, or more unreadable files than ``max_failures``.
    """
    from vocalis.data import encode_known
    from vocalis.inference import Predictor
    from vocalis.metrics.predictions import (
        Predictions,
        error_analysis,
        prediction_rows,
        write_predictions,
    )

    # every labelled row is scored: no "no speech detected" answers in an evaluation
    predictor = Predictor.from_checkpoint(checkpoint, device=device, min_speech=None)
    ckpt = predictor.pipeline.checkpoint
    rows, column = _labelled_rows(ckpt, manifest)
    source = str(rows.source)
    heads = predictor.heads
    packed = None
    if heads is None:
        targets = encode_known(ckpt.labels, rows.labels(column), source)
    else:
        from vocalis.data.targets import encode_targets

        packed = encode_targets(rows, heads)  # every head's column must be there
        first = packed[:, 0]
        targets = [int(v) if np.isfinite(v) else -1 for v in first]
    ids = [str(i) for i in range(len(rows))]
    if cache_dir is not None:
        batch = predictor.predict_cached(rows.paths, cache_dir, batch_size, progress, ids)
    elif predictor.needs_speakers and "speaker" in rows.columns:  # per-speaker statistics
        batch = predictor.predict_speakers(rows.paths, rows.speakers, progress, ids)
    else:
        batch = predictor.predict_many(
            rows.paths, batch_size=batch_size, progress=progress, ids=ids
        )
    keep = [int(p.id) for p in batch]
    skipped = _skipped(rows, keep, batch.failures)
    if out is not None:
        write_errors(as_path(out) / "errors.csv", skipped)
    if not len(batch):
        raise DataError(f"{source}: no file could be read; nothing to evaluate")
    check_failures(skipped, len(rows), max_failures, "vocalis eval")
    failures = list(batch.failures)
    classes = list(predictor.classes)
    per_head = None
    if heads is not None:
        per_head = _score_heads(heads, batch, packed[keep])
        if heads[0].kind != "multiclass":  # no class table of the first head
            metrics = _head_record(heads, per_head, len(batch), batch, predictor, source)
            metrics["rows"] = summary(skipped, len(rows))
            if out is not None:
                out = as_path(out)
                _write_record(out, metrics, {"errors": str(out / "errors.csv")}, ckpt.kind, classes)
                metrics["out_dir"] = str(out)
            return metrics
        batch_items = [(i, p) for i, p in zip(keep, batch, strict=True) if targets[i] >= 0]
        keep, batch = [i for i, _ in batch_items], [p for _, p in batch_items]
    probs = np.array([[p.probs[c] for c in classes] for p in batch], dtype=np.float64)
    kept = rows.select(keep)
    pred = Predictions.from_rows(
        prediction_rows(kept, [targets[i] for i in keep], probs, classes), classes
    )
    metrics = pred.metrics()
    if per_head is not None:
        metrics["heads"] = per_head
    metrics.update(
        n=len(pred),
        n_failed=len(failures),
        rows=summary(skipped, len(rows)),
        checkpoint=predictor.pipeline.source,
        manifest=source,
    )
    if out is None:
        return metrics
    out = as_path(out)
    files: dict[str, str] = {"errors": str(out / "errors.csv")}
    if save_predictions:
        files["predictions"] = write_predictions(out / "predictions.csv", pred)
        files["misclassified"] = write_misclassified(
            out / "misclassified.csv", error_analysis(pred, top_errors)
        )
    if visualize:
        files.update(write_plots(out, metrics, pred))
    _write_record(out, metrics, files, ckpt.kind, classes)
    metrics["files"] = files
    metrics["out_dir"] = str(out)
    return metrics


def _skipped(rows: Any, kept: list[int], failures: Sequence[Any]) -> list[Skipped]:
    """The rows the predictor could not score, with their one-line reasons, in row order."""
    reasons = {f.path: f.error for f in failures}
    done = set(kept)
    return [
        Skipped(
            rows.ids[i],
            rows.paths[i],
            "predict",
            classify(reasons.get(rows.paths[i], "")),
            reasons.get(rows.paths[i], "could not be predicted"),
        )
        for i in range(len(rows))
        if i not in done
    ]


def _score_heads(heads: list, batch: Any, packed: np.ndarray) -> dict[str, Any]:
    """Every head's metrics from the predictions' per-head answers (in the columns' units)."""
    from vocalis.metrics.heads import score_heads

    rows = []
    for p in batch:
        values: list[float] = []
        for h in heads:
            answer = p.heads[h.name]
            if h.kind == "regression":
                values += [
                    (answer["values"][c] - m) / sd
                    for c, m, sd in zip(h.classes, h.mean, h.std, strict=True)
                ]
            else:
                values += [answer["probs"][c] for c in h.classes]
        rows.append(values)
    return score_heads(heads, np.asarray(rows, dtype=np.float64), packed)


def _head_record(
    heads: list, per_head: dict[str, Any], n: int, batch: Any, predictor: Any, source: str
) -> dict[str, Any]:
    """The evaluation of a model whose first head is not a class head: per-head metrics."""
    from vocalis.metrics.heads import primary

    metrics = {k: v for k, v in (primary(heads, per_head) or {}).items() if k != "kind"}
    metrics.update(
        heads=per_head,
        n=n,
        n_failed=len(batch.failures),
        checkpoint=predictor.pipeline.source,
        manifest=source,
    )
    return metrics


def _write_record(
    out: Path, metrics: dict[str, Any], files: dict[str, str], kind: str, classes: list[str]
) -> None:
    """``metrics.json`` in the run-folder schema (kind ``eval``); per-head sections too."""
    from vocalis.training.runfolder import RunFolder

    details = {k: metrics[k] for k in ("checkpoint", "manifest", "n_failed", "rows")}
    per_head = metrics.get("heads")
    heads = None
    if per_head:
        heads = {name: {"kind": m["kind"], "val": None, "test": m} for name, m in per_head.items()}
    RunFolder(out).write_metrics(
        kind="eval",
        model=kind,
        test={k: v for k, v in metrics.items() if k not in details and k not in ("n", "heads")},
        n_rows={"test": int(metrics["n"])},
        classes=classes,
        details={**details, "files": files},
        heads=heads,
    )
