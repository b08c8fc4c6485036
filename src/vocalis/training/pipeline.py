"""From a manifest to normalised features and class ids, shared by training and evaluation.

The steps are plain functions: :func:`load_rows` (manifest + label map),
:func:`given_parts` (the parts a split folder or ``--val-csv`` / ``--test-csv`` fix),
:func:`split_rows` (train/val/test by the configured protocol),
:func:`featurize_rows` (tier 0 + extractor, cached, failures dropped); the
normalisation is :class:`vocalis.features.normalize.FeatureNormalizer`.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from vocalis.errors import ConfigError, DataError
from vocalis.io import PATH_TYPES
from vocalis.training.config import DatasetConfig, FeaturesConfig

log = logging.getLogger(__name__)

#: Values of ``dataset.split_column`` read as each part.
SPLIT_NAMES = {
    "train": ("train", "training"),
    "val": ("val", "valid", "validation", "dev", "development"),
    "test": ("test", "eval", "evaluation"),
}


def load_rows(
    dataset: DatasetConfig, manifest: Any = None, precomputed_pt: Sequence[str] = ()
) -> Any:
    """Read the manifest (or take the given one) and apply ``dataset.label_map``.

    Without any manifest, the rows come from the ids and speakers of the precomputed
    ``.pt`` files ``precomputed_pt`` when there are some
    (:func:`vocalis.features.precomputed.rows_from_pt`).

    Raises:
        ConfigError: no manifest given anywhere.
        DataError: the manifest lacks the label column, or a label is unmapped.
    """
    from vocalis.data import Manifest, apply_label_map, read_manifest

    if manifest is None and not dataset.manifest and precomputed_pt:
        from vocalis.features.precomputed import rows_from_pt

        manifest = Manifest(rows_from_pt(*precomputed_pt), source=" + ".join(precomputed_pt))
    if manifest is None:
        if not dataset.manifest:
            raise ConfigError(
                "dataset.manifest is empty; pass --manifest work/emodb.csv or set "
                "dataset.manifest=... (make one with `vocalis prepare`)"
            )
        manifest = read_manifest(dataset.manifest)
    elif isinstance(manifest, PATH_TYPES):
        manifest = read_manifest(manifest)
    elif not isinstance(manifest, Manifest):
        raise DataError(f"manifest: expected a path or a Manifest, got {type(manifest).__name__}")
    manifest.require(dataset.label_column)
    if dataset.label_map is not None:
        manifest = apply_label_map(
            manifest, dataset.label_map, column=dataset.label_column, unmapped=dataset.unmapped
        )
    return manifest


def given_parts(
    dataset: DatasetConfig, rows: Any, indices: tuple[Any, Any, Any]
) -> tuple[Any, tuple[Any, Any, Any], str | None]:
    """The rows and parts fixed by ``dataset.split_dir``, ``val_manifest`` or ``test_manifest``.

    Rows given by the caller (``indices`` not all ``None``, e.g. a cross-validation
    fold) win and are returned unchanged. A split folder picks rows of ``rows``
    (:mod:`vocalis.data.splitdir`); extra manifests are read like the main one
    (label map applied) and appended after its rows.

    Returns:
        ``(rows, (train, val, test), description)``; the description (for the run
        log) is ``None`` when nothing was fixed.

    Raises:
        DataError: a split file naming unknown rows or a row in two parts, or an extra
            manifest sharing rows (or ids) with another.
    """
    from vocalis.data import Manifest

    if any(i is not None for i in indices):
        return rows, indices, None
    if dataset.split_dir:
        from vocalis.data.splitdir import read_split_dir

        parts = read_split_dir(dataset.split_dir).indices(rows)
        val = "val.csv" if parts.val is not None else f"val held out ({dataset.val_protocol})"
        how = f"Parts from split folder {dataset.split_dir}: train.csv, {val}, test.csv"
        return rows, (parts.train, parts.val, parts.test), how
    #: part -> (config key, flag) of the extra manifests
    flags = {"val": ("val_manifest", "--val-csv"), "test": ("test_manifest", "--test-csv")}
    extra = {part: getattr(dataset, key) for part, (key, _) in flags.items()}
    extra = {part: path for part, path in extra.items() if path}
    if not extra:
        return rows, indices, None
    loaded = {part: load_rows(dataset, path) for part, path in extra.items()}
    parts: dict[str, Any] = {"train": np.arange(len(rows)), "val": None, "test": None}
    start = len(rows)
    for part, m in loaded.items():
        parts[part] = np.arange(start, start + len(m))
        start += len(m)
    merged = Manifest.concat([rows, *loaded.values()], source=rows.source)
    if len(merged) != start:  # identical rows were merged: a part shares recordings
        raise DataError(
            f"{', '.join(extra.values())}: {start - len(merged)} row(s) also in "
            f"{rows.source}; a validation or test manifest must not repeat training rows"
        )
    how = f"Parts: train {rows.source}" + "".join(
        f", {part} {path} ({flags[part][1]})" for part, path in extra.items()
    )
    return merged, (parts["train"], parts["val"], parts["test"]), how


def split_rows(
    manifest: Any,
    dataset: DatasetConfig,
    seed: int,
    *,
    train: Sequence[int] | None = None,
    val: Sequence[int] | None = None,
    test: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train, validation and test row indices.

    Given indices win; without any, ``dataset.split`` (when set) makes all three
    parts. Missing validation rows are held out of the training rows by
    ``dataset.val_protocol``; test rows come from the argument or, with
    ``val_protocol=split_column``, from the split column.

    Raises:
        DataError: an empty training or validation part, overlapping parts, or a
            protocol the manifest cannot support (no speaker / split column).
    """
    from vocalis.data import SpeakerHoldout, StratifiedHoldout

    n = len(manifest)
    split_seed = dataset.seed if dataset.seed is not None else seed
    test_idx = np.asarray(test if test is not None else [], dtype=np.int64)
    labels = np.asarray(manifest.labels(dataset.label_column))
    if dataset.split is not None and train is None and val is None and test is None:
        parts = dataset.split.parts(manifest, labels, seed=split_seed)
        train_idx, val_idx, test_idx = parts.train, parts.val, parts.test
    elif dataset.val_protocol == "split_column" and train is None:
        values = [v.strip().lower() for v in manifest.column(dataset.split_column)]
        parts = {
            k: np.asarray([i for i, v in enumerate(values) if v in names], dtype=np.int64)
            for k, names in SPLIT_NAMES.items()
        }
        known = {name for names in SPLIT_NAMES.values() for name in names}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DataError(
                f"{manifest.source}: column '{dataset.split_column}' has value '{unknown[0]}'; "
                "expected train, val (dev) or test"
            )
        train_idx = parts["train"]
        val_idx = np.asarray(val, dtype=np.int64) if val is not None else parts["val"]
        if test is None:
            test_idx = parts["test"]
    else:
        train_idx = np.asarray(train if train is not None else np.arange(n), dtype=np.int64)
        if test is not None and train is None:
            train_idx = np.setdiff1d(train_idx, test_idx)
        if val is not None:
            val_idx = np.asarray(val, dtype=np.int64)
            if train is None:
                train_idx = np.setdiff1d(train_idx, val_idx)
        else:
            sub = manifest.select(train_idx.tolist())
            if dataset.val_protocol == "stratified":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    splitter = StratifiedHoldout(dataset.val_fraction, seed=split_seed)
                    tr, va = next(splitter.split(sub, labels[train_idx]))
                log.warning(
                    "dataset.val_protocol=stratified: validation shares speakers with training, "
                    "so validation scores are speaker-dependent (optimistic); use "
                    "val_protocol=speaker for honest numbers"
                )
            elif dataset.val_protocol == "speaker":
                if "speaker" not in sub.columns:
                    raise DataError(
                        f"{manifest.source} has no 'speaker' column, so dataset.val_protocol="
                        "speaker cannot hold out speakers; add the column or set "
                        "dataset.val_protocol=stratified (speaker-dependent)"
                    )
                tr, va = next(SpeakerHoldout(dataset.val_fraction, seed=split_seed).split(sub))
            else:  # split_column with explicit train indices
                raise DataError(
                    "dataset.val_protocol=split_column needs val rows when train rows are given"
                )
            train_idx, val_idx = train_idx[tr], train_idx[va]
    if len(train_idx) == 0:
        raise DataError(
            f"{manifest.source}: the training split is empty; check dataset.val_protocol and the "
            "split column, or give more data"
        )
    if len(val_idx) == 0:
        raise DataError(
            f"{manifest.source}: the validation split is empty; lower dataset.val_fraction's "
            "granularity (more speakers) or fill the split column with some 'val' rows"
        )
    for a, b, what in (
        (train_idx, val_idx, "train and val"),
        (train_idx, test_idx, "train and test"),
    ):
        both = np.intersect1d(a, b)
        if len(both):
            raise DataError(
                f"{manifest.source}: {len(both)} row(s) are in both {what} (first: row "
                f"{int(both[0]) + 1}); the parts must not overlap"
            )
    for part in (train_idx, val_idx, test_idx):
        if len(part) and (part.min() < 0 or part.max() >= n):
            raise DataError(f"row index {int(part.max())} out of range for {n} manifest rows")
    return train_idx, val_idx, test_idx


