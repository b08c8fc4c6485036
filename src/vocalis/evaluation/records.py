"""Read a finished run folder or cross-validation folder into one record.

Both :mod:`~vocalis.evaluation.compare` and :mod:`~vocalis.evaluation.report`
work on these records. A **run folder** holds ``metrics.json`` and/or
``predictions.csv`` (plus ``config.yaml``, ``history.csv``); a **CV folder**
holds ``cv_results.json`` and one run folder per fold. ``metrics.json`` is read
as the run folder's one schema (:class:`~vocalis.training.runfolder.RunMetrics`).
``predictions.csv`` is the source of truth for the test metrics when it exists;
otherwise the stored ``test`` metrics are used, else those of an evaluation
record in a sub-folder (``vocalis eval RUN --out RUN/test``).

Validation metrics (:attr:`RunRecord.val`) are the kept epoch's of a neural run,
or the inner leave-one-speaker-out UAR of an ensemble fit; a CV folder's are
the fold mean of ``1 - best_error`` (:meth:`RunRecord.fold_val_uar`).
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vocalis.errors import DataError
from vocalis.io import as_path

if TYPE_CHECKING:
    from vocalis.training.runfolder import RunMetrics

__all__ = ["HELDOUT_SCORES", "RunRecord", "load_record"]

#: A run folder's file of held-out verification scores (``eer``, ``min_dcf``, ``on``...);
#: ``vocalis compare`` shows them instead of the validation pairs' (``verification.json``
#: is a calibrated verifier folder's, :mod:`vocalis.verification`).
HELDOUT_SCORES = "heldout_scores.json"


@dataclass(frozen=True)
class RunRecord:
    """What a run or CV folder says about itself.

    Attributes:
        path: the folder.
        kind: ``run`` or ``cv``.
        config: the resolved config (``config.yaml`` or ``cv_results.json``), may be empty.
        metrics: test metrics (pooled for CV), a ``classification_metrics`` dict or {}.
        cv: ``cv_results.json`` content (CV only).
        training: ``training_results.json`` content (CV only).
        stored: the run's ``metrics.json`` (run only; ``None`` without one).
        folds: fold name -> fold folder (CV only).
        test_source: the folder the test metrics come from (the run itself, or the
            evaluation record in a sub-folder); ``None`` without test metrics.
    """

    path: Path
    kind: str
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    cv: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    stored: RunMetrics | None = None
    folds: dict[str, Path] = field(default_factory=dict)
    test_source: Path | None = None

    @property
    def name(self) -> str:
        """The folder's name."""
        return self.path.name

    @property
    def model(self) -> str | None:
        """The model's name (``tier1``, ``ensemble``...), or ``None``."""
        if self.config.get("kind") == "ensemble":
            return "ensemble"
        return (self.config.get("model") or {}).get("name") or self.cv.get("model")

    @property
    def features(self) -> str | None:
        """The feature extractor's name (an ensemble's: its members'), or ``None``."""
        if self.cv.get("features"):
            return self.cv["features"]
        if self.config.get("kind") == "ensemble":
            members = (self.config.get("ensemble") or {}).get("members") or []
            names = [(m.get("functionals") or {}).get("name", "?") for m in members]
            return " + ".join(names) or None
        extractor = (self.config.get("features") or {}).get("extractor") or {}
        name = extractor.get("name") if isinstance(extractor, dict) else None
        return name or self.cv.get("features")  # ensembles: their members, in cv_results

    @property
    def protocol(self) -> str:
        """How the numbers were obtained: ``loso``, ``loso fold``, ``holdout (speaker val)``..."""
        if self.kind == "cv":
            norm = (self.cv.get("normalization") or {}).get("protocol")
            return f"{self.cv.get('protocol', 'cv')}" + (f" ({norm})" if norm else "")
        parent = self.path.parent / "cv_results.json"
        if parent.is_file():  # a fold of a cross-validation: say which
            try:
                cv = json.loads(parent.read_text())
            except (OSError, json.JSONDecodeError):
                cv = {}
            if self.path.name in cv.get("fold_names", []):
                norm = (cv.get("normalization") or {}).get("protocol")
                return f"{cv.get('protocol', 'cv')} fold" + (f" ({norm})" if norm else "")
        if self.config.get("kind") == "ensemble":
            return "fit on all rows (inner loso val)"
        val = (self.config.get("dataset") or {}).get("val_protocol")
        return f"holdout ({val} val)" if val else "holdout"

    @property
    def sv(self) -> dict[str, Any]:
        """A speaker-verification run's mode, fusion and handcrafted feature mode; {} for others.

        Read from the config of an ``sv_fusion`` model (``model.params``).
        """
        model = self.config.get("model") or {}
        params = model.get("params") if isinstance(model.get("params"), dict) else {}
        if model.get("name") != "sv_fusion" or not params:
            return {}
        mode = params.get("mode")
        return {
            "mode": mode,
            "fusion": params.get("fusion") if mode == 3 else None,
            "feature": params.get("features") if mode in (2, 3) else None,
        }

    @property
    def verification(self) -> dict[str, Any]:
        """EER / minDCF of the run: held-out trials when scored, else its validation pairs.

        ``heldout_scores.json`` in the run folder (scores of held-out speakers, as
        ``bench/speaker.py`` writes them: ``eer``, ``min_dcf``, ``on``) wins; otherwise
        ``metrics.json`` ``details.verification_val`` (all pairs of the validation
        utterances of the training speakers, speaker-dependent). {} without.
        """
        path = self.path / HELDOUT_SCORES
        if path.is_file():
            try:
                data = json.loads(path.read_text())
            except (OSError, json.JSONDecodeError):
                data = {}
            if isinstance(data, dict) and data.get("eer") is not None:
                return {"on": "held-out", **data}
        details = (self.stored.details if self.stored is not None else None) or {}
        val = details.get("verification_val") or {}
        return {**val, "on": "val"} if val.get("eer") is not None else {}

    @property
    def val(self) -> dict[str, Any]:
        """Validation metrics of a run; {} without.

        A neural run's are its kept epoch's; an ensemble fit's are ``{"uar": ...}``,
        the pooled UAR of its inner leave-one-speaker-out.
        """
        if self.stored is None:
            return {}
        if self.stored.val:
            return dict(self.stored.val)
        ensemble = (self.stored.details or {}).get("ensemble") or {}
        uar = ensemble.get("fused_inner_uar")
        return {"uar": float(uar)} if isinstance(uar, (int, float)) else {}

    @property
    def validation(self) -> str | None:
        """What the validation metrics were measured on, in words (``None``: unknown)."""
        if self.kind == "cv":
            v = self.cv.get("validation") or {}
            proto = v.get("protocol")
            return {"speaker": "held-out training speakers", "stratified": "a stratified share "
                    "of the training rows (speaker-dependent)"}.get(proto, proto)  # fmt: skip
        if self.stored is not None and (self.stored.details or {}).get("ensemble"):
            return "inner leave-one-speaker-out on the training speakers (C chosen on it)"
        val = (self.config.get("dataset") or {}).get("val_protocol")
        if val == "speaker":
            return "held-out speakers"
        if val == "stratified":
            return "a stratified share of the rows (speakers also in training)"
        return None

    @property
    def speaker_dependent(self) -> bool | None:
        """Whether the same speakers were in training and in the scored rows (``None``: unknown).

        A CV folder says so itself; a run's validation is speaker-dependent when its
        validation split is stratified; an ensemble validates on held-out speakers.
        """
        if self.kind == "cv":
            return bool(self.cv.get("speaker_dependent"))
        if self.stored is not None and (self.stored.details or {}).get("ensemble"):
            return False
        val = (self.config.get("dataset") or {}).get("val_protocol")
        return None if val is None else val == "stratified"

    def head_rows(self) -> list[dict[str, Any]]:
        """One row per head of a multi-head run or CV (``[]`` for one class head).

        Each row: ``head``, ``kind``, ``scored_on`` (``test``, else ``val``; ``pooled``
        for a CV: over every fold's test rows) and the headline numbers of its kind:
        ``accuracy``, ``uar``, ``macro_f1`` (classes), ``macro_auc``, ``macro_f1``,
        ``uar`` (multi-label), ``ccc``, ``mae``, ``rmse`` (regression).
        """
        from vocalis.training.runfolder import read_metrics

        heads = (self.stored.heads if self.stored is not None else None) or {}
        tested = "test"
        if self.kind == "cv":  # cv_results.json: every head pooled over the folds
            tested = "pooled"
            heads = {
                name: {"kind": h.get("kind"), "test": h.get("pooled")}
                for name, h in (self.cv.get("heads") or {}).items()
            }
        elif not heads and self.test_source not in (None, self.path):
            evaluated = read_metrics(self.test_source)
            heads = (evaluated.heads if evaluated is not None else None) or {}
        keys = {
            "multiclass": ("accuracy", "uar", "macro_f1"),
            "multilabel": ("macro_auc", "macro_f1", "uar"),
            "regression": ("ccc", "mae", "rmse"),
        }
        rows = []
        for name, section in heads.items():
            m, on = (
                (section.get("test"), tested)
                if section.get("test")
                else (section.get("val"), "val")
            )
            m = m or {}
            row = {"head": name, "kind": section.get("kind"), "scored_on": on if m else None}
            row.update({k: m.get(k) for k in keys.get(section.get("kind"), ())})
            rows.append(row)
        return rows

    def heads_text(self) -> str | None:
        """``label UAR 0.61; gender UAR 0.93; dur CCC 0.40`` (``None`` for one class head)."""
        rows = self.head_rows()
        if not rows:
            return None
        first = {"multiclass": "uar", "multilabel": "macro_auc", "regression": "ccc"}
        parts = []
        for r in rows:
            key = first.get(r["kind"], "uar")
            v = r.get(key)
            parts.append(f"{r['head']} {key.upper()} {'n/a' if v is None else f'{v:.4f}'}")
        return "; ".join(parts)

    @property
    def partial(self) -> bool:
        """A cross-validation with folds still to run (or failed)."""
        if self.kind != "cv":
            return False
        done, total = self.cv.get("n_finished"), self.cv.get("n_folds")
        return isinstance(done, int) and isinstance(total, int) and done < total

    def fold_val_uar(self) -> dict[str, float]:
        """Validation UAR of each finished fold (``1 - best_error``), CV only."""
        out = {}
        for name, r in self.training.items():
            if isinstance(r, dict) and isinstance(r.get("best_error"), (int, float)):
                out[name] = round(1.0 - float(r["best_error"]), 6)
        return out

    def epochs(self) -> float | None:
        """Epochs trained (run) or mean best epoch over folds (CV)."""
        if self.kind == "cv":
            best = [
                r.get("best_epoch")
                for r in self.training.values()
                if isinstance(r, dict) and isinstance(r.get("best_epoch"), (int, float))
            ]
            return round(sum(best) / len(best), 1) if best else None
        if self.stored is not None and self.stored.epochs_run is not None:
            return self.stored.epochs_run
        rows = self._history()
        return len(rows) if rows else None

    def _history(self) -> list[dict[str, str]]:
        history = self.path / "history.csv"
        if not history.is_file():
            return []
        return list(csv.DictReader(io.StringIO(history.read_text())))

    def seconds(self) -> float | None:
        """Wall time: sum over folds (CV) or the run's recorded time."""
        if self.kind == "cv":
            secs = [
                float(r["seconds"])
                for r in self.training.values()
                if isinstance(r, dict) and isinstance(r.get("seconds"), (int, float))
            ]
            return round(sum(secs), 1) if secs else self.cv.get("seconds")
        if self.stored is not None and self.stored.seconds is not None:
            return float(self.stored.seconds)
        try:  # a folder without metrics.json: the per-epoch 'seconds' of history.csv
            secs = [float(r["seconds"]) for r in self._history() if r.get("seconds")]
        except ValueError:
            secs = []
        return round(sum(secs), 1) if secs else None


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    return data if isinstance(data, dict) else {}


