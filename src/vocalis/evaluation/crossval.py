"""Speaker-independent cross-validation of any estimator: LOSO and group k-fold.

:func:`loso` fits one model per speaker on all the other speakers and tests it
on the left-out speaker; :func:`cross_validate` also offers group k-fold and
(with a warning) speaker-dependent stratified k-fold. The runner works on the
:class:`~vocalis.training.estimator.Estimator` contract, so a neural recipe
(:class:`~vocalis.training.estimator.NeuralEstimator`, each fold an ordinary
training run folder) and a functionals ensemble
(:class:`~vocalis.training.ensemble_estimator.EnsembleEstimator`) go through the same code: fold
planning (:func:`plan_folds`, on :mod:`vocalis.data.splits`), one fold writer
(:func:`write_fold`) and one ``cv_results.json`` writer (:func:`write_cv_results`)::

    out_dir/
      speaker_03/  speaker_08/ ...   # run folders (LOSO); fold_0/ ... for k-fold
        head_outputs.npz             # several heads: every head's test outputs + targets
        predictions_heads.csv        # several heads: every head's reference and prediction
      training_results.json          # per fold (by folder name): status, best_error, seconds
      cv_results.json                # pooled + per-fold metrics, mean ± std, protocol
      predictions.csv                # all folds' test predictions, concatenated
      predictions_heads.csv          # several heads: the folds' tables, concatenated

Pooled metrics are computed on the concatenated predictions of all finished
folds (the usual way of reporting LOSO on EmoDB); the mean and sample standard
deviation over folds are reported next to them.

A model with several heads (``dataset.label_columns``, a valence/arousal head) is
scored on every head: the top-level keys of ``cv_results.json`` stay the first
head's, and ``heads`` holds, per head, the pooled metrics (of every test row of
every fold, :func:`vocalis.metrics.heads.pool_heads`: regression in the columns'
own units), the per-fold metrics and their mean ± std, in the per-head schema of
``metrics.json`` (:func:`vocalis.metrics.heads.score_heads`). Each fold keeps what
pooling needs in its ``head_outputs.npz``, so a resumed run pools finished folds
without predicting them again.

Feature normalisation protocols (recorded in the results, never mixed in one
output folder):

* ``online``: statistics from the training speakers only
  (neural: ``features.normalization=global``);
* ``speaker_norm``: each speaker, the test speaker included, standardised with
  its own statistics from its unlabelled audio (neural:
  ``features.normalization=speaker``). An ensemble recipe fixes its protocol.

A failed fold is recorded with its error and the others go on; running again
skips finished folds (a fold is finished when its ``metrics.json`` and
``predictions.csv`` exist) and resumes unfinished ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import time
import traceback
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from vocalis.data.failures import Skipped, read_errors, write_errors
from vocalis.data.failures import summary as summary_of
from vocalis.errors import ConfigError, DataError
from vocalis.io import as_path, write_json, write_text
from vocalis.training.estimator import NORMALIZATIONS, estimator_for

if TYPE_CHECKING:
    from vocalis.backends import Backend, BackendConfig
    from vocalis.data import Manifest
    from vocalis.data.targets import HeadSpec
    from vocalis.training.estimator import Estimator, Fitted, HeadOutputs

log = logging.getLogger(__name__)

__all__ = [
    "HEAD_OUTPUTS",
    "HEAD_SUMMARY_KEYS",
    "NORMALIZATIONS",
    "PROTOCOLS",
    "RUN_KEYS",
    "FoldPlan",
    "cross_validate",
    "head_line",
    "loso",
    "plan_folds",
    "summarize",
    "summarize_heads",
    "write_cv_results",
    "write_fold",
]

#: Cross-validation protocols of :func:`cross_validate`.
PROTOCOLS = ("loso", "group-kfold", "stratified")

#: Keys of ``cv_results.json`` that describe how a run went (times, where it ran),
#: not its results: two runs of one protocol agree on every other key.
RUN_KEYS = ("seconds", "extract_seconds", "wall_seconds_total", "backend")

#: Metrics summarised as mean ± std over folds.
SUMMARY_KEYS = ("uar", "accuracy", "macro_f1", "weighted_f1", "ece")

#: Per-head metrics summarised as mean ± std over folds, by head kind.
HEAD_SUMMARY_KEYS = {
    "multiclass": SUMMARY_KEYS,
    "multilabel": ("uar", "accuracy", "macro_auc", "macro_f1", "micro_f1"),
    "regression": ("ccc", "pearson", "mae", "rmse"),
}

#: A fold's record of every head's test outputs (models with several heads).
HEAD_OUTPUTS = "head_outputs.npz"

Protocol = Literal["loso", "group-kfold", "stratified"]
Validation = Literal["stratified", "speaker", "none"]


@dataclasses.dataclass(frozen=True)
class FoldPlan:
    """The indices of one fold (into the manifest's rows).

    Attributes:
        name: folder name (``speaker_03``, ``fold_2``).
        train: training rows.
        val: validation rows (held out from the training rows; empty for
            estimators that validate inside their training rows).
        test: test rows.
        test_groups: groups (speakers) in ``test``.
    """

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    test_groups: tuple[str, ...]


# --------------------------------------------------------------------------- planning


def _groups(manifest: Manifest, group: str) -> np.ndarray:
    if group == "speaker":
        return np.asarray(manifest.speakers)  # DataError when there is no speaker column
    if group not in manifest.columns:
        raise DataError(
            f"{manifest.source} has no '{group}' column to group folds by; it has: "
            f"{', '.join(manifest.columns)}; pass --group with one of them"
        )
    return np.asarray(manifest.column(group))


def _val_split(
    train: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray | None,
    validation: Validation,
    fraction: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    from vocalis.data.splits import SpeakerHoldout, stratified_val_split

    if validation == "none":
        return np.sort(train), train[:0]
    if validation == "speaker":
        if groups is None:
            raise DataError("validation='speaker' needs speaker ids; use validation='stratified'")
        tr, va = next(SpeakerHoldout(fraction, seed=seed).split(train, groups=groups[train]))
        return np.sort(train[tr]), np.sort(train[va])
    if validation != "stratified":
        raise ConfigError(
            f"validation={validation!r}; expected 'stratified' (held-out share of the training "
            "rows, stratified by label), 'speaker' (held-out training speakers) or 'none'"
        )
    return stratified_val_split(train, labels[train], fraction, seed)


def plan_folds(
    manifest: Manifest,
    protocol: Protocol = "loso",
    folds: int = 5,
    group: str = "speaker",
    *,
    label_column: str = "label",
    validation: Validation = "stratified",
    val_fraction: float = 0.2,
    seed: int = 0,
) -> list[FoldPlan]:
    """Train/validation/test indices of every fold.

    Args:
        manifest: a :class:`vocalis.data.Manifest`.
        protocol: ``loso`` (one fold per group,
            :class:`~vocalis.data.splits.LeaveOneSpeakerOut`), ``group-kfold``
            (``folds`` folds of whole groups, :class:`~vocalis.data.splits.GroupKFold`)
            or ``stratified`` (random stratified k-fold; speaker-dependent: warns).
        folds: number of folds for the k-fold protocols.
        group: manifest column whose values are kept together (``speaker``).
        label_column: column with the labels (stratification).
        validation: ``stratified`` (``val_fraction`` of the training rows, stratified
            by label), ``speaker`` (``val_fraction`` of the training speakers) or
            ``none`` (every non-test row trains).
        val_fraction: share held out for validation.
        seed: seed of the validation split and of the random protocols.

    Returns:
        One :class:`FoldPlan` per fold, in order.

    Raises:
        DataError: no speaker (group) column for a speaker-based protocol, too few
            groups, or an unknown protocol.
    """
    from vocalis.data.splits import GroupKFold, LeaveOneSpeakerOut, SpeakerDependentWarning

    labels = np.asarray(manifest.labels(label_column))
    groups: np.ndarray | None = None
    if protocol in ("loso", "group-kfold") or validation == "speaker":
        groups = _groups(manifest, group)
    elif "speaker" in manifest.columns and manifest.has("speaker"):
        groups = np.asarray(manifest.speakers)
    idx = np.arange(len(labels), dtype=np.int64)
    if protocol == "loso":
        splitter = LeaveOneSpeakerOut()
        if len(np.unique(groups)) < 2:
            raise DataError(
                f"LOSO needs at least 2 {group}s, {manifest.source} has {len(np.unique(groups))}"
            )
        splits = [
            (f"speaker_{g}", tr, te)
            for g, (tr, te) in zip(
                splitter.speakers(idx, groups), splitter.split(idx, groups=groups), strict=True
            )
        ]
    elif protocol == "group-kfold":
        splits = [
            (f"fold_{k}", tr, te)
            for k, (tr, te) in enumerate(GroupKFold(folds).split(idx, groups=groups))
        ]
    elif protocol == "stratified":
        from sklearn.model_selection import StratifiedKFold

        msg = (
            "stratified k-fold is a random split: the same speakers are in train and test, so "
            "its numbers are speaker-dependent and optimistic; use --protocol loso or "
            "group-kfold for results comparable with the literature"
        )
        warnings.warn(msg, SpeakerDependentWarning, stacklevel=2)
        log.warning(msg)
        skf = StratifiedKFold(folds, shuffle=True, random_state=seed)
        splits = [
            (f"fold_{k}", tr.astype(np.int64), te.astype(np.int64))
            for k, (tr, te) in enumerate(skf.split(idx, labels))
        ]
    else:
        raise DataError(
            f"unknown cross-validation protocol {protocol!r}; expected one of: "
            f"{', '.join(PROTOCOLS)}"
        )
    plans = []
    for name, train, test in splits:
        tr, va = _val_split(train, labels, groups, validation, val_fraction, seed)
        test_groups = tuple(sorted(set(groups[test].tolist()))) if groups is not None else ()
        plans.append(FoldPlan(name, tr, va, np.sort(test), test_groups))
    return plans


# --------------------------------------------------------------------------- one fold


def _fold_finished(fold_dir: Path) -> bool:
    return (fold_dir / "metrics.json").is_file() and (fold_dir / "predictions.csv").is_file()


def write_fold(
    fold_dir: Path,
    rows: Manifest,
    plan: FoldPlan,
    proba: np.ndarray,
    fitted: Fitted,
    seconds: float,
    skipped: Sequence[Skipped] = (),
    heads: HeadOutputs | None = None,
    labels: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Write a fold's test results: ``metrics.json`` (test section) and ``predictions.csv``.

    The fit's own ``metrics.json`` (training run, or ensemble fit) is kept and
    gets the test metrics, the fold's name, its test groups (``details``) and
    the fold's time (fit + predict); ``predictions.csv``
    is written last, since it marks the fold finished. Rows with NaN
    probabilities (unreadable audio) are left out; they and ``skipped`` (test
    rows the runner did not predict) go to the fold's ``errors.csv`` and are
    counted in ``metrics.json`` (``details.test_rows``).

    Args:
        fold_dir: the fold's run folder.
        rows: the manifest the plan indexes.
        plan: the fold.
        proba: ``(len(plan.test), K)`` test probabilities, columns ``fitted.classes``.
        fitted: the fitted model.
        seconds: fit + predict time.
        skipped: test rows left out before predicting (an unseen label).
        heads: every head's test outputs (``fitted.predict_heads``) of a model
            with several heads: each head's test metrics go to ``metrics.json``'s
            ``heads`` sections, the outputs to ``head_outputs.npz`` (what pooling
            reads) and ``predictions_heads.csv``.
        labels: every row's final label (the estimator's labelled rows: label map
            applied, ``dataset.label_column`` read); ``None``: ``rows.labels()``.

    Returns:
        The test metrics (of the first head).
    """
    from vocalis.metrics.predictions import Predictions, write_predictions
    from vocalis.training.runfolder import RunFolder

    keep = ~np.isnan(proba).any(axis=1)
    n_test = len(plan.test) + len(skipped)  # every test row of the fold
    skipped = list(skipped) + [
        Skipped(rows.ids[i], rows.paths[i], "test", "unreadable_audio", "audio could not be read")
        for i in plan.test[~keep]
    ]
    errors = fold_dir / "errors.csv"
    fit_rows = [e for e in read_errors(errors) if e.stage != "test"] if errors.is_file() else []
    write_errors(errors, fit_rows + skipped)  # the fit's skipped rows, then the test's
    idx, proba = plan.test[keep], proba[keep]
    if not len(idx):
        raise DataError(f"{fold_dir}: no test row of fold {plan.name} could be predicted")
    classes = list(fitted.classes)
    pred = proba.argmax(1)
    speakers = rows.column("speaker") if "speaker" in rows.columns else [""] * len(rows)
    predictions = Predictions(
        path=np.asarray(rows.paths, dtype=object)[idx],
        speaker=np.asarray(speakers, dtype=object)[idx],
        true_label=np.asarray(rows.labels() if labels is None else labels, dtype=object)[idx],
        pred_label=np.asarray(classes, dtype=object)[pred],
        confidence=proba[np.arange(len(pred)), pred],
        probs=proba,
        classes=classes,
    )
    metrics = predictions.metrics()
    run = RunFolder(fold_dir)
    fit = run.read_metrics()
    if fit is None:
        raise DataError(f"{fold_dir}: the fit wrote no metrics.json")
    record = dataclasses.asdict(fit)
    record.update(
        test=metrics,
        n_rows={**fit.n_rows, "test": len(idx)},
        fold=plan.name,
        seconds=round(seconds, 2),
        details={
            **fit.details,
            "test_groups": list(plan.test_groups),
            "test_rows": summary_of(skipped, n_test),
        },
    )
    if heads is not None:
        record["heads"] = _write_fold_heads(fold_dir, rows, idx, heads, keep, fit.heads or {})
    run.write_metrics(**record)
    write_predictions(fold_dir / "predictions.csv", predictions)  # last: marks it finished
    return metrics


def _write_fold_heads(
    fold_dir: Path,
    rows: Manifest,
    idx: np.ndarray,
    heads: HeadOutputs,
    keep: np.ndarray,
    sections: dict[str, Any],
) -> dict[str, Any]:
    """Score every head of a fold, write its outputs; the ``metrics.json`` head sections."""
    from vocalis.metrics.heads import score_heads
    from vocalis.training.validation import write_head_table

    outputs, targets = heads.outputs[keep], heads.targets[keep]
    _write_head_outputs(fold_dir / HEAD_OUTPUTS, heads.heads, outputs, targets, rows.ids, idx)
    write_head_table(
        fold_dir / "predictions_heads.csv",
        list(heads.heads),
        rows.select(idx.tolist()),
        outputs,
        targets,
    )
    scored = score_heads(heads.heads, outputs, targets)
    return {
        h.name: {
            **sections.get(
                h.name, {"kind": h.kind, "columns": list(h.columns), "classes": list(h.classes)}
            ),
            "test": scored[h.name],
        }
        for h in heads.heads
    }


def _write_head_outputs(
    path: Path,
    heads: Sequence[HeadSpec],
    outputs: np.ndarray,
    targets: np.ndarray,
    ids: Sequence[str],
    idx: np.ndarray,
) -> None:
    """``head_outputs.npz``: the fold's heads (JSON), outputs, packed targets and row ids."""
    from vocalis.io import write_npz

    arrays = {
        "heads": np.array(json.dumps([h.to_dict() for h in heads])),
        "outputs": np.asarray(outputs, dtype=np.float64),
        "targets": np.asarray(targets, dtype=np.float64),
        "ids": np.array([str(ids[int(i)]) for i in idx]),
    }
    write_npz(path, arrays)


def _read_head_outputs(path: Path) -> tuple[list[HeadSpec], np.ndarray, np.ndarray]:
    """``(heads, outputs, targets)`` of a fold's ``head_outputs.npz``."""
    import io as _io

    from vocalis.data.targets import heads_from_data
    from vocalis.io import read_bytes

    try:
        with np.load(_io.BytesIO(read_bytes(path)), allow_pickle=False) as z:
            heads = heads_from_data(json.loads(str(z["heads"])))
            return heads, np.asarray(z["outputs"]), np.asarray(z["targets"])
    except (OSError, ValueError, KeyError) as err:
        raise DataError(
            f"{path}: unreadable ({type(err).__name__}: {err}); delete the fold's folder "
            "to run it again"
        ) from None


def _fold_record(plan: FoldPlan) -> dict[str, Any]:
    """A fold's ``training_results.json`` entry before it runs (status ``failed``)."""
    return {
        "status": "failed",
        "best_error": None,
        "best_epoch": None,
        "seconds": None,
        "test_groups": list(plan.test_groups),
        "n_train": len(plan.train),
        "n_val": len(plan.val),
        "n_test": len(plan.test),
    }


def _known_label_rows(
    rows: Manifest, plan: FoldPlan, classes: list[str], labels: Sequence[str]
) -> tuple[np.ndarray, list[Skipped]]:
    """The fold's test rows whose label the fitted model knows, and the others as skipped.

    A test speaker may hold a label no training speaker has: those rows cannot
    be scored, so they are recorded (``errors.csv``, kind ``unseen_label``)
    instead of failing the fold. So are rows without a label (a multi-head
    manifest may leave the first head's column empty).

    Args:
        rows: the rows the plan indexes.
        plan: the fold.
        classes: the fitted model's classes.
        labels: every row's final label (``""``: none).
    """
    known = set(classes)
    keep = np.array([labels[int(i)] in known for i in plan.test], dtype=bool)
    skipped = [
        Skipped(
            rows.ids[int(i)],
            rows.paths[int(i)],
            "test",
            "unseen_label",
            f"label {labels[int(i)]!r} is in no training speaker of fold {plan.name} "
            f"(trained classes: {', '.join(classes)})"
            if labels[int(i)]
            else f"no label (the first head's column is empty); not scored in fold {plan.name}",
        )
        for i in plan.test[~keep]
    ]
    if skipped:
        log.warning(
            "fold %s: %d test row(s) skipped, their label is in no training speaker (%s)",
            plan.name,
            len(skipped),
            ", ".join(sorted({repr(labels[int(i)]) for i in plan.test[~keep]})),
        )
    return plan.test[keep], skipped


def _run_fold(
    estimator: Estimator, rows: Manifest, plan: FoldPlan, fold_dir: Path, labels: Sequence[str]
) -> dict[str, Any]:
    """Fit, predict and write one fold; never raises for a failure (recorded instead)."""
    t0 = time.perf_counter()
    record = _fold_record(plan)
    try:
        fitted = estimator.fit(rows, plan.train, plan.val, fold_dir)
        known, skipped = _known_label_rows(rows, plan, list(fitted.classes), labels)
        plan = dataclasses.replace(plan, test=known)
        heads = fitted.predict_heads(rows, plan.test)  # one pass gives every head
        proba = fitted.predict_proba(rows, plan.test) if heads is None else heads.first_head()
        seconds = time.perf_counter() - t0
        metrics = write_fold(fold_dir, rows, plan, proba, fitted, seconds, skipped, heads, labels)
        record.update(status="success", **fitted.info)
        from vocalis.training.runfolder import RunFolder

        counts = RunFolder(fold_dir).read_metrics().details["test_rows"]
        record.update(n_test=counts["n_used"], test_skipped=counts["n_skipped"])
        log.info("fold %s: UAR %.4f (%.0f s)", plan.name, metrics["uar"], time.perf_counter() - t0)
    except Exception as err:  # one failed fold must not stop the others
        record["status"] = "failed"
        record["error"] = f"{type(err).__name__}: {err}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        write_text(fold_dir / "error.txt", traceback.format_exc())
        log.error("fold %s failed: %s", plan.name, record["error"])
    record["seconds"] = round(time.perf_counter() - t0, 2)
    return record


def _fold_task(
    estimator: Estimator, rows: Manifest, plan: FoldPlan, fold_dir: Path, labels: Sequence[str]
) -> dict[str, Any]:
    """One fold on any backend (this process, a pool worker, a Ray task, a SLURM job)."""
    log.info(
        "fold %s: train %d, val %d, test %d",
        plan.name,
        *map(len, (plan.train, plan.val, plan.test)),
    )
    return _run_fold(estimator, rows, plan, fold_dir, labels)


def _run_folds(
    estimator: Estimator,
    rows: Manifest,
    pending: list[FoldPlan],
    out: Path,
    backend: Backend,
    on_done: Any,
    labels: Sequence[str],
) -> None:
    """Run ``pending`` folds on ``backend``; ``on_done(plan, record)`` after each, here.

    ``labels``: every row's final label (the estimator's labelled rows), what the
    folds' test rows are scored against.
    """
    from vocalis.backends import run_tasks

    def done(i: int, record: dict[str, Any] | None, error: BaseException | None) -> None:
        if error is not None:  # the worker itself died (after the backend's retries)
            record = {
                **_fold_record(pending[i]),
                "error": f"{type(error).__name__}: {error}",
            }
            log.error("fold %s failed: %s", pending[i].name, record["error"])
        on_done(pending[i], record)

    tasks = [(estimator, rows, plan, out / plan.name, labels) for plan in pending]
    run_tasks(backend, _fold_task, tasks, done)


# --------------------------------------------------------------------------- summary


def summarize(out_dir: str | os.PathLike, fold_names: Sequence[str]) -> dict[str, Any]:
    """Pooled and per-fold metrics of the finished folds among ``fold_names``.

    Returns:
        ``{"pooled": metrics, "folds": {name: metrics}, "mean": {...}, "std": {...},
        "n_finished": int}``; ``std`` is the sample standard deviation (ddof=1,
        0 for a single fold). With folds of a model with several heads, also
        ``"heads"`` (:func:`summarize_heads`).
    """
    from vocalis.metrics.predictions import concat_predictions, read_predictions

    out = as_path(out_dir)
    parts, per_fold = [], {}
    for name in fold_names:
        if not _fold_finished(out / name):
            continue
        pred = read_predictions(out / name / "predictions.csv")
        parts.append(pred)
        per_fold[name] = pred.metrics()
    result: dict[str, Any] = {"n_finished": len(parts), "folds": per_fold}
    if not parts:
        result.update(pooled=None, mean={}, std={})
        return result
    pooled = concat_predictions(parts)
    result["pooled"] = pooled.metrics()
    result.update(_mean_std(per_fold, SUMMARY_KEYS), _pooled_predictions=pooled)
    heads = summarize_heads(out, list(per_fold))
    if heads:
        result["heads"] = heads
    return result


def _concat_head_tables(out: Path, fold_names: Sequence[str]) -> None:
    """``predictions_heads.csv`` of the folds (same columns), one header, in fold order."""
    lines: list[str] = []
    for name in fold_names:
        path = out / name / "predictions_heads.csv"
        if path.is_file():
            header, *rows = path.read_text().splitlines()
            lines += ([] if lines else [header]) + rows
    if lines:
        write_text(out / "predictions_heads.csv", "\n".join(lines) + "\n")


def _mean_std(per_fold: dict[str, dict[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """``{"mean": {key: ...}, "std": {key: ...}}`` over the folds (sample std, 0 for one)."""
    mean, std = {}, {}
    for key in keys:
        vals = np.array(
            [m[key] for m in per_fold.values() if isinstance(m.get(key), (int, float))], float
        )
        if vals.size:
            mean[key] = float(np.nanmean(vals))
            std[key] = float(np.nanstd(vals, ddof=1)) if vals.size > 1 else 0.0
    return {"mean": mean, "std": std}


def summarize_heads(out_dir: str | os.PathLike, fold_names: Sequence[str]) -> dict[str, Any]:
    """Every head's pooled and per-fold metrics, from the folds' ``head_outputs.npz``.

    Folds without the file (a model with one head) are left out; ``{}`` when none
    has it. Each fold is scored with its own heads (as its ``metrics.json``); the
    pooled metrics are those of all folds' rows in common units
    (:func:`vocalis.metrics.heads.pool_heads`: regression in the columns' units).

    Args:
        out_dir: the cross-validation folder.
        fold_names: the finished folds to summarise.

    Returns:
        ``{head: {"kind", "columns", "classes", "pooled": metrics, "folds": {fold:
        metrics}, "mean": {...}, "std": {...}, "n_folds": int}}`` in model order; the
        metrics are :func:`~vocalis.metrics.heads.score_head`'s, the mean ± std over
        :data:`HEAD_SUMMARY_KEYS` of the head's kind.
    """
    from vocalis.metrics.heads import pool_heads, score_heads

    out = as_path(out_dir)
    parts, scored = [], {}
    for name in fold_names:
        path = out / name / HEAD_OUTPUTS
        if path.is_file():
            part = _read_head_outputs(path)
            parts.append(part)
            scored[name] = score_heads(*part)
    if not parts:
        return {}
    heads, outputs, targets = pool_heads(parts)
    pooled = score_heads(heads, outputs, targets)
    result = {}
    for h in heads:
        folds = {name: m[h.name] for name, m in scored.items()}
        result[h.name] = {
            "kind": h.kind,
            "columns": list(h.columns),
            "classes": list(h.classes),
            "pooled": pooled[h.name],
            "folds": folds,
            **_mean_std(folds, HEAD_SUMMARY_KEYS[h.kind]),
            "n_folds": len(folds),
        }
    return result


def write_cv_results(
    out: Path,
    plans: list[FoldPlan],
    records: dict[str, Any],
    setup: dict[str, Any],
    timing: dict[str, Any],
    label: str,
) -> dict[str, Any]:
    """Pool the finished folds; write ``predictions.csv`` and ``cv_results.json``.

    Args:
        out: the cross-validation folder.
        plans: every fold of the protocol (finished or not).
        records: ``training_results.json`` content (status, error, seconds per fold).
        setup: what was run (protocol, normalisation, validation, model, config...),
            written first.
        timing: run times (``seconds``, ...), written after the metrics.
        label: how the log line names the run.

    Returns:
        The content of ``cv_results.json``.
    """
    summary = summarize(out, [p.name for p in plans])
    pooled_pred = summary.pop("_pooled_predictions", None)
    if pooled_pred is not None:
        from vocalis.metrics.predictions import write_predictions

        write_predictions(out / "predictions.csv", pooled_pred)
    if "heads" in summary:
        _concat_head_tables(out, next(iter(summary["heads"].values()))["folds"])
    skipped, n_test = [], 0
    for plan in plans:  # every fold's skipped rows in one errors.csv, counted below
        fold_errors = out / plan.name / "errors.csv"
        if fold_errors.is_file():
            skipped += read_errors(fold_errors)
        n_test += len(plan.test)
    write_errors(out / "errors.csv", skipped)
    test_skipped = [e for e in skipped if e.stage == "test"]
    cv = {
        **setup,
        "fold_names": [p.name for p in plans],
        "n_finished": summary["n_finished"],
        "failed": {k: v.get("error") for k, v in records.items() if v.get("status") == "failed"},
        "pooled": summary["pooled"],
        "mean": summary["mean"],
        "std": summary["std"],
        "folds": summary["folds"],
        **({"heads": summary["heads"]} if "heads" in summary else {}),
        "test_rows": summary_of(test_skipped, n_test),
        "n_skipped": summary_of(skipped, 0)["n_skipped"],
        **timing,
        "wall_seconds_total": round(sum(float(r.get("seconds") or 0) for r in records.values()), 2),
    }
    from vocalis.training.session import plain  # numpy scalars and arrays -> JSON values

    write_json(out / "cv_results.json", plain(cv))
    if summary["pooled"] is not None:
        log.info(
            "%s: pooled UAR %.4f, fold UAR %.4f ± %.4f over %d finished folds",
            label,
            summary["pooled"]["uar"],
            summary["mean"].get("uar", float("nan")),
            summary["std"].get("uar", float("nan")),
            summary["n_finished"],
        )
    for name, head in list(summary.get("heads", {}).items())[1:]:
        log.info("%s: head %s: pooled %s", label, name, head_line(head))
    return cv


#: How :func:`head_line` names the headline metrics.
_SHOWN = {
    "acc": "accuracy",
    "uar": "UAR",
    "macro_f1": "macro-F1",
    "macro_auc": "macro-AUC",
    "ccc": "CCC",
    "mae": "MAE",
    "rmse": "RMSE",
}


def head_line(head: dict[str, Any]) -> str:
    """One head's pooled headline metrics and the fold mean ± std of the first of them.

    UAR / accuracy / macro-F1 for a multiclass head, UAR / macro-F1 / macro-AUC for
    a multi-label head, CCC / MAE / RMSE (in the column's units) for a regression
    head; the fold mean ± std is of the UAR, or of the CCC.

    Args:
        head: an entry of ``cv_results.json``'s ``heads``.

    Returns:
        E.g. ``UAR 0.8812, accuracy 0.8800, macro-F1 0.8790 (folds UAR 0.8700 ± 0.0500)``.
    """
    from vocalis.metrics.heads import HEADLINE

    def value(key: str, where: dict[str, Any]) -> float:
        v = where.get("accuracy" if key == "acc" else key)
        return float("nan") if v is None else float(v)

    keys = list(HEADLINE[head["kind"]])
    first = "ccc" if head["kind"] == "regression" else "uar"
    keys.sort(key=lambda k: k != first)
    shown = ", ".join(
        f"{_SHOWN[k]} {value(k, head['pooled']):{'.4g' if k in ('mae', 'rmse') else '.4f'}}"
        for k in keys
    )
    return (
        f"{shown} (folds {_SHOWN[first]} {value(first, head['mean']):.4f} ± "
        f"{value(first, head['std']):.4f})"
    )


# --------------------------------------------------------------------------- runners


class _Once(logging.Filter):
    """Drop a warning already shown once (the same skipped file, once per fold)."""

    def __init__(self) -> None:
        super().__init__()
        self.first: dict[tuple[str, str], logging.LogRecord] = {}
        self.dropped: set[int] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        first = self.first.setdefault((record.name, record.getMessage()), record)
        if first is record:  # every handler shows the first one
            return True
        self.dropped.add(id(record))
        return False


@contextlib.contextmanager
def _once_per_run() -> Iterator[_Once]:
    """Install :class:`_Once` on every handler of the root logger for the block."""
    once = _Once()
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(once)
    try:
        yield once
    finally:
        for handler in handlers:
            handler.removeFilter(once)


def _check_protocol_matches(out: Path, protocol: str, normalization: str) -> None:
    path = out / "cv_results.json"
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return
    old_norm = (old.get("normalization") or {}).get("protocol")
    if (old_norm and old_norm != normalization) or old.get("protocol", protocol) != protocol:
        raise ConfigError(
            f"{out} holds a {old.get('protocol')}/{old_norm} cross-validation; this run is "
            f"{protocol}/{normalization}: results are never mixed, choose another --out"
        )


def _manifest(estimator: Estimator, manifest: Any) -> Manifest:
    from vocalis.data import Manifest, read_manifest

    manifest = manifest if manifest is not None else estimator.manifest
    if manifest is None or (isinstance(manifest, str) and not manifest):
        raise ConfigError(
            "the recipe gives no manifest (dataset.manifest / manifest is empty); set it in "
            "the recipe or pass --manifest m.csv"
        )
    if isinstance(manifest, Manifest):
        return manifest
    return read_manifest(manifest)


def _select(
    plans: list[FoldPlan], only: Sequence[str] | str | None, source: str, protocol: str
) -> list[FoldPlan]:
    """The plans ``only`` names: fold names (``fold_2``, ``speaker_03``), or speakers for LOSO.

    Raises:
        DataError: a name that is no fold of this protocol; the message lists the
            valid names (speaker ids for LOSO, fold names otherwise).
    """
    if not only:
        return plans
    wanted = {str(only)} if isinstance(only, (str, int)) else {str(s) for s in only}
    names = [p.name for p in plans]
    known = set(names)
    if protocol == "loso":  # a speaker id names its fold
        known |= {g for p in plans for g in p.test_groups}
    unknown = sorted(wanted - known)
    if unknown:
        if protocol == "loso":
            available = "speakers " + ", ".join(sorted(g for p in plans for g in p.test_groups))
        else:
            available = "folds " + ", ".join(names)
        raise DataError(
            f"fold(s) {', '.join(unknown)} not in this {protocol} of {source} "
            f"({len(plans)} folds); available: {available}"
        )
    if protocol == "loso":
        return [p for p in plans if p.name in wanted or set(p.test_groups) & wanted]
    return [p for p in plans if p.name in wanted]


def _suggest(name: str) -> str:
    from vocalis.registry import did_you_mean

    return did_you_mean(name, PROTOCOLS)


def cross_validate(
    config: Any,
    out_dir: str | os.PathLike,
    protocol: Protocol = "group-kfold",
    folds: int = 5,
    group: str = "speaker",
    *,
    only: Sequence[str] | None = None,
    parallel: int = 1,
    backend: str | BackendConfig | Backend | None = None,
    normalization: str | None = None,
    validation: Validation = "stratified",
    val_fraction: float | None = None,
    manifest: Any = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run every fold of a cross-validation and pool the results.

    Args:
        config: a recipe path, an :class:`~vocalis.training.ExperimentConfig`, an
            :class:`~vocalis.ensemble.recipe_file.EnsembleRecipe` or an
            :class:`~vocalis.training.estimator.Estimator` (see
            :func:`~vocalis.training.estimator.estimator_for`).
        out_dir: output folder (one run folder per fold + the JSON summaries).
        protocol: ``loso``, ``group-kfold`` or ``stratified`` (speaker-dependent).
        folds: number of folds of the k-fold protocols.
        group: manifest column kept together in a fold (``speaker``).
        only: run only these folds: fold names (``fold_2``, ``speaker_03``) or, for
            LOSO, speaker ids (``["03"]``, or one id as a string); the summary
            covers every finished fold.
        parallel: folds fitted at once (local: in separate processes, each with
            ``cpu_count // parallel`` torch threads; ray: tasks in flight).
        backend: where the folds run: ``local`` (default), ``ray``, ``slurm``
            (a name, with ``parallel`` workers), a
            :class:`~vocalis.backends.BackendConfig` or a backend
            (:mod:`vocalis.backends`). The results are those of a single-process
            run whatever the backend; finished folds in ``out_dir`` are skipped.
        normalization: ``online`` or ``speaker_norm`` (module docstring); None:
            ``online``, or the ensemble recipe's own protocol.
        validation: ``stratified`` or ``speaker`` validation split inside each
            fold's training rows, for estimators that need one (neural recipes;
            ensembles validate by inner LOSO).
        val_fraction: validation share (default ``config.dataset.val_fraction``).
        manifest: a Manifest or CSV path overriding the recipe's manifest.
        overwrite: refit finished folds (neural runs start over).
        progress: training progress bars (neural folds).

    Returns:
        The content of ``cv_results.json``.

    Raises:
        DataError: a speaker-based protocol on a manifest without speakers, or an
            ``only`` name that is no fold (the message lists the fold names).
        ConfigError: bad protocol/normalisation, or an ``out_dir`` holding results
            of another protocol.
    """
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"protocol={protocol!r}{_suggest(protocol)}; expected one of: {', '.join(PROTOCOLS)}"
        )
    from vocalis.backends import make_backend

    if isinstance(backend, str) or backend is None:
        backend = make_backend(backend, workers=parallel)
    else:
        backend = make_backend(backend)
    estimator = estimator_for(
        config, normalization=normalization, overwrite=overwrite, progress=progress
    )
    if not estimator.needs_validation and protocol == "stratified":
        raise ConfigError(
            f"protocol={protocol!r}: ensemble recipes support only speaker-independent "
            "protocols (their C and fusion weights are chosen by inner LOSO); use loso or "
            "group-kfold"
        )
    setup = estimator.setup
    norm = setup["normalization"]["protocol"]
    rows, labelled = estimator.rows(_manifest(estimator, manifest))
    if estimator.needs_validation:
        fraction = estimator.val_fraction if val_fraction is None else val_fraction
        split = {"protocol": validation, "fraction": fraction, "seed": estimator.seed}
    else:
        validation, fraction = "none", 0.0
        split = setup.get("validation", {"protocol": "inside the training rows"})
    plans = plan_folds(
        labelled,
        protocol,
        folds,
        group,
        validation=validation,
        val_fraction=fraction,
        seed=estimator.seed,
    )
    out = as_path(out_dir)
    _check_protocol_matches(out, protocol, norm)
    out.mkdir(parents=True, exist_ok=True)
    pending = []
    for plan in _select(plans, only, str(rows.source), protocol):
        if _fold_finished(out / plan.name) and not overwrite:
            log.info("fold %s: finished earlier, skipped", plan.name)
        else:
            pending.append(plan)
    results_path = out / "training_results.json"
    records = json.loads(results_path.read_text()) if results_path.is_file() else {}
    t0 = time.perf_counter()
    if pending:
        estimator.prepare(rows)
    prepare_seconds = time.perf_counter() - t0

    def done(plan: FoldPlan, record: dict[str, Any]) -> None:
        records[plan.name] = record
        write_json(results_path, records)

    with _once_per_run() as once:  # a skipped file is named once, not once per fold
        # truths from the labelled rows (label map applied, dataset.label_column read):
        # ``rows`` are what the estimator fits on, their own label column may be another
        _run_folds(estimator, rows, pending, out, backend, done, labelled.column("label"))
    head = {
        "protocol": protocol,
        "group": group,
        "n_folds": len(plans),
        "normalization": setup["normalization"],
        "speaker_dependent": protocol == "stratified",
        "validation": split,
        "manifest": str(rows.source),
    }
    head.update({k: v for k, v in setup.items() if k not in ("normalization", "validation")})
    timing = {
        "seconds": round(time.perf_counter() - t0, 2),
        "extract_seconds": round(prepare_seconds, 2),
        "backend": {"name": backend.config.name, "workers": backend.config.workers},
    }
    cv = write_cv_results(out, plans, records, head, timing, f"{protocol} ({norm})")
    n_skipped, repeated = sum(cv["n_skipped"].values()), len(once.dropped)
    if n_skipped or repeated:
        kinds = ", ".join(f"{k} {v}" for k, v in cv["n_skipped"].items())
        log.warning(
            "%d row(s) skipped over the folds (%s)%s; listed in %s",
            n_skipped,
            kinds or "none",
            f", {repeated} repeated warning(s) not shown again" if repeated else "",
            out / "errors.csv",
        )
    return cv


def loso(
    config: Any,
    out_dir: str | os.PathLike,
    *,
    speaker: str | None = None,
    speakers: Sequence[str] | None = None,
    manifest: Any = None,
    parallel: int = 1,
    backend: str | BackendConfig | Backend | None = None,
    normalization: str | None = None,
    validation: Validation = "stratified",
    val_fraction: float | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Leave-one-speaker-out: fit on all speakers but one, test on that one, for each.

    The function behind ``vocalis loso``. Folders are named ``speaker_<id>``
    (module docstring for the layout). Finished folds are skipped, so one
    speaker's fold now and all speakers later share one ``out_dir``; the
    summary (``cv_results.json``) covers every finished fold and says how many
    of them there are (``n_finished`` of ``n_folds``).

    Args:
        config: a recipe name or path (``"emodb_ecapa_s0"``), an
            :class:`~vocalis.training.ExperimentConfig` (e.g. from
            :func:`~vocalis.training.load_config` with overrides), an ensemble
            recipe or an estimator.
        out_dir: the LOSO folder.
        speaker: run only this speaker's fold (``"03"``); ``None`` and no
            ``speakers``: every speaker.
        speakers: run only these speakers' folds.
        manifest: a Manifest or CSV path overriding the recipe's ``dataset.manifest``.
        parallel: folds fitted at once (separate processes, or tasks of ``backend``).
        backend: where the folds run (``local``, ``ray``, ``slurm``...; see
            :func:`cross_validate`).
        normalization: ``online`` or ``speaker_norm`` (see :func:`cross_validate`).
        validation: ``stratified`` (the default: a label-stratified share of the
            training rows) or ``speaker`` (held-out training speakers).
        val_fraction: validation share (default: the recipe's ``dataset.val_fraction``).
        overwrite: refit finished folds.
        progress: training progress bars.

    Returns:
        The content of ``cv_results.json`` (``pooled``, ``folds``, ``mean``,
        ``std``, ``n_finished``, ``n_folds``, ``failed``...).

    Raises:
        DataError: the manifest has no ``speaker`` column (LOSO is impossible), or
            a speaker that is not in it (the message lists the speakers).
        ConfigError: both ``speaker`` and ``speakers``.

    Example::

        import vocalis

        # one speaker's fold, then all of them (the finished fold is skipped)
        vocalis.loso("emodb_ecapa_s0", "runs/s0", manifest="work/emodb.csv", speaker="03")
        cv = vocalis.loso("emodb_ecapa_s0", "runs/s0", manifest="work/emodb.csv")
        print(cv["pooled"]["uar"], cv["n_finished"], "of", cv["n_folds"])
    """
    if speaker is not None and speakers is not None:
        raise ConfigError("loso: give speaker='03' or speakers=['03', '08'], not both")
    only = [str(speaker)] if speaker is not None else speakers
    return cross_validate(
        config,
        out_dir,
        "loso",
        group="speaker",
        only=only,
        parallel=parallel,
        backend=backend,
        normalization=normalization,
        validation=validation,
        val_fraction=val_fraction,
        manifest=manifest,
        overwrite=overwrite,
        progress=progress,
    )
