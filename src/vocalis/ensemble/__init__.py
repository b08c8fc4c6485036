"""Utterance-level classifiers on functionals, and late fusion of their probabilities.

The classic paralinguistics back end, made honest for speaker-independent
evaluation: every choice (SVM complexity, fusion weights) is made by an inner
leave-one-speaker-out on the training speakers.

* :mod:`~vocalis.ensemble.linear`: :class:`FunctionalClassifier` (linear SVM or
  logistic regression, ``C`` by inner LOSO, out-of-fold probabilities kept);
* :mod:`~vocalis.ensemble.fusion`: :func:`fuse`, :func:`choose_weights`;
* :mod:`~vocalis.ensemble.recipe`: :class:`EnsembleConfig` (members = functionals
  + classifier, speed perturbation, normalisation protocol) and
  :func:`fit_ensemble` on functionals arrays;
* :mod:`~vocalis.ensemble.model`: :class:`EnsembleModel`, a fitted ensemble as a
  torch module of waveforms; importing this package registers its builder as the
  ``ensemble`` kind of :data:`vocalis.inference.MODEL_KINDS`.

The ensemble on manifest rows, as an estimator for cross-validation and
``vocalis train``, is :class:`vocalis.training.ensemble_estimator.EnsembleEstimator`
(this package knows no training loop or run folder).

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
from vocalis.ensemble.recipe import (
    EnsembleConfig,
    EnsembleFit,
    MemberConfig,
    fit_ensemble,
    functional_table,
    speed_perturb,
)
from vocalis.inference.kinds import MODEL_KINDS
from vocalis.lazy import lazy_exports

__all__ = [
    "EnsembleConfig",
    "EnsembleFit",
    "EnsembleModel",
    "FunctionalClassifier",
    "LinearConfig",
    "MemberConfig",
    "choose_weights",
    "fit_ensemble",
    "functional_table",
    "fuse",
    "pooled_uar",
    "simplex_grid",
    "speaker_standardise",
    "speed_perturb",
]


def _build_ensemble(ckpt):  # the ``ensemble`` kind of vocalis.inference.MODEL_KINDS
    from vocalis.ensemble.model import build_ensemble

    return build_ensemble(ckpt)


if "ensemble" not in MODEL_KINDS:
    MODEL_KINDS.register("ensemble", _build_ensemble)

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "EnsembleModel": "vocalis.ensemble.model",
    },
)
