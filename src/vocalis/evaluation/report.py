"""One self-contained HTML report for a run folder or a cross-validation folder.

``report(dir)`` writes ``dir/report.html``: summary metrics, confusion matrices,
per-class bars and table, the per-fold table and bars (CV), training curves
(per fold for CV), the reliability diagram and the most confident errors. The
PNGs are embedded as base64 ``data:`` URIs, so the file can be mailed or
attached to a paper review on its own; the PNGs themselves stay in
``dir/plots/``.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from vocalis.io import as_path, write_text

__all__ = ["report"]

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.4;padding:0 1em}
h1{font-size:1.6em;border-bottom:2px solid #3465a4;padding-bottom:.2em}
h2{font-size:1.25em;margin-top:1.8em;color:#3465a4}
h3{font-size:1.05em;margin-bottom:.3em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#eef2f8}
td.l,th.l{text-align:left}
tr.failed td{background:#fde8e8}
.cards{display:flex;flex-wrap:wrap;gap:.8em}
.card{border:1px solid #ccd;border-radius:6px;padding:.5em 1em;min-width:7em;background:#f8f9fc}
.card .v{font-size:1.5em;font-weight:600}
.card .k{font-size:.8em;color:#555}
.warn{background:#fff4d6;border:1px solid #e0b040;padding:.6em 1em;border-radius:6px}
.note{color:#555;font-size:.9em}
img{max-width:100%;border:1px solid #eee;margin:.3em 0}
.grid{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
.grid img{max-width:calc(50% - 1em)}
details{margin:.5em 0}
pre{background:#f6f6f6;padding:.6em;overflow:auto;font-size:.8em}
dl.legend{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;font-size:.85em}
.legend dt{font-weight:600}
.legend dd{margin:0;color:#444}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return _e(value)


def _img(path: str | os.PathLike, alt: str) -> str:
    data = base64.b64encode(as_path(path).read_bytes()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def _table(
    header: Sequence[str] | None,
    rows: Sequence[Sequence[Any]],
    left: int = 1,
    classes: Sequence[str] | None = None,
) -> str:
    head = "".join(
        f'<th class="{"l" if i < left else ""}">{_e(h)}</th>' for i, h in enumerate(header or [])
    )
    thead = f"<thead><tr>{head}</tr></thead>" if header else ""
    body = []
    for k, row in enumerate(rows):
        cls = f' class="{classes[k]}"' if classes and classes[k] else ""
        cells = "".join(
            f'<td class="{"l" if i < left else ""}">{_fmt(v)}</td>' for i, v in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table>{thead}<tbody>{''.join(body)}</tbody></table>"


#: What the summary cards and tables mean (shown under them in the report).
CARD_LEGEND = {
    "UAR": "unweighted average recall: the mean over classes of the share of each class "
    "recognised (chance = 1 / number of classes)",
    "accuracy": "share of all items labelled right",
    "macro F1": "F1 (harmonic mean of precision and recall) averaged over classes",
    "weighted F1": "F1 averaged over classes, weighted by their number of items",
    "ECE": "expected calibration error: the gap between confidence and accuracy over 15 bins "
    "(0 = calibrated)",
    "items": "rows scored",
    "best epoch": "the epoch whose weights were kept (the best validation UAR)",
}

#: The extra rows of a cross-validation's summary table.
SUMMARY_LEGEND = {
    "pooled test": "the metric over the concatenated test predictions of all finished folds",
    "fold mean / fold std": "mean and sample standard deviation of the per-fold metric",
    "validation UAR": "each fold's validation UAR (what chose its epoch or C) on rows of its "
    "training speakers, averaged over folds",
    **{k: v for k, v in CARD_LEGEND.items() if k in ("UAR", "accuracy", "macro F1", "ECE")},
}

#: The columns of the folds table.
FOLD_LEGEND = {
    "fold": "the fold's folder",
    "test group": "the speakers (or groups) held out as this fold's test rows",
    "status": "success, failed (see the fold's error.txt) or not run yet",
    "n": "test rows of the fold",
    "UAR / accuracy / macro F1": "the fold model's scores on its test rows",
    "best epoch": "the epoch whose weights were kept (neural models; empty for ensembles)",
    "val UAR": "validation UAR of the kept model (1 - best_error in training_results.json): "
    "on held-out training speakers, or by inner leave-one-speaker-out for ensembles",
    "seconds": "wall time of the fold (fit + test)",
}


def _legend(legend: Mapping[str, str]) -> str:
    items = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in legend.items())
    return f'<dl class="legend">{items}</dl>'


def _partial_text(rec: Any) -> str:
    """``"partial: 1 of 10 folds"`` for an unfinished CV, else ``""``."""
    if not rec.partial:
        return ""
    return f"partial: {rec.cv.get('n_finished')} of {rec.cv.get('n_folds')} folds"


def _cards(
    metrics: Mapping[str, Any], extra: Mapping[str, Any] | None = None, prefix: str = ""
) -> str:
    items = [
        ("UAR", metrics.get("uar")),
        ("accuracy", metrics.get("accuracy")),
        ("macro F1", metrics.get("macro_f1")),
        ("weighted F1", metrics.get("weighted_f1")),
        ("ECE", metrics.get("ece")),
        ("items", metrics.get("n")),
    ]
    if prefix:
        items = [(f"{k} ({prefix})", v) for k, v in items]
    items += list((extra or {}).items())
    cards = "".join(
        f'<div class="card"><div class="v">{_fmt(v, 3)}</div><div class="k">{_e(k)}</div></div>'
        for k, v in items
        if v is not None
    )
    return f'<div class="cards">{cards}</div>'


def _per_class_table(metrics: Mapping[str, Any]) -> str:
    rows = [
        [c, v["precision"], v["recall"], v["f1"], v["support"]]
        for c, v in (metrics.get("per_class") or {}).items()
    ]
    return _table(["class", "precision", "recall", "F1", "support"], rows)


def _errors_section(pred: Any, top: int) -> str:
    from vocalis.metrics.predictions import error_analysis

    errors = error_analysis(pred, top)
    if not errors:
        return "<p>No errors.</p>"
    rows = [
        [
            Path(e["path"]).name,
            e["speaker"],
            e["true_label"],
            e["pred_label"],
            e["confidence"],
            e["p_true"],
        ]
        for e in errors
    ]
    return _table(["file", "speaker", "true", "predicted", "confidence", "p(true)"], rows, left=4)


def _validation_text(v: Mapping[str, Any]) -> str:
    what = {"stratified": "training rows, stratified by label", "speaker": "training speakers"}
    frac = v.get("fraction")
    share = f"{frac:.0%} of the " if isinstance(frac, (int, float)) else ""
    return f"{share}{what.get(v.get('protocol'), v.get('protocol'))} (seed {v.get('seed')})"


def _metric_plots(out: Path, metrics: Mapping[str, Any], pred: Any) -> dict[str, str]:
    from vocalis.evaluation.assess import write_plots

    if not metrics.get("confusion"):
        return {}
    return write_plots(out, metrics, pred)


def report(
    run_or_cv_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    top_errors: int = 25,
    title: str | None = None,
) -> str:
    """Write ``report.html`` for a run folder or a CV folder.

    Args:
        run_or_cv_dir: a finished run folder (``metrics.json``/``predictions.csv``)
            or a CV folder (``cv_results.json``).
        out: HTML path (default ``<dir>/report.html``).
        top_errors: rows in the most-confident-errors table.
        title: page title (default: the folder name).

    Returns:
        The path of the HTML file.

    Raises:
        DataError: the folder is not a finished run or CV folder.
    """
    from vocalis.evaluation import plots
    from vocalis.evaluation.records import load_record
    from vocalis.metrics.predictions import read_predictions

    rec = load_record(run_or_cv_dir)
    d = rec.path
    out_path = as_path(out) if out is not None else d / "report.html"
    source = rec.test_source or d
    pred = (
        read_predictions(source / "predictions.csv")
        if (source / "predictions.csv").is_file()
        else None
    )
    metrics = rec.metrics
    val = rec.val
    partial = _partial_text(rec)
    parts: list[str] = []
    heading = title or f"Vocalis report: {d.name}" + (f" ({partial})" if partial else "")
    parts.append(f"<h1>{_e(heading)}</h1>")
    meta = [
        ("folder", str(d)),
        ("kind", "cross-validation" if rec.kind == "cv" else "single run"),
        ("model", rec.model),
        ("features", rec.features),
        ("protocol", rec.protocol),
        ("validation", rec.validation if rec.kind == "run" else None),
        ("test metrics from", str(rec.test_source) if rec.test_source not in (None, d) else None),
    ]
    if rec.kind == "cv":
        norm = rec.cv.get("normalization") or {}
        meta += [
            ("normalisation", f"{norm.get('protocol')}: {norm.get('description', '')}"),
            ("validation", _validation_text(rec.cv.get("validation") or {})),
            ("folds finished", f"{rec.cv.get('n_finished')} / {rec.cv.get('n_folds')}"),
            ("manifest", rec.cv.get("manifest")),
        ]
    meta.append(("generated", datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")))
    parts.append(_table(None, [[k, v] for k, v in meta if v is not None], left=2))
    if partial:
        parts.append(
            f'<p class="warn"><b>Partial result.</b> Only {_e(partial)}: the pooled and mean '
            "numbers cover the finished folds only and will change when the others run "
            "(run the same command again to continue).</p>"
        )
    if rec.speaker_dependent:
        parts.append(
            '<p class="warn"><b>Speaker-dependent protocol.</b> The same speakers are in '
            "training and in the scored rows: these numbers are optimistic and not comparable "
            "with leave-one-speaker-out results.</p>"
        )
    if rec.kind == "cv" and rec.cv.get("failed"):
        failed = ", ".join(f"{k} ({v})" for k, v in rec.cv["failed"].items())
        parts.append(f'<p class="warn"><b>Failed folds:</b> {_e(failed)}</p>')

    # ---- summary
    parts.append("<h2>Summary</h2>")
    if rec.kind == "cv":
        mean, std = rec.cv.get("mean") or {}, rec.cv.get("std") or {}
        label = f"pooled test, {partial}" if partial else "pooled test"
        parts.append(
            '<p class="note">Test: each fold\'s model scored on its held-out rows. Pooled: '
            "metrics on the concatenated predictions of all finished folds. Mean ± std: over "
            "folds (sample std).</p>"
        )
        parts.append(_cards(metrics or {}, prefix=label))
        fold_val = list(rec.fold_val_uar().values())
        val_mean = sum(fold_val) / len(fold_val) if fold_val else None
        rows = [
            [k, (metrics or {}).get(k), mean.get(k), std.get(k)]
            for k in ("uar", "accuracy", "macro_f1", "weighted_f1", "ece")
        ]
        rows.append(["validation UAR (mean over folds)", None, val_mean, None])
        parts.append(_table(["metric", "pooled test", "fold mean", "fold std"], rows))
        parts.append(_legend(SUMMARY_LEGEND))
    else:
        best = rec.stored.best_epoch if rec.stored is not None else None
        if val:
            extra = {"best epoch": best} if best is not None else {}
            parts.append(f'<h3>Validation</h3><p class="note">{_e(rec.validation or "")}</p>')
            parts.append(_cards(val, extra, prefix="validation"))
        if metrics:
            parts.append("<h3>Test</h3>")
            parts.append(_cards(metrics, prefix="test"))
        if val or metrics:
            keys = {"uar": "UAR", "accuracy": "accuracy", "macro_f1": "macro F1",
                    "weighted_f1": "weighted F1", "ece": "ECE", "n": "items"}  # fmt: skip
            shown_keys = {v for k, v in keys.items() if k in val or k in metrics}
            if best is not None and val:
                shown_keys.add("best epoch")
            parts.append(_legend({k: v for k, v in CARD_LEGEND.items() if k in shown_keys}))
    if not metrics and not val:
        parts.append("<p>No validation or test metrics were found in this folder.</p>")

    # ---- every head of a multi-head run
    head_rows = rec.head_rows()
    if head_rows:
        parts.append("<h2>Heads</h2>")
        cols = ["head", "kind", "scored_on", "accuracy", "uar", "macro_f1", "macro_auc", "ccc"]
        cols += ["mae", "rmse"]
        parts.append(_table(cols, [[r.get(c) for c in cols] for r in head_rows]))
        parts.append(
            '<p class="note">Class heads: accuracy, UAR, macro F1; multi-label heads: macro '
            "AUC, macro F1 at the thresholds chosen on validation, mean per-label UAR; "
            "regression heads: CCC, MAE and RMSE in the column's units.</p>"
        )

    # ---- confusion and per-class: test metrics, else the validation ones
    shown = metrics if metrics.get("confusion") else val
    figs = _metric_plots(d, shown, pred if shown is metrics else None) if shown else {}
    if figs:
        which = "test" if shown is metrics else "validation"
        parts.append(f"<h2>Confusion matrix ({which})</h2>")
        parts.append(
            '<div class="grid">'
            + _img(figs["confusion"], "confusion matrix (counts)")
            + _img(figs["confusion_normalized"], "confusion matrix (row-normalised)")
            + "</div>"
        )
        parts.append(f"<h2>Per-class scores ({which})</h2>")
        parts.append(_img(figs["per_class"], "per-class precision recall F1"))
        parts.append(_per_class_table(shown))

    # ---- folds
    if rec.kind == "cv":
        parts.append("<h2>Folds</h2>")
        fold_metrics = rec.cv.get("folds") or {}
        fold_val = rec.fold_val_uar()
        rows, row_cls, fold_uar = [], [], {}
        for name in rec.cv.get("fold_names", []):
            fm = fold_metrics.get(name) or {}
            tr = rec.training.get(name) or {}
            label = ", ".join(tr.get("test_groups", [])) or name
            status = tr.get("status", "finished" if fm else "not run")
            rows.append(
                [
                    name,
                    label,
                    status,
                    fm.get("n"),
                    fm.get("uar"),
                    fm.get("accuracy"),
                    fm.get("macro_f1"),
                    tr.get("best_epoch"),
                    fold_val.get(name),
                    None if tr.get("seconds") is None else f"{float(tr['seconds']):.1f}",
                ]
            )
            row_cls.append("failed" if status == "failed" else "")
            if fm.get("uar") is not None:
                fold_uar[label] = fm["uar"]
        parts.append(
            _table(
                [
                    "fold",
                    "test group",
                    "status",
                    "n",
                    "UAR",
                    "accuracy",
                    "macro F1",
                    "best epoch",
                    "val UAR",
                    "seconds",
                ],
                rows,
                left=3,
                classes=row_cls,
            )
        )
        parts.append(_legend(FOLD_LEGEND))
        if fold_uar:
            png = plots.plot_fold_uar(
                fold_uar, d / "plots" / "fold_uar.png", pooled=(metrics or {}).get("uar")
            )
            parts.append(_img(png, "UAR per fold"))

    # ---- training curves
    curves = []
    if rec.kind == "cv":
        for name, fold_dir in rec.folds.items():
            if (fold_dir / "history.csv").is_file():
                curves.append((name, fold_dir / "history.csv"))
    elif (d / "history.csv").is_file():
        curves.append((d.name, d / "history.csv"))
    if curves:
        parts.append("<h2>Training curves</h2>")
        for name, hist in curves:
            try:
                png = plots.plot_training_curves(hist, d / "plots" / f"curves_{name}.png")
            except Exception as err:  # a broken history must not stop the report
                parts.append(f"<p>{_e(name)}: cannot plot history ({_e(err)})</p>")
                continue
            parts.append(f"<h3>{_e(name)}</h3>" + _img(png, f"training curves {name}"))

    # ---- calibration
    if figs.get("reliability"):
        parts.append("<h2>Calibration</h2>")
        parts.append(
            f'<p class="note">ECE {_fmt((metrics or {}).get("ece"), 4)} (15 equal-width bins); '
            f"mean confidence when right {_fmt(metrics.get('mean_confidence_correct'), 3)}, "
            f"when wrong {_fmt(metrics.get('mean_confidence_wrong'), 3)}.</p>"
        )
        parts.append(_img(figs["reliability"], "reliability diagram"))

    # ---- errors
    if pred is not None:
        parts.append(f"<h2>Most confident errors (top {top_errors})</h2>")
        parts.append(_errors_section(pred, top_errors))

    # ---- config
    if rec.config:
        import yaml

        text = yaml.safe_dump(rec.config, sort_keys=False)
        parts.append(f"<details><summary>Resolved config</summary><pre>{_e(text)}</pre></details>")

    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(heading)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
    write_text(out_path, page)
    return str(out_path)
