"""Speaker-independent cross-validation: LOSO and group k-fold over the training engine.

:func:`loso` trains one model per speaker on all the other speakers and tests
it on the left-out speaker; :func:`cross_validate` also offers group k-fold and
(with a warning) speaker-dependent stratified k-fold. Each fold is an ordinary
run folder made by :func:`vocalis.training.train`; the runner only chooses the
indices, records what happened and pools the predictions::

    out_dir/
      speaker_03/  speaker_08/ ...   # run folders (LOSO); fold_0/ ... for k-fold
      training_results.json          # per fold: status, best_error, best_epoch, seconds
      cv_results.json                # pooled + per-fold metrics, mean ± std, protocol
      predictions.csv                # all folds' test predictions, concatenated

Pooled metrics are computed on the concatenated predictions of all finished
folds (the usual way of reporting LOSO on EmoDB); the mean and sample standard
deviation over folds are reported next to them.

Feature normalisation protocols (recorded in the results, never mixed in one
output folder):

* ``online``: statistics from the training speakers only
  (``features.normalization=global``);
* ``speaker_norm``: each speaker, the test speaker included, standardised with
  its own statistics from its unlabelled audio (``features.normalization=speaker``).

A failed fold is recorded with its error and the others go on; running again
skips finished folds (a fold is finished when its ``metrics.json`` and
``predictions.csv`` exist) and resumes unfinished ones.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vocalis.errors import ConfigError, DataError
from vocalis.io import write_json, write_text

log = logging.getLogger(__name__)

__all__ = [
    "NORMALIZATIONS",
    "PROTOCOLS",
    "FoldPlan",
    "cross_validate",
    "loso",
    "plan_folds",
    "summarize",
]

#: Normalisation protocol -> ``features.normalization`` of the training engine.
NORMALIZATIONS = {"online": "global", "speaker_norm": "speaker"}

#: Cross-validation protocols of :func:`cross_validate`.
PROTOCOLS = ("loso", "group-kfold", "stratified")

#: Metrics summarised as mean ± std over folds.
SUMMARY_KEYS = ("uar", "accuracy", "macro_f1", "weighted_f1", "ece")

Protocol = Literal["loso", "group-kfold", "stratified"]
Validation = Literal["stratified", "speaker"]


@dataclasses.dataclass(frozen=True)
class FoldPlan:
    """The indices of one fold (into the manifest's rows).

    Attributes:
        name: folder name (``speaker_03``, ``fold_2``).
        train: training rows.
        val: validation rows (held out from the training rows).
        test: test rows.
        test_groups: groups (speakers) in ``test``.
    """

    name: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    test_groups: tuple[str, ...]


# --------------------------------------------------------------------------- planning


def _groups(manifest: Any, group: str) -> np.ndarray:
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

    if validation == "speaker":
        if groups is None:
            raise DataError("validation='speaker' needs speaker ids; use validation='stratified'")
        tr, va = next(SpeakerHoldout(fraction, seed=seed).split(train, groups=groups[train]))
        return np.sort(train[tr]), np.sort(train[va])
    if validation != "stratified":
        raise ConfigError(
            f"validation={validation!r}; expected 'stratified' (held-out share of the training "
            "rows, stratified by label) or 'speaker' (held-out training speakers)"
        )
    return stratified_val_split(train, labels[train], fraction, seed)


def plan_folds(
    manifest: Any,
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
        protocol: ``loso`` (one fold per group), ``group-kfold`` (``folds`` folds of
            whole groups) or ``stratified`` (random stratified k-fold; speaker-
            dependent: warns).
        folds: number of folds for the k-fold protocols.
        group: manifest column whose values are kept together (``speaker``).
        label_column: column with the labels (stratification).
        validation: ``stratified`` (``val_fraction`` of the training rows, stratified
            by label) or ``speaker`` (``val_fraction`` of the training speakers).
        val_fraction: share held out for validation.
        seed: seed of the validation split and of the random protocols.

    Returns:
        One :class:`FoldPlan` per fold, in order.

    Raises:
        DataError: no speaker (group) column for a speaker-based protocol, too few
            groups, or an unknown protocol.
    """
    from vocalis.data.splits import GroupKFold, SpeakerDependentWarning

    labels = np.asarray(manifest.labels(label_column))
    n = len(labels)
    groups: np.ndarray | None = None
    if protocol in ("loso", "group-kfold") or validation == "speaker":
        groups = _groups(manifest, group)
    elif "speaker" in manifest.columns and manifest.has("speaker"):
        groups = np.asarray(manifest.speakers)
    plans: list[FoldPlan] = []
    idx = np.arange(n, dtype=np.int64)
    if protocol == "loso":
        names = sorted(set(groups.tolist()))
        if len(names) < 2:
            raise DataError(f"LOSO needs at least 2 {group}s, {manifest.source} has {len(names)}")
        splits = [(f"speaker_{g}", idx[groups != g], idx[groups == g]) for g in names]
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
    for name, train, test in splits:
        tr, va = _val_split(train, labels, groups, validation, val_fraction, seed)
        test_groups = tuple(sorted(set(groups[test].tolist()))) if groups is not None else ()
        plans.append(FoldPlan(name, tr, va, np.sort(test), test_groups))
    return plans


# --------------------------------------------------------------------------- one fold


def _fold_finished(fold_dir: Path) -> bool:
    return (fold_dir / "metrics.json").is_file() and (fold_dir / "predictions.csv").is_file()


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _best_uar(best_metrics: Any) -> float | None:
    if not isinstance(best_metrics, dict):
        return None
    for key in ("uar", "val_uar"):
        if isinstance(best_metrics.get(key), (int, float)):
            return float(best_metrics[key])
    return None


def _fold_record(plan: FoldPlan, n_val: int) -> dict[str, Any]:
    """A fold's ``training_results.json`` entry before it runs (status ``failed``)."""
    return {
        "status": "failed",
        "best_error": None,
        "best_epoch": None,
        "seconds": None,
        "test_groups": list(plan.test_groups),
        "n_train": len(plan.train),
        "n_val": n_val,
        "n_test": len(plan.test),
    }


def _run_fold(
    config: Any,
    manifest: Any,
    plan: FoldPlan,
    fold_dir: Path,
    train_fn: Callable[..., Any],
    overwrite: bool,
) -> dict[str, Any]:
    """Train one fold; never raises for a training failure (recorded instead)."""
    t0 = time.perf_counter()
    record = _fold_record(plan, n_val=len(plan.val))
    try:
        result = train_fn(
            config,
            fold_dir,
            manifest=manifest,
            train_indices=plan.train,
            val_indices=plan.val,
            test_indices=plan.test,
            overwrite=overwrite,
        )
        uar = _best_uar(_get(result, "best_metrics"))
        record.update(
            status="success",
            best_error=None if uar is None else round(1.0 - uar, 6),
            best_epoch=_get(result, "best_epoch"),
        )
        if not (fold_dir / "predictions.csv").is_file():
            raise DataError(
                f"{fold_dir}: training finished but wrote no predictions.csv for the test rows"
            )
    except Exception as err:  # one failed fold must not stop the others
        record["status"] = "failed"
        record["error"] = f"{type(err).__name__}: {err}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        write_text(fold_dir / "error.txt", traceback.format_exc())
        log.error("fold %s failed: %s", plan.name, record["error"])
    record["seconds"] = round(time.perf_counter() - t0, 2)
    return record


def _fold_worker(args: tuple) -> tuple[str, dict[str, Any]]:
    """Process-pool entry: limit torch threads, then run one fold."""
    threads, config, manifest, plan, fold_dir, train_fn, overwrite = args
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    return plan.name, _run_fold(config, manifest, plan, fold_dir, train_fn, overwrite)


# --------------------------------------------------------------------------- summary


def summarize(out_dir: str | os.PathLike, fold_names: Sequence[str]) -> dict[str, Any]:
    """Pooled and per-fold metrics of the finished folds among ``fold_names``.

    Returns:
        ``{"pooled": metrics, "folds": {name: metrics}, "mean": {...}, "std": {...},
        "n_finished": int}``; ``std`` is the sample standard deviation (ddof=1,
        0 for a single fold).
    """
    from vocalis.evaluation.predictions import concat_predictions, read_predictions

    out = Path(out_dir)
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
    mean, std = {}, {}
    for key in SUMMARY_KEYS:
        vals = np.array(
            [m[key] for m in per_fold.values() if isinstance(m.get(key), (int, float))], float
        )
        if vals.size:
            mean[key] = float(np.nanmean(vals))
            std[key] = float(np.nanstd(vals, ddof=1)) if vals.size > 1 else 0.0
    result.update(mean=mean, std=std, _pooled_predictions=pooled)
    return result


# --------------------------------------------------------------------------- runners


def _load(config: Any) -> Any:
    if isinstance(config, (str, os.PathLike)):
        from vocalis.ensemble.recipe_file import load_ensemble_recipe

        recipe = load_ensemble_recipe(config)
        if recipe is not None:
            return recipe
        try:
            from vocalis.training import load_config
        except ImportError:  # engine package not wired yet: the config module has it
            from vocalis.training.config import load_config

        return load_config(config, [])
    return config


def _manifest(config: Any, manifest: Any) -> tuple[Any, str]:
    from vocalis.data import read_manifest

    if manifest is None:
        path = getattr(getattr(config, "dataset", None), "manifest", "")
        if not path:
            raise ConfigError(
                "dataset.manifest is empty; set it in the recipe or pass --manifest m.csv"
            )
        manifest = path
    if isinstance(manifest, (str, os.PathLike)):
        return read_manifest(manifest), str(manifest)
    return manifest, str(getattr(manifest, "source", "manifest"))


def _mapped(config: Any, rows: Any) -> tuple[Any, Any]:
    """``(rows the engine will keep, the same rows with mapped labels)``.

    The training engine applies ``dataset.label_map`` itself, and indices refer to
    the rows it keeps; so rows a map drops are removed here first (the engine
    then maps every remaining row, dropping none), and the folds are stratified
    on the mapped labels.
    """
    dataset = getattr(config, "dataset", None)
    label_map = getattr(dataset, "label_map", None)
    if label_map is None:
        return rows, rows
    from vocalis.data import apply_label_map

    column = getattr(dataset, "label_column", "label")
    mapped = apply_label_map(
        rows, label_map, column=column, unmapped=getattr(dataset, "unmapped", "error")
    )
    kept = set(mapped.ids)
    raw = rows.select([i for i, uid in enumerate(rows.ids) if uid in kept])
    if raw.ids != mapped.ids:  # pragma: no cover - apply_label_map keeps row order
        raise DataError(f"{rows.source}: label map changed the row order")
    return raw, mapped


def _with_normalization(config: Any, normalization: str) -> Any:
    if normalization not in NORMALIZATIONS:
        raise ConfigError(
            f"normalization={normalization!r}; expected one of: {', '.join(NORMALIZATIONS)}"
        )
    features = getattr(config, "features", None)
    if features is None or not dataclasses.is_dataclass(features):
        return config
    features = dataclasses.replace(features, normalization=NORMALIZATIONS[normalization])
    return dataclasses.replace(config, features=features)


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


def cross_validate(
    config: Any,
    out_dir: str | os.PathLike,
    protocol: Protocol = "group-kfold",
    folds: int = 5,
    group: str = "speaker",
    *,
    only: Sequence[str] | None = None,
    parallel: int = 1,
    normalization: str | None = None,
    validation: Validation = "stratified",
    val_fraction: float | None = None,
    manifest: Any = None,
    overwrite: bool = False,
    train_fn: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """Run every fold of a cross-validation and pool the results.

    Args:
        config: an :class:`~vocalis.training.ExperimentConfig`, an
            :class:`~vocalis.ensemble.recipe_file.EnsembleRecipe` or a recipe path
            (an ensemble recipe runs
            :func:`vocalis.evaluation.ensemble_cv.cross_validate_ensemble`).
        out_dir: output folder (one run folder per fold + the JSON summaries).
        protocol: ``loso``, ``group-kfold`` or ``stratified`` (speaker-dependent).
        folds: number of folds of the k-fold protocols.
        group: manifest column kept together in a fold (``speaker``).
        only: run only these folds (group ids for LOSO, e.g. ``["03"]``, or fold
            names ``fold_2``); the summary covers every finished fold.
        parallel: folds trained at once, in separate processes, each with
            ``cpu_count // parallel`` torch threads.
        normalization: ``online`` or ``speaker_norm`` (module docstring); None:
            ``online``, or the ensemble recipe's own protocol.
        validation: ``stratified`` or ``speaker`` validation split inside each
            fold's training rows (neural recipes; ensembles validate by inner LOSO).
        val_fraction: validation share (default ``config.dataset.val_fraction``).
        manifest: a Manifest or CSV path overriding ``config.dataset.manifest``.
        overwrite: passed to the training engine (start folds from scratch).
        train_fn: training function (default :func:`vocalis.training.train`).

    Returns:
        The content of ``cv_results.json``.

    Raises:
        DataError: a speaker-based protocol on a manifest without speakers.
        ConfigError: bad protocol/normalisation, or an ``out_dir`` holding results
            of another protocol.
    """
    config = _load(config)
    if protocol not in PROTOCOLS:
        raise ConfigError(
            f"protocol={protocol!r}{_suggest(protocol)}; expected one of: {', '.join(PROTOCOLS)}"
        )
    if parallel < 1:
        raise ConfigError(f"parallel={parallel}; expected at least 1 fold at a time")
    if getattr(config, "kind", None) == "ensemble":
        from vocalis.evaluation.ensemble_cv import cross_validate_ensemble

        return cross_validate_ensemble(
            config, out_dir, protocol, folds, group, only=only, normalization=normalization,
            manifest=manifest, overwrite=overwrite,
        )  # fmt: skip
    normalization = normalization or "online"
    config = _with_normalization(config, normalization)
    rows, source = _manifest(config, manifest)
    rows, labelled = _mapped(config, rows)
    dataset = getattr(config, "dataset", None)
    label_column = getattr(dataset, "label_column", "label")
    fraction = val_fraction if val_fraction is not None else getattr(dataset, "val_fraction", 0.2)
    seed = getattr(dataset, "seed", None)
    if seed is None:
        seed = getattr(getattr(config, "train", None), "seed", 0)
    plans = plan_folds(
        labelled,
        protocol,
        folds,
        group,
        label_column=label_column,
        validation=validation,
        val_fraction=fraction,
        seed=int(seed),
    )
    out = Path(out_dir)
    _check_protocol_matches(out, protocol, normalization)
    out.mkdir(parents=True, exist_ok=True)
    pending = _pending(_select(plans, only, source), out, overwrite)
    results_path = out / "training_results.json"
    records = _read_records(results_path)
    if train_fn is None:
        from vocalis.training import train as train_fn
    t0 = time.perf_counter()
    if parallel > 1 and len(pending) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        threads = max(1, (os.cpu_count() or 1) // parallel)
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(min(parallel, len(pending)), mp_context=ctx) as pool:
            futures = {
                pool.submit(
                    _fold_worker,
                    (threads, config, rows, p, out / p.name, train_fn, overwrite),
                ): p
                for p in pending
            }
            for fut in as_completed(futures):
                plan = futures[fut]
                try:
                    _, record = fut.result()
                except Exception as err:  # the worker process itself died
                    record = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
                records[_fold_key(plan, protocol)] = record
                write_json(results_path, records)
    else:
        for plan in pending:
            log.info(
                "fold %s: train %d, val %d, test %d",
                plan.name,
                *map(len, (plan.train, plan.val, plan.test)),
            )
            record = _run_fold(config, rows, plan, out / plan.name, train_fn, overwrite)
            records[_fold_key(plan, protocol)] = record
            write_json(results_path, records)
    from vocalis.config import to_dict

    setup = {
        "protocol": protocol,
        "group": group,
        "n_folds": len(plans),
        "normalization": {
            "protocol": normalization,
            "features.normalization": NORMALIZATIONS[normalization],
            "description": (
                "train-speaker statistics only"
                if normalization == "online"
                else "per-speaker standardisation of every speaker, test speaker included "
                "(its unlabelled audio)"
            ),
        },
        "speaker_dependent": protocol == "stratified",
        "validation": {"protocol": validation, "fraction": fraction, "seed": int(seed)},
        "manifest": source,
        "model": getattr(getattr(config, "model", None), "name", None),
        "features": _feature_name(config),
        "config": to_dict(config) if dataclasses.is_dataclass(config) else None,
    }
    timing = {"seconds": round(time.perf_counter() - t0, 2)}
    return write_cv_results(out, plans, records, setup, timing, f"{protocol} ({normalization})")


def _read_records(path: Path) -> dict[str, Any]:
    """``training_results.json`` of an earlier run, or an empty record."""
    return json.loads(path.read_text()) if path.is_file() else {}


def _pending(todo: list[FoldPlan], out: Path, overwrite: bool) -> list[FoldPlan]:
    """The folds of ``todo`` still to run (finished ones are skipped unless ``overwrite``)."""
    pending = []
    for plan in todo:
        if _fold_finished(out / plan.name) and not overwrite:
            log.info("fold %s: finished earlier, skipped", plan.name)
            continue
        pending.append(plan)
    return pending


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
        from vocalis.evaluation.predictions import write_predictions

        write_predictions(out / "predictions.csv", pooled_pred)
    cv = {
        **setup,
        "fold_names": [p.name for p in plans],
        "n_finished": summary["n_finished"],
        "failed": {k: v.get("error") for k, v in records.items() if v.get("status") == "failed"},
        "pooled": summary["pooled"],
        "mean": summary["mean"],
        "std": summary["std"],
        "folds": summary["folds"],
        **timing,
        "wall_seconds_total": round(sum(float(r.get("seconds") or 0) for r in records.values()), 2),
    }
    write_json(out / "cv_results.json", cv)
    if summary["pooled"] is not None:
        log.info(
            "%s: pooled UAR %.4f, fold UAR %.4f ± %.4f over %d finished folds",
            label,
            summary["pooled"]["uar"],
            summary["mean"].get("uar", float("nan")),
            summary["std"].get("uar", float("nan")),
            summary["n_finished"],
        )
    return cv


def loso(
    config: Any,
    out_dir: str | os.PathLike,
    *,
    speakers: Sequence[str] | None = None,
    parallel: int = 1,
    normalization: str | None = None,
    validation: Validation = "stratified",
    val_fraction: float | None = None,
    manifest: Any = None,
    overwrite: bool = False,
    train_fn: Callable[..., Any] | None = None,
) -> dict[str, Any]:
    """Leave-one-speaker-out: train on all speakers but one, test on that one, for each.

    Folders are named ``speaker_<id>``. See :func:`cross_validate` for the
    arguments (``speakers`` = the speakers whose folds to run, default all).

    Raises:
        DataError: the manifest has no ``speaker`` column (LOSO is impossible).
    """
    return cross_validate(
        config,
        out_dir,
        "loso",
        group="speaker",
        only=speakers,
        parallel=parallel,
        normalization=normalization,
        validation=validation,
        val_fraction=val_fraction,
        manifest=manifest,
        overwrite=overwrite,
        train_fn=train_fn,
    )


def _feature_name(config: Any) -> str | None:
    extractor = getattr(getattr(config, "features", None), "extractor", None)
    return extractor.get("name") if isinstance(extractor, dict) else None


def _suggest(name: str) -> str:
    from vocalis.registry import did_you_mean

    return did_you_mean(name, PROTOCOLS)


# --------------------------------------------------------------------------- ensembles


def _select(plans: list[FoldPlan], only: Sequence[str] | None, source: str) -> list[FoldPlan]:
    if not only:
        return plans
    wanted = {str(s) for s in only}
    known = {p.name for p in plans} | {g for p in plans for g in p.test_groups}
    unknown = sorted(wanted - known)
    if unknown:
        available = sorted(g for p in plans for g in p.test_groups) or [p.name for p in plans]
        raise DataError(
            f"fold(s) {', '.join(unknown)} not in {source}; available: {', '.join(available)}"
        )
    return [p for p in plans if p.name in wanted or set(p.test_groups) & wanted]


def _fold_key(plan: FoldPlan, protocol: str) -> str:
    return plan.test_groups[0] if protocol == "loso" and plan.test_groups else plan.name
