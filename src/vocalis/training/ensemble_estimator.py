"""The functionals ensemble (:mod:`vocalis.ensemble`) as an estimator: fit on manifest rows.

:class:`EnsembleEstimator` implements :class:`vocalis.training.estimator.Estimator`
for an :class:`~vocalis.ensemble.recipe_file.EnsembleRecipe`: the same object is
cross-validated by :func:`vocalis.evaluation.crossval.cross_validate` and
trained on a whole manifest by ``vocalis train``. :meth:`EnsembleEstimator.fit`
computes the members' functionals of the training rows only (and their speed
copies; through the recipe's feature cache, kept in memory between folds),
fits every member with its ``C`` chosen by inner leave-one-speaker-out, then
the fusion weights, and writes a run folder (``config.yaml``, ``env.json``,
``log.txt``, ``label_map.json``, ``metrics.json``). :meth:`FittedEnsemble.save`
writes ``model.pt``, a weights-only checkpoint of the torch module
:class:`~vocalis.ensemble.model.EnsembleModel`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vocalis.ensemble.recipe import EnsembleFit, fit_ensemble, functional_table
from vocalis.ensemble.recipe_file import EnsembleRecipe
from vocalis.errors import ConfigError, DataError
from vocalis.io import as_path

if TYPE_CHECKING:
    from vocalis.data import LabelEncoder, Manifest
    from vocalis.ensemble.model import EnsembleModel

log = logging.getLogger(__name__)

__all__ = ["EnsembleEstimator", "FittedEnsemble", "member_names", "train_ensemble"]


def member_names(recipe: EnsembleRecipe) -> str:
    """The members' functionals, e.g. ``ge2e_stats + lld_stats(mfcc)``."""
    return " + ".join(
        m.functionals.name + (f"({m.functionals.lld})" if m.functionals.name == "lld_stats" else "")
        for m in recipe.ensemble.members
    )


@dataclasses.dataclass
class FittedEnsemble:
    """An ensemble fitted on some rows (an :class:`~vocalis.training.estimator.Fitted`).

    Attributes:
        estimator: the estimator that fitted it (its functionals memory is reused).
        fit: the fitted members and fusion weights.
        encoder: the label encoder of the training labels.
        classes: class names, the columns of :meth:`predict_proba`.
        info: ``best_error`` (1 - fused inner UAR), ``best_epoch`` (None), fusion
            weights, chosen ``C`` and inner UARs.
    """

    estimator: EnsembleEstimator
    fit: EnsembleFit
    encoder: LabelEncoder
    classes: tuple[str, ...]
    info: dict[str, Any]

    def predict_proba(self, rows: Manifest, index: np.ndarray) -> np.ndarray:
        """``(len(index), K)`` probabilities of ``rows[index]``.

        Under ``speaker_norm`` each speaker among ``rows[index]`` is standardised
        with its own statistics (its rows here, unlabelled).
        """
        index = np.asarray(index, dtype=np.int64)
        paths = [rows.paths[int(i)] for i in index]
        tables = [self.estimator.table(paths, m, 1.0) for m in range(len(self.fit.members))]
        speakers = None
        if self.fit.config.normalization == "speaker_norm":
            speakers = np.asarray(rows.speakers, dtype=object)[index].astype(str)
        return self.fit.predict_proba(tables, speakers)

    def predict_heads(self, rows: Manifest, index: np.ndarray) -> None:
        """``None``: an ensemble has one head (:meth:`predict_proba` is all it gives)."""
        return None

    def to_module(self) -> EnsembleModel:
        """The fitted ensemble as a torch module of waveforms."""
        from vocalis.ensemble.model import EnsembleModel

        return EnsembleModel.from_fit(self.fit)

    def save(self, path: str | os.PathLike) -> None:
        """Write ``model.pt``: the module's tensors, its config, labels, tier 0 and recipe."""
        from vocalis.config import to_dict
        from vocalis.ensemble.model import save_ensemble

        save_ensemble(path, self.to_module(), self.encoder, to_dict(self.estimator.recipe))