def _yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    import yaml

    data = yaml.safe_load(path.read_text())
    return data if isinstance(data, dict) else {}


def load_record(path: str | os.PathLike) -> RunRecord:
    """Read a run folder or a CV folder.

    Raises:
        DataError: the folder holds neither ``cv_results.json`` nor ``metrics.json``
            / ``predictions.csv``, or its ``metrics.json`` is not the run folder schema.
    """
    from vocalis.metrics.predictions import read_predictions
    from vocalis.training.runfolder import read_metrics

    d = as_path(path)
    if (d / "cv_results.json").is_file():
        cv = _json(d / "cv_results.json")
        training = (
            _json(d / "training_results.json") if (d / "training_results.json").is_file() else {}
        )
        folds = {n: d / n for n in cv.get("fold_names", []) if (d / n).is_dir()}
        metrics = cv.get("pooled") or {}
        return RunRecord(
            d, "cv", config=cv.get("config") or {}, metrics=metrics, cv=cv, training=training,
            folds=folds,
        )  # fmt: skip
    has_metrics = (d / "metrics.json").is_file()
    has_pred = (d / "predictions.csv").is_file()
    if not (has_metrics or has_pred):
        raise DataError(
            f"{d} is neither a run folder (metrics.json / predictions.csv) nor a "
            "cross-validation folder (cv_results.json); pass a finished run"
        )
    stored = read_metrics(d)
    metrics = read_predictions(d / "predictions.csv").metrics() if has_pred else {}
    if not metrics and stored is not None:
        metrics = dict(stored.test or {})
    source: Path | None = d if metrics else None
    if not metrics and stored is not None and stored.kind == "train":
        for sub in sorted(p for p in d.iterdir() if (p / "metrics.json").is_file()):
            evaluated = read_metrics(sub)
            if evaluated is not None and evaluated.kind == "eval" and evaluated.test:
                metrics, source = dict(evaluated.test), sub
                break
    return RunRecord(
        d, "run", config=_yaml(d / "config.yaml"), metrics=metrics, stored=stored,
        test_source=source,
    )  # fmt: skip