def featurize_rows(
    paths: Sequence[str],
    features: FeaturesConfig,
    *,
    progress: bool = True,
    workers: int | None = None,
) -> tuple[list[torch.Tensor | None], list[tuple[str, str]]]:
    """Features per path (``None`` where the file failed) and the failures.

    Raises:
        DataError: more files failed than ``features.max_failures`` allows.
    """
    from vocalis.cachedir import resolve_cache_dir
    from vocalis.features.pipeline import extract_many

    cache = resolve_cache_dir(features.cache_dir, "features")
    # a line before and after: with --no-progress (or in a log) a long extraction is not silent
    log.info(
        "features: %s of %d files (cache: %s)",
        features.extractor.name,
        len(paths),
        cache or "none",
    )
    result = extract_many(
        list(paths),
        features.pipeline,
        cache=cache,
        workers=features.workers if workers is None else workers,
        max_failures=features.max_failures,
        progress=progress,
    )
    log.info("features: %s", result.summary())
    return list(result.features), list(result.failures)


def speakers_of(manifest: Any) -> list[str]:
    """The speaker column, or the utterance ids when there is none."""
    return manifest.column("speaker") if "speaker" in manifest.columns else list(manifest.ids)


def regression_targets(manifest: Any, columns: Sequence[str]) -> torch.Tensor | None:
    """(N, K) float targets from numeric columns (empty cells -> NaN), or ``None``.

    Raises:
        DataError: a missing column or a non-numeric cell.
    """
    if not columns:
        return None
    out = torch.full((len(manifest), len(columns)), float("nan"))
    for k, name in enumerate(columns):
        for i, value in enumerate(manifest.column(name)):
            if value.strip() == "":
                continue
            try:
                out[i, k] = float(value)
            except ValueError:
                raise DataError(
                    f"{manifest.source}: row {i + 1} has {name}={value!r}; expected a number "
                    "(or an empty cell) for dataset.regression_columns"
                ) from None
    return out
