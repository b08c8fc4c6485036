"""Leave-one-speaker-out of the functionals ensemble on a whole manifest.

Functionals (originals and speed copies) are computed once for every row, then
each outer fold calls :func:`~vocalis.ensemble.recipe.run_fold_arrays`; only the
training speakers' rows and copies are ever fit on. Returns pooled predictions.

Example:
    >>> LosoResult(np.eye(2), ("a", "b"), np.array([0, 1]), []).pooled_uar
    1.0
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import numpy as np

from vocalis.ensemble.linear import pooled_uar
from vocalis.ensemble.recipe import EnsembleConfig, functional_table, run_fold_arrays

logger = logging.getLogger(__name__)


@dataclass
class LosoResult:
    """Pooled out-of-fold probabilities of a LOSO run.

    Attributes:
        proba: ``(N, K)`` test probabilities of every row (from its own fold).
        classes: class names (columns of ``proba``).
        y: ``(N,)`` integer labels.
        folds: per fold: ``speaker``, ``uar``, ``weights``, ``chosen_c``,
            ``inner_uar``, ``fused_inner_uar``, ``seconds``.
        extract_seconds: time spent computing (or reading cached) functionals.
    """

    proba: np.ndarray
    classes: tuple[str, ...]
    y: np.ndarray
    folds: list[dict]
    extract_seconds: float = 0.0

    @property
    def pooled_uar(self) -> float:
        """Macro recall over the concatenated predictions of all folds."""
        return pooled_uar(self.y, self.proba.argmax(1))

    @property
    def accuracy(self) -> float:
        """Fraction of rows predicted right."""
        return float(np.mean(self.proba.argmax(1) == self.y))


def member_tables(
    paths: list[str], config: EnsembleConfig, cache_dir: str | os.PathLike | None = None
) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """Functionals of every file for every member: originals and one table per speed factor."""
    tables, augmented = [], []
    for member in config.members:
        tables.append(functional_table(paths, member.functionals, 1.0, cache_dir))
        augmented.append(
            [
                functional_table(paths, member.functionals, f, cache_dir)
                for f in member.speed_factors
            ]
        )
    return tables, augmented


def loso_ensemble(
    manifest, config: EnsembleConfig | None = None, cache_dir: str | os.PathLike | None = None
) -> LosoResult:
    """Outer leave-one-speaker-out of the recipe on ``manifest``.

    Args:
        manifest: a :class:`vocalis.data.Manifest` with ``path``, ``label``, ``speaker``.
        config: the recipe (default :class:`~vocalis.ensemble.recipe.EnsembleConfig`).
        cache_dir: feature-cache root.

    Returns:
        A :class:`LosoResult`.
    """
    from vocalis.data.splits import LeaveOneSpeakerOut

    config = config or EnsembleConfig()
    labels = manifest.labels()
    classes = tuple(sorted(set(labels)))
    y = np.array([classes.index(v) for v in labels])
    speakers = np.array(manifest.speakers)
    t0 = time.perf_counter()
    tables, augmented = member_tables(manifest.paths, config, cache_dir)
    extract_seconds = time.perf_counter() - t0
    logger.info("functionals: %.0f s", extract_seconds)
    proba = np.zeros((len(y), len(classes)))
    folds = []
    splitter = LeaveOneSpeakerOut()
    for (train, test), spk in zip(
        splitter.split(y, groups=speakers), splitter.speakers(y, speakers), strict=True
    ):
        t1 = time.perf_counter()
        proba[test], info = run_fold_arrays(
            tables, augmented, y, speakers, train, test, config, len(classes)
        )
        info.update(
            speaker=str(spk),
            uar=pooled_uar(y[test], proba[test].argmax(1)),
            seconds=round(time.perf_counter() - t1, 1),
        )
        logger.info("fold %s: UAR %.3f (%.0f s)", spk, info["uar"], info["seconds"])
        folds.append(info)
    return LosoResult(proba, classes, y, folds, round(extract_seconds, 1))
