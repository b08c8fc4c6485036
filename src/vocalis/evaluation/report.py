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

from vocalis.io import write_text

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
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
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


def _cards(metrics: Mapping[str, Any], extra: Mapping[str, Any] | None = None) -> str:
    items = [
        ("UAR", metrics.get("uar")),
        ("accuracy", metrics.get("accuracy")),
        ("macro F1", metrics.get("macro_f1")),
        ("weighted F1", metrics.get("weighted_f1")),
        ("ECE", metrics.get("ece")),
        ("items", metrics.get("n")),
    ]
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
    out_path = Path(out) if out is not None else d / "report.html"
    pred = read_predictions(d / "predictions.csv") if (d / "predictions.csv").is_file() else None
    metrics = rec.metrics
    parts: list[str] = []
    heading = title or f"Vocalis report: {d.name}"
    parts.append(f"<h1>{_e(heading)}</h1>")
    meta = [
        ("folder", str(d)),
        ("kind", "cross-validation" if rec.kind == "cv" else "single run"),
        ("model", rec.model),
        ("features", rec.features),
        ("protocol", rec.protocol),
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
    if rec.kind == "cv" and rec.cv.get("speaker_dependent"):
        parts.append(
            '<p class="warn"><b>Speaker-dependent protocol.</b> Random stratified folds put the '
            "same speakers in training and test: these numbers are optimistic and not comparable "
            "with leave-one-speaker-out results.</p>"
        )
    if rec.kind == "cv" and rec.cv.get("failed"):
        failed = ", ".join(f"{k} ({v})" for k, v in rec.cv["failed"].items())
        parts.append(f'<p class="warn"><b>Failed folds:</b> {_e(failed)}</p>')

    # ---- summary
    parts.append("<h2>Summary</h2>")
    if rec.kind == "cv":
        mean, std = rec.cv.get("mean") or {}, rec.cv.get("std") or {}
        parts.append(
            '<p class="note">Pooled: metrics on the concatenated predictions of all finished '
            "folds. Mean ± std: over folds (sample std).</p>"
        )
        parts.append(_cards(metrics or {}))
        rows = [
            [k, (metrics or {}).get(k), mean.get(k), std.get(k)]
            for k in ("uar", "accuracy", "macro_f1", "weighted_f1", "ece")
        ]
        parts.append(_table(["metric", "pooled", "fold mean", "fold std"], rows))
    else:
        best = rec.stored.best_epoch if rec.stored is not None else None
        extra = {"best_epoch": best} if best is not None else {}
        parts.append(_cards(metrics or {}, extra))
    if not metrics:
        parts.append("<p>No test metrics were found in this folder.</p>")

    # ---- confusion and per-class
    figs = _metric_plots(d, metrics, pred) if metrics else {}
    if figs:
        parts.append("<h2>Confusion matrix</h2>")
        parts.append(
            '<div class="grid">'
            + _img(figs["confusion"], "confusion matrix (counts)")
            + _img(figs["confusion_normalized"], "confusion matrix (row-normalised)")
            + "</div>"
        )
        parts.append("<h2>Per-class scores</h2>")
        parts.append(_img(figs["per_class"], "per-class precision recall F1"))
        parts.append(_per_class_table(metrics))

    # ---- folds
    if rec.kind == "cv":
        parts.append("<h2>Folds</h2>")
        fold_metrics = rec.cv.get("folds") or {}
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
                    tr.get("best_error"),
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
                    "best val error",
                    "seconds",
                ],
                rows,
                left=3,
                classes=row_cls,
            )
        )
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
