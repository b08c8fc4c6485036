"""Utterance-level classifiers on functionals, and late fusion of their probabilities.

The classic paralinguistics back end, made honest for speaker-independent
evaluation: every choice (SVM complexity, fusion weights) is made by an inner
leave-one-speaker-out on the training speakers.

* :mod:`~vocalis.ensemble.linear`: :class:`FunctionalClassifier` (linear SVM or
  logistic regression, ``C`` by inner LOSO, out-of-fold probabilities kept);
* :mod:`~vocalis.ensemble.fusion`: :func:`fuse`, :func:`choose_weights`;
* :mod:`~vocalis.ensemble.recipe`: :class:`EnsembleConfig` (members = functionals
  + classifier, speed perturbation, normalisation protocol) and :func:`run_fold`,
  one outer fold on a manifest;
* :mod:`~vocalis.ensemble.loso`: :func:`loso_ensemble`, the whole LOSO.

Example:
    >>> import numpy as np
    >>> fuse([np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])], (0.75, 0.25)).tolist()
    [[0.75, 0.25]]
"""

from vocalis.ensemble.fusion import choose_weights, fuse, simplex_grid
from vocalis.ensemble.linear import (
    FunctionalClassifier,
    LinearConfig,
    pooled_uar,
    speaker_standardise,
)
from vocalis.ensemble.loso import LosoResult, loso_ensemble
from vocalis.ensemble.recipe import (
    EnsembleConfig,
    FoldResult,
    MemberConfig,
    functional_table,
    run_fold,
    run_fold_arrays,
    speed_perturb,
)

__all__ = [
    "EnsembleConfig",
    "FoldResult",
    "FunctionalClassifier",
    "LinearConfig",
    "LosoResult",
    "MemberConfig",
    "choose_weights",
    "functional_table",
    "fuse",
    "loso_ensemble",
    "pooled_uar",
    "run_fold",
    "run_fold_arrays",
    "simplex_grid",
    "speaker_standardise",
    "speed_perturb",
]