@dataclasses.dataclass
class EnsembleEstimator:
    """The functionals ensemble of a recipe, as an :class:`~vocalis.training.estimator.Estimator`.

    Args:
        recipe: members, normalisation protocol, fusion, cache and label map.

    Example:
        >>> from vocalis.ensemble.recipe_file import recipe_from_dict
        >>> est = EnsembleEstimator(recipe_from_dict({"ensemble": {"members": [
        ...     {"functionals": {"name": "lld_stats"}, "speed_factors": []}]}}))
        >>> est.needs_validation, est.setup["features"]
        (False, 'lld_stats(mfcc)')
    """

    recipe: EnsembleRecipe
    needs_validation: bool = dataclasses.field(default=False, init=False)
    val_fraction: float = dataclasses.field(default=0.0, init=False)
    seed: int = dataclasses.field(default=0, init=False)
    _memo: dict[tuple[int, float], dict[str, np.ndarray]] = dataclasses.field(
        default_factory=dict, init=False, repr=False
    )

    def __getstate__(self) -> dict[str, Any]:  # process pools: no functionals in the pickle
        state = dict(self.__dict__)
        state["_memo"] = {}
        return state

    @property
    def manifest(self) -> str:
        """The recipe's ``manifest``."""
        return self.recipe.manifest

    @property
    def setup(self) -> dict[str, Any]:
        """Model, members, normalisation protocol, validation and the recipe."""
        from vocalis.config import to_dict

        protocol = self.recipe.ensemble.normalization
        return {
            "normalization": {
                "protocol": protocol,
                "ensemble.normalization": protocol,
                "description": (
                    "train-speaker statistics only"
                    if protocol == "online"
                    else "per-speaker standardisation of every speaker, test speaker included "
                    "(its unlabelled audio); speed copies are pseudo-speakers"
                ),
            },
            "validation": {
                "protocol": "inner leave-one-speaker-out on the training speakers (C, fusion)",
                "seed": None,
            },
            "model": "ensemble",
            "features": member_names(self.recipe),
            "recipe": self.recipe.source or None,
            "config": to_dict(self.recipe),
        }

    def with_normalization(self, protocol: str | None) -> EnsembleEstimator:
        """Itself: the recipe fixes its protocol.

        Raises:
            ConfigError: ``protocol`` is given and is not the recipe's.
        """
        fixed = self.recipe.ensemble.normalization
        if protocol is not None and protocol != fixed:
            raise ConfigError(
                f"{self.recipe.source or 'ensemble recipe'} fixes ensemble.normalization={fixed};"
                f" got --normalization {protocol}: drop the flag or use the {protocol} recipe"
            )
        return self

    def rows(self, manifest: Manifest) -> tuple[Manifest, Manifest]:
        """The recipe's label map applied (rows it drops are gone); labels, speakers checked."""
        from vocalis.data import apply_label_map

        recipe = self.recipe
        manifest.require(recipe.label_column)
        if recipe.label_map is not None:
            manifest = apply_label_map(
                manifest, recipe.label_map, column=recipe.label_column, unmapped=recipe.unmapped
            )
        if recipe.label_column != "label":
            manifest = manifest.with_column("label", manifest.column(recipe.label_column))
        return manifest, manifest

    def table(self, paths: list[str], member: int, speed: float) -> np.ndarray:
        """``(N, D)`` functionals of ``paths`` for one member at one speed (memoised)."""
        memo = self._memo.setdefault((member, float(speed)), {})
        todo = list(dict.fromkeys(p for p in paths if p not in memo))
        if todo:
            config = self.recipe.ensemble.members[member].functionals
            for p, row in zip(
                todo, functional_table(todo, config, speed, self.recipe.cache_dir), strict=True
            ):
                memo[p] = row
        if not paths:
            return np.zeros((0, 0))
        return np.stack([memo[p] for p in paths])

    def prepare(self, rows: Manifest) -> None:
        """Functionals of every row (and speed copy), so folds only read memory."""
        t0 = time.perf_counter()
        for m, member in enumerate(self.recipe.ensemble.members):
            for speed in (1.0, *member.speed_factors):
                self.table(rows.paths, m, speed)
        log.info("functionals of %d files: %.0f s", len(rows), time.perf_counter() - t0)

    def fit(
        self,
        rows: Manifest,
        train: np.ndarray,
        val: np.ndarray,
        run_dir: str | os.PathLike | None,
    ) -> FittedEnsemble:
        """Fit on ``rows[train]`` (``val`` must be empty: validation is inner LOSO).

        Raises:
            DataError: validation rows given, a single class, or fewer than 2 speakers.
        """
        from vocalis.data import LabelEncoder

        t0 = time.perf_counter()
        train = np.asarray(train, dtype=np.int64)
        if len(np.asarray(val)):
            raise DataError(
                "the functionals ensemble validates by inner leave-one-speaker-out on its "
                f"training rows; got {len(val)} validation rows: put them in the training rows"
            )
        labels = [rows.labels()[int(i)] for i in train]
        encoder = LabelEncoder.from_labels(labels)
        if encoder.num_classes < 2:
            raise DataError(
                f"{rows.source}: the training rows have a single class ({encoder.classes[0]}); "
                "a classifier needs at least two"
            )
        speakers = np.asarray(rows.speakers, dtype=object)[train].astype(str)
        paths = [rows.paths[int(i)] for i in train]
        members = self.recipe.ensemble.members
        tables = [self.table(paths, m, 1.0) for m in range(len(members))]
        augmented = [
            [self.table(paths, m, f) for f in member.speed_factors]
            for m, member in enumerate(members)
        ]
        fit = fit_ensemble(
            tables, augmented, encoder.encode(labels), speakers, self.recipe.ensemble,
            encoder.num_classes,
        )  # fmt: skip
        info = {"best_error": round(1.0 - float(fit.fused_inner_uar), 6), "best_epoch": None}
        info.update(fit.diagnostics)
        fitted = FittedEnsemble(self, fit, encoder, encoder.classes, info)
        if run_dir is not None:
            _write_run(as_path(run_dir), fitted, rows, train, time.perf_counter() - t0)
        return fitted


