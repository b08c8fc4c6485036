"""Cross-validation of an ensemble recipe (functional features + linear SVM fusion).

:func:`cross_validate_ensemble` writes the same layout as the neural runner in
:mod:`vocalis.evaluation.crossval` (``speaker_<id>/predictions.csv`` and
``metrics.json`` per fold, ``training_results.json``, ``cv_results.json``,
``predictions.csv``), so ``vocalis report`` and ``vocalis compare`` read both.
Functionals are computed once through the feature cache; inside each fold every
choice (each member's C, the fusion weights) is made by inner leave-one-speaker-out
on the training speakers.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vocalis.errors import ConfigError
from vocalis.evaluation.crossval import (
    FoldPlan,
    Protocol,
    _check_protocol_matches,
    _fold_key,
    _fold_record,
    _groups,
    _manifest,
    _pending,
    _read_records,
    _select,
    plan_folds,
    write_cv_results,
)
from vocalis.io import write_json, write_text

log = logging.getLogger(__name__)

__all__ = ["cross_validate_ensemble"]


def _ensemble_normalization(recipe: Any, normalization: str | None) -> str:
    fixed = recipe.ensemble.normalization
    if normalization is not None and normalization != fixed:
        raise ConfigError(
            f"{recipe.source or 'ensemble recipe'} fixes ensemble.normalization={fixed}; got "
            f"--normalization {normalization}: drop the flag or use the {normalization} recipe"
        )
    return fixed


def _ensemble_fold(
    recipe: Any,
    rows: Any,
    plan: FoldPlan,
    fold_dir: Path,
    data: dict[str, Any],
) -> dict[str, Any]:
    """One ensemble fold: predictions.csv + metrics.json; a failure is recorded, not raised."""
    from vocalis.ensemble.recipe import run_fold_arrays
    from vocalis.evaluation.predictions import Predictions, write_predictions
    from vocalis.training.runfolder import RunFolder

    t0 = time.perf_counter()
    record = _fold_record(plan, n_val=0)  # inner LOSO on the training rows, no held-out share
    try:
        classes = data["classes"]
        proba, info = run_fold_arrays(
            data["tables"], data["augmented"], data["y"], data["speakers"],
            plan.train, plan.test, recipe.ensemble, len(classes),
        )  # fmt: skip
        pred = proba.argmax(1)
        labels = np.asarray(rows.labels(), dtype=object)
        predictions = Predictions(
            path=np.asarray(rows.paths, dtype=object)[plan.test],
            speaker=data["speakers"][plan.test].astype(object),
            true_label=labels[plan.test],
            pred_label=np.asarray(classes, dtype=object)[pred],
            confidence=proba[np.arange(len(pred)), pred],
            probs=proba,
            classes=list(classes),
        )
        fold_dir.mkdir(parents=True, exist_ok=True)
        metrics = predictions.metrics()
        inner = float(info["fused_inner_uar"])
        diagnostics = {
            "weights": [round(float(w), 4) for w in info["weights"]],
            "chosen_c": info["chosen_c"],
            "inner_uar": [round(float(u), 4) for u in info["inner_uar"]],
            "fused_inner_uar": round(inner, 4),
        }
        seconds = round(time.perf_counter() - t0, 2)
        RunFolder(fold_dir).write_metrics(
            kind="train", model="ensemble", test=metrics,
            n_rows={"train": len(plan.train), "test": len(plan.test)}, classes=list(classes),
            seconds=seconds, fold=plan.name,
            details={"ensemble": diagnostics, "test_groups": list(plan.test_groups)},
        )  # fmt: skip
        write_predictions(fold_dir / "predictions.csv", predictions)  # last: marks it finished
        record.update(status="success", best_error=round(1.0 - inner, 6), **diagnostics)
        log.info("fold %s: UAR %.4f (%.0f s)", plan.name, metrics["uar"], seconds)
    except Exception as err:  # one failed fold must not stop the others
        record["error"] = f"{type(err).__name__}: {err}"
        fold_dir.mkdir(parents=True, exist_ok=True)
        write_text(fold_dir / "error.txt", traceback.format_exc())
        log.error("fold %s failed: %s", plan.name, record["error"])
    record["seconds"] = round(time.perf_counter() - t0, 2)
    return record


def cross_validate_ensemble(
    recipe: Any,
    out_dir: str | os.PathLike,
    protocol: Protocol = "loso",
    folds: int = 5,
    group: str = "speaker",
    *,
    only: Sequence[str] | None = None,
    normalization: str | None = None,
    manifest: Any = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Cross-validate a functionals ensemble, writing the same layout as a neural run.

    Each fold calls :func:`vocalis.ensemble.recipe.run_fold_arrays` on functionals
    computed once for every row (through the recipe's feature cache); every
    choice inside a fold (each member's ``C``, the fusion weights) is made by
    inner leave-one-speaker-out on that fold's training speakers, so there is
    no validation split. A fold folder holds ``predictions.csv`` and
    ``metrics.json`` (test metrics + chosen ``C``, fusion weights, inner UARs);
    finished folds are skipped unless ``overwrite``.

    Args:
        recipe: an :class:`~vocalis.ensemble.recipe_file.EnsembleRecipe`.
        out_dir: output folder.
        protocol: ``loso`` or ``group-kfold`` (speaker-independent only).
        folds: number of folds of ``group-kfold``.
        group: manifest column kept together in a fold.
        only: run only these folds (speaker ids or fold names).
        normalization: None (the recipe's) or the recipe's own protocol.
        manifest: a Manifest or CSV path overriding ``recipe.manifest``.
        overwrite: recompute finished folds.

    Returns:
        The content of ``cv_results.json``.

    Raises:
        ConfigError: ``stratified`` protocol, or ``normalization`` not the recipe's.
        DataError: no speaker column, or unknown folds in ``only``.
    """
    from vocalis.config import to_dict
    from vocalis.ensemble.loso import member_tables

    if protocol not in ("loso", "group-kfold"):
        raise ConfigError(
            f"protocol={protocol!r}: ensemble recipes support only speaker-independent "
            "protocols (their C and fusion weights are chosen by inner LOSO); use loso or "
            "group-kfold"
        )
    normalization = _ensemble_normalization(recipe, normalization)
    if manifest is None and not recipe.manifest:
        raise ConfigError(
            f"{recipe.source or 'ensemble recipe'}: manifest is empty; set it in the recipe "
            "or pass --manifest m.csv"
        )
    rows, source = _manifest(None, manifest if manifest is not None else recipe.manifest)
    plans = [  # no validation split: the inner LOSO validates on the training speakers
        dataclasses.replace(p, train=np.sort(np.concatenate([p.train, p.val])), val=p.val[:0])
        for p in plan_folds(rows, protocol, folds, group)
    ]
    out = Path(out_dir)
    _check_protocol_matches(out, protocol, normalization)
    out.mkdir(parents=True, exist_ok=True)
    pending = _pending(_select(plans, only, source), out, overwrite)
    results_path = out / "training_results.json"
    records = _read_records(results_path)
    t0 = time.perf_counter()
    extract_seconds = 0.0
    if pending:
        labels = rows.labels()
        classes = tuple(sorted(set(labels)))
        tables, augmented = member_tables(rows.paths, recipe.ensemble, recipe.cache_dir)
        extract_seconds = time.perf_counter() - t0
        log.info("functionals of %d files: %.0f s", len(rows), extract_seconds)
        data = {
            "tables": tables,
            "augmented": augmented,
            "y": np.array([classes.index(v) for v in labels]),
            "speakers": np.asarray(_groups(rows, group)).astype(str),
            "classes": classes,
        }
        for plan in pending:
            log.info("fold %s: train %d, test %d", plan.name, len(plan.train), len(plan.test))
            record = _ensemble_fold(recipe, rows, plan, out / plan.name, data)
            records[_fold_key(plan, protocol)] = record
            write_json(results_path, records)
    members = [
        m.functionals.name + (f"({m.functionals.lld})" if m.functionals.name == "lld_stats" else "")
        for m in recipe.ensemble.members
    ]
    setup = {
        "protocol": protocol,
        "group": group,
        "n_folds": len(plans),
        "normalization": {
            "protocol": normalization,
            "ensemble.normalization": normalization,
            "description": (
                "train-speaker statistics only"
                if normalization == "online"
                else "per-speaker standardisation of every speaker, test speaker included "
                "(its unlabelled audio); speed copies are pseudo-speakers"
            ),
        },
        "speaker_dependent": False,
        "validation": {
            "protocol": "inner leave-one-speaker-out on the training speakers (C, fusion)",
            "seed": None,
        },
        "manifest": source,
        "model": "ensemble",
        "features": " + ".join(members),
        "recipe": recipe.source or None,
        "config": to_dict(recipe),
    }
    timing = {
        "seconds": round(time.perf_counter() - t0, 2),
        "extract_seconds": round(extract_seconds, 2),
    }
    label = f"ensemble {protocol} ({normalization})"
    return write_cv_results(out, plans, records, setup, timing, label)
