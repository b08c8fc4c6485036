"""Compare finished runs and cross-validations in one table.

Example:
    >>> rows = [{"run": "a", "uar": 0.71234, "accuracy": 0.7, "model": "tier1"}]
    >>> print(to_markdown(rows, columns=("run", "model", "uar")))
    | run | model | uar |
    |---|---|---|
    | a | tier1 | 0.7123 |
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vocalis.errors import DataError
from vocalis.io import as_path, write_text

__all__ = [
    "COLUMNS",
    "COLUMN_HELP",
    "OPTIONAL_COLUMNS",
    "compare",
    "legend",
    "table_columns",
    "to_csv",
    "to_markdown",
    "write_table",
]

#: Columns of the comparison table, in order, and what each one means.
COLUMN_HELP = {
    "run": "the run or cross-validation folder",
    "kind": "run (one training or evaluation) or cv (a cross-validation folder)",
    "model": "the model (tier1, ecapa, ensemble, ...)",
    "features": "the input features (an ensemble's: its members)",
    "protocol": "how the rows were split: holdout (speaker val), loso, loso fold, group-kfold...",
    "speaker_dependent": "yes when the same speakers are in training and in the scored rows "
    "(optimistic numbers); empty when not recorded",
    "scored_on": "what uar/accuracy/macro_f1 were measured on: test (held-out test rows; CV: "
    "pooled over the folds' test rows) or val (the validation rows, when a run has no test)",
    "uar": "unweighted average recall (mean per-class recall; chance = 1 / classes)",
    "accuracy": "share of rows labelled right",
    "macro_f1": "F1 averaged over classes",
    "val_uar": "validation UAR: of the kept epoch (neural), of the inner leave-one-speaker-out "
    "(ensembles); CV: mean over folds (= 1 - best_error)",
    "uar_std": "CV: standard deviation of the test UAR over folds",
    "folds": "CV: folds finished / folds planned (partial when fewer)",
    "epochs": "epochs trained (CV: mean kept epoch over folds)",
    "seconds": "wall time (CV: sum over folds)",
    "mode": "speaker verification: 1 pretrained-encoder layers, 2 handcrafted features, 3 both",
    "fusion": "speaker verification, mode 3: concat, cross_attention or gating",
    "feature": "speaker verification: the handcrafted feature mode (mfbe_pitch...)",
    "best_val_loss": "validation loss of the kept epoch",
    "eer": "speaker verification: equal error rate (cosine scores)",
    "min_dcf": "speaker verification: minDCF, p_target 0.01, C_miss = C_fa = 1, normalised",
    "eer_on": "trials of eer/min_dcf: held-out (speakers never trained on) or val (pairs of "
    "validation utterances of the training speakers: speaker-dependent)",
    "heads": "multi-head runs: every head's headline number (UAR of class heads, macro AUC of "
    "multi-label heads, CCC of regression heads; test, else validation; pooled over the folds "
    "for a cross-validation)",
}

#: Columns of the comparison table, in order.
COLUMNS = tuple(COLUMN_HELP)

#: Columns shown only when some row has a value (speaker verification, validation loss).
OPTIONAL_COLUMNS = ("mode", "fusion", "feature", "best_val_loss", "eer", "min_dcf", "eer_on")


def compare(run_dirs: Iterable[str | os.PathLike], sort_by: str | None = "uar") -> list[dict]:
    """One row per run folder or CV folder.

    Folders that are not finished runs are skipped with a warning in the row
    list's log; if none is usable a :class:`DataError` is raised.

    Args:
        run_dirs: run folders and/or CV folders.
        sort_by: column to sort by (descending), or None to keep the given order.

    Returns:
        Rows as dicts with the keys in :data:`COLUMNS` (explained in
        :data:`COLUMN_HELP`); ``uar``, ``accuracy`` and ``macro_f1`` are test
        metrics when there are any (pooled for CV), else validation metrics, as
        ``scored_on`` says.
    """
    import logging

    from vocalis.evaluation.records import load_record

    log = logging.getLogger(__name__)
    rows = []
    skipped = []
    for d in run_dirs:
        try:
            rec = load_record(d)
        except DataError as err:
            skipped.append(str(d))
            log.warning("skipping %s: %s", d, err)
            continue
        m, on = (rec.metrics, "test") if rec.metrics else (rec.val, "val" if rec.val else None)
        if rec.kind == "cv":
            fold_val = list(rec.fold_val_uar().values())
            val_uar = sum(fold_val) / len(fold_val) if fold_val else None
            folds = f"{rec.cv.get('n_finished')}/{rec.cv.get('n_folds')}"
            folds += " (partial)" if rec.partial else ""
        else:
            val_uar, folds = rec.val.get("uar"), None
        rows.append(
            {
                "run": str(as_path(d)),
                "kind": rec.kind,
                "model": rec.model,
                "features": rec.features,
                "protocol": rec.protocol,
                "speaker_dependent": rec.speaker_dependent,
                "scored_on": on,
                "uar": m.get("uar"),
                "accuracy": m.get("accuracy"),
                "macro_f1": m.get("macro_f1"),
                "val_uar": val_uar,
                "uar_std": (rec.cv.get("std") or {}).get("uar") if rec.kind == "cv" else None,
                "folds": folds,
                "epochs": rec.epochs(),
                "seconds": rec.seconds(),
                **_sv_cells(rec),
                "heads": rec.heads_text(),
            }
        )
    if not rows:
        raise DataError(
            f"none of {', '.join(skipped) or 'the given folders'} is a finished run or CV "
            "folder (metrics.json, predictions.csv or cv_results.json)"
        )
    if sort_by:
        if sort_by not in COLUMNS:
            raise DataError(f"cannot sort by {sort_by!r}; columns: {', '.join(COLUMNS)}")

        def order(row: Mapping[str, Any]) -> tuple:
            v = row[sort_by]
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return (0, -float(v), "")
            return (1 if v is not None else 2, 0.0, str(v))

        rows.sort(key=order)
    return rows


def _sv_cells(rec: Any) -> dict[str, Any]:
    """The optional columns of one record (speaker verification, validation loss)."""
    ver = rec.verification if rec.kind == "run" else {}
    val_loss = rec.val.get("loss") if rec.kind == "run" else None
    return {
        "mode": rec.sv.get("mode") if rec.kind == "run" else None,
        "fusion": rec.sv.get("fusion") if rec.kind == "run" else None,
        "feature": rec.sv.get("feature") if rec.kind == "run" else None,
        "best_val_loss": val_loss if isinstance(val_loss, (int, float)) else None,
        "eer": ver.get("eer"),
        "min_dcf": ver.get("min_dcf"),
        "eer_on": ver.get("on"),
    }


def table_columns(rows: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """:data:`COLUMNS` without the optional ones that no row fills.

    Example:
        >>> "eer" in table_columns([{"run": "a", "eer": None}])
        False
    """
    return tuple(
        c for c in COLUMNS if c not in OPTIONAL_COLUMNS or any(r.get(c) is not None for r in rows)
    )


def _cell(value: Any, column: str = "") -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and column in ("epochs", "seconds"):
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return str(value)
    return str(value)


def legend(columns: Sequence[str] = COLUMNS) -> str:
    """One line per column: what it means (printed under the table by ``vocalis compare``).

    Example:
        >>> print(legend(["uar"]))
        uar: unweighted average recall (mean per-class recall; chance = 1 / classes)
    """
    return "\n".join(f"{c}: {COLUMN_HELP[c]}" for c in columns)


def to_markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """GitHub-flavoured Markdown table (floats with 4 decimals).

    The columns default to :func:`table_columns` (optional ones only when filled).
    """
    columns = table_columns(rows) if columns is None else columns
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(_cell(r.get(c), c) for c in columns) + " |")
    return "\n".join(lines)


def to_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """CSV text with a header (full float precision); default columns: :func:`table_columns`."""
    columns = table_columns(rows) if columns is None else columns
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({c: "" if r.get(c) is None else r.get(c) for c in columns})
    return buf.getvalue()


def write_table(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> str:
    """Write the table as Markdown (``.md``) or CSV (``.csv``), chosen by suffix."""
    suffix = as_path(path).suffix.lower()
    if suffix == ".csv":
        write_text(path, to_csv(rows))
    elif suffix in (".md", ".markdown", ".txt"):
        notes = "\n".join(f"- **{c}**: {COLUMN_HELP[c]}" for c in table_columns(rows))
        write_text(path, to_markdown(rows) + "\n\n" + notes + "\n")
    else:
        raise DataError(f"--out {path}: expected a .md or .csv file name")
    return str(path)