def _write_run(
    run_dir: Path, fitted: FittedEnsemble, rows: Manifest, train: np.ndarray, seconds: float
) -> None:
    """The run folder of a fit: config, environment, log, label map, metrics."""
    import yaml

    from vocalis.config import to_dict
    from vocalis.training.runfolder import RunFolder, environment

    recipe = fitted.estimator.recipe
    run = RunFolder(run_dir)
    run.open(environment("cpu", 1), resumed=False)
    run.write_text("config.yaml", yaml.safe_dump(to_dict(recipe), sort_keys=False))
    fitted.encoder.save(run.file("label_map.json"))
    fit = fitted.fit
    for m, member in enumerate(recipe.ensemble.members):
        run.log(
            f"member {m} {member.functionals.name}: C {fit.chosen_c[m]:g}, inner LOSO UAR "
            f"{fit.inner_uar[m]:.4f}",
            echo=False,
        )
    run.log(
        f"ensemble on {len(train)} rows of {rows.source}: fusion weights "
        f"{fitted.info['weights']}, fused inner UAR {fit.fused_inner_uar:.4f} "
        f"({seconds:.0f} s)",
        echo=False,
    )
    run.write_metrics(
        kind="train",
        model="ensemble",
        n_rows={"train": len(train)},
        classes=fitted.classes,
        seconds=round(seconds, 2),
        details={
            "ensemble": fit.diagnostics,
            "validation": "inner leave-one-speaker-out on the training speakers",
        },
    )


def train_ensemble(
    recipe: EnsembleRecipe,
    out_dir: str | os.PathLike,
    *,
    manifest: Any = None,
    overwrite: bool = False,
) -> FittedEnsemble:
    """Fit the ensemble of ``recipe`` on every row of a manifest and save the run folder.

    ``C`` and the fusion weights are chosen by inner leave-one-speaker-out on all
    rows, as inside every cross-validation fold. The run folder gets
    ``config.yaml``, ``env.json``, ``log.txt``, ``label_map.json``,
    ``metrics.json`` and ``model.pt`` (what ``vocalis predict``, ``eval`` and
    ``serve`` load).

    Args:
        recipe: the ensemble recipe.
        out_dir: the run folder.
        manifest: a :class:`~vocalis.data.Manifest` or CSV path (default: the recipe's).
        overwrite: refit when ``out_dir`` already holds a trained ensemble.

    Returns:
        The :class:`FittedEnsemble`.

    Raises:
        ConfigError: no manifest, or ``out_dir`` holds a model and not ``overwrite``.
        DataError: a single class, fewer than 2 speakers, or no speaker column.
    """
    from vocalis.checkpoint import MODEL_FILE
    from vocalis.data import Manifest, read_manifest

    out = as_path(out_dir)
    if (out / MODEL_FILE).is_file() and not overwrite:
        raise ConfigError(
            f"{out} already holds a trained model ({MODEL_FILE}); pass --overwrite to fit the "
            "ensemble again, or choose another --out"
        )
    manifest = recipe.manifest if manifest is None else manifest
    if isinstance(manifest, str) and not manifest:
        raise ConfigError(
            f"{recipe.source or 'ensemble recipe'}: manifest is empty; set it in the recipe or "
            "pass --manifest m.csv"
        )
    if not isinstance(manifest, Manifest):
        manifest = read_manifest(manifest)
    estimator = EnsembleEstimator(recipe)
    rows, _ = estimator.rows(manifest)
    everything = np.arange(len(rows), dtype=np.int64)
    fitted = estimator.fit(rows, everything, everything[:0], out)
    fitted.save(out / MODEL_FILE)
    return fitted
