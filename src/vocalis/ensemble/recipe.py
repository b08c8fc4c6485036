"""The functionals ensemble recipe: features, speed perturbation, linear members, fusion.

One outer fold of a speaker-independent evaluation, everything chosen on the
training speakers only:

1. functionals of every utterance (:mod:`vocalis.features.functionals`), plus,
   per member, those of speed-perturbed copies of the *training* utterances
   (``speed_factors``; each copy is a pseudo-speaker for normalisation);
2. ``speaker_norm``: every (pseudo-)speaker, the test speaker included (its
   unlabelled audio), is z-normalised with its own statistics; ``online``: only
   the train-set z-normalisation inside each classifier;
3. each member (:class:`~vocalis.ensemble.linear.FunctionalClassifier`) picks its
   ``C`` by inner leave-one-speaker-out over the training speakers;
4. members are fused with weights chosen on their inner out-of-fold
   probabilities (:func:`~vocalis.ensemble.fusion.choose_weights`).

:func:`fit_ensemble` fits on the training rows and returns an :class:`EnsembleFit`
whose ``predict_proba`` scores new rows;
:class:`~vocalis.training.ensemble_estimator.EnsembleEstimator` does the same on
manifest rows (the estimator of cross-validation and ``vocalis train``).

Example:
    >>> cfg = EnsembleConfig(members=(MemberConfig(FunctionalsConfig("lld_stats")),))
    >>> cfg.normalization, cfg.members[0].speed_factors
    ('online', (0.9, 1.1))
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from vocalis.ensemble.fusion import choose_weights, fuse
from vocalis.ensemble.linear import FunctionalClassifier, LinearConfig, speaker_standardise
from vocalis.errors import ConfigError, DataError
from vocalis.features.functionals import (
    FunctionalsConfig,
    compute_functionals,
    functionals_key,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemberConfig:
    """One ensemble member: which functionals, which classifier, which augmentation.

    Args:
        functionals: the utterance functionals.
        linear: the classifier.
        speed_factors: speed-perturbation factors of extra training copies
            (``()`` for none). A factor ``f`` resamples to ``sr / f`` and plays
            back at ``sr`` (tempo and pitch scale by ``f``, as Kaldi's 3-way
            speed perturbation).
    """

    functionals: FunctionalsConfig = field(default_factory=FunctionalsConfig)
    linear: LinearConfig = field(default_factory=LinearConfig)
    speed_factors: tuple[float, ...] = (0.9, 1.1)

    def __post_init__(self) -> None:
        if any(not 0.5 <= f <= 2.0 or f == 1.0 for f in self.speed_factors):
            raise ConfigError(
                f"ensemble.members.speed_factors: got {self.speed_factors}, expected factors "
                "in [0.5, 2] other than 1 (e.g. [0.9, 1.1]), or [] for none"
            )


@dataclass(frozen=True)
class EnsembleConfig:
    """The functionals-ensemble recipe.

    Args:
        members: the members (default: ComParE_2016 + linear SVM).
        normalization: ``online`` (train-only statistics) or ``speaker_norm``
            (each speaker, test speaker included, with its own statistics).
        fusion_resolution: fusion weights are searched on a grid of step ``1 / r``
            on the members' inner out-of-fold probabilities; ``0`` gives the plain
            average (no weights fit: the more robust choice with few speakers).
    """

    members: tuple[MemberConfig, ...] = (MemberConfig(),)
    normalization: Literal["online", "speaker_norm"] = "online"
    fusion_resolution: int = 10

    def __post_init__(self) -> None:
        if not self.members:
            raise ConfigError("ensemble.members: got none, expected at least one member")
        if self.normalization not in ("online", "speaker_norm"):
            raise ConfigError(
                f"ensemble.normalization: got {self.normalization!r}, expected 'online' "
                "or 'speaker_norm'"
            )
        if self.fusion_resolution < 0:
            raise ConfigError(
                f"ensemble.fusion_resolution: got {self.fusion_resolution}, expected >= 0 "
                "(0 = plain average)"
            )


def speed_perturb(wav: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """Speed perturbation: resample to ``sample_rate / factor``, read at ``sample_rate``.

    Shape:
        (T,) -> (round(T / factor),).

    Example:
        >>> speed_perturb(np.zeros(16000, np.float32), 16000, 1.25).shape
        (12800,)
    """
    if factor == 1.0:
        return wav
    import soxr

    return soxr.resample(wav, sample_rate, round(sample_rate / factor), quality="HQ")


def functional_table(
    paths: Sequence[str],
    config: FunctionalsConfig,
    speed: float = 1.0,
    cache_dir: str | os.PathLike | None = None,
) -> np.ndarray:
    """Functionals of every file, optionally speed-perturbed, cached on content + config.

    Audio is decoded without level normalisation (loudness functionals keep
    their meaning) and resampled to ``config.sample_rate``.

    Args:
        paths: audio files.
        config: which functionals.
        speed: speed-perturbation factor (1 for none).
        cache_dir: a :class:`~vocalis.features.cache.FeatureCache` root, ``auto`` (the
            user cache, :mod:`vocalis.cachedir`), or None.

    Returns:
        ``(N, D)`` float64.
    """
    import torch

    from vocalis.audio.io import load_audio
    from vocalis.cachedir import resolve_cache_dir

    cache = None
    root = resolve_cache_dir(cache_dir, "functionals")
    if root is not None:
        from vocalis.features.cache import FeatureCache

        cache = FeatureCache(root)
    key = {"functionals": functionals_key(config), "speed": speed}

    def one(path: str) -> torch.Tensor:
        wav = load_audio(path, config.sample_rate, normalize="none").numpy()
        wav = speed_perturb(wav, config.sample_rate, speed)
        return compute_functionals(
            torch.from_numpy(np.ascontiguousarray(wav)), config.sample_rate, config
        )

    from tqdm.auto import tqdm

    rows = []
    what = f"{config.name} functionals" + (f", speed {speed:g}" if speed != 1.0 else "")
    # a bar on a terminal only (disable=None), for the long first extraction
    for p in tqdm(paths, desc=what, unit="file", disable=None, leave=False, mininterval=1.0):
        vec = one(p) if cache is None else cache.get_or_compute(p, key, lambda p=p: one(p))
        rows.append(vec.double().numpy())
    return np.stack(rows)


@dataclass
class EnsembleFit:
    """The fitted members and fusion weights of :func:`fit_ensemble`.

    Attributes:
        config: the recipe.
        members: one fitted :class:`~vocalis.ensemble.linear.FunctionalClassifier`
            per member.
        weights: fusion weights, one per member (sum 1).
        n_classes: ``K``, the columns of :meth:`predict_proba`.
        chosen_c: the ``C`` each member chose.
        inner_uar: each member's inner LOSO pooled UAR at its ``C``.
        fused_inner_uar: pooled UAR of the fused inner out-of-fold probabilities
            (optimistic: the weights were fit on them).
    """

    config: EnsembleConfig
    members: list[FunctionalClassifier]
    weights: tuple[float, ...]
    n_classes: int
    chosen_c: list[float]
    inner_uar: list[float]
    fused_inner_uar: float

    def predict_proba(
        self, tables: Sequence[np.ndarray], speakers: np.ndarray | None = None
    ) -> np.ndarray:
        """Fused class probabilities of new rows.

        Args:
            tables: per member, ``(N, D_m)`` functionals of the rows.
            speakers: ``(N,)`` speaker of each row; needed under ``speaker_norm``,
                where each speaker is standardised with its own statistics (its
                rows here, unlabelled).

        Returns:
            ``(N, K)`` probabilities.

        Raises:
            DataError: ``speaker_norm`` without speakers.
        """
        if self.config.normalization == "speaker_norm" and speakers is None:
            raise DataError(
                "ensemble.normalization=speaker_norm standardises each speaker with its own "
                "statistics: give the rows' speakers (a manifest with a speaker column)"
            )
        member_proba = []
        for m, clf in enumerate(self.members):
            x = np.asarray(tables[m], dtype=np.float64)
            if self.config.normalization == "speaker_norm":
                x = speaker_standardise(x, np.asarray(speakers).astype(str))
            member_proba.append(_pad(clf.predict_proba(x), self.n_classes))
        return fuse(member_proba, self.weights)

    @property
    def diagnostics(self) -> dict:
        """Fusion weights, chosen ``C``, inner UARs, rounded for records."""
        return {
            "weights": [round(float(w), 4) for w in self.weights],
            "chosen_c": [float(c) for c in self.chosen_c],
            "inner_uar": [round(float(u), 4) for u in self.inner_uar],
            "fused_inner_uar": round(float(self.fused_inner_uar), 4),
        }


def fit_ensemble(
    tables: Sequence[np.ndarray],
    augmented: Sequence[Sequence[np.ndarray]],
    y: np.ndarray,
    speakers: np.ndarray,
    config: EnsembleConfig,
    n_classes: int | None = None,
) -> EnsembleFit:
    """Fit every member (``C`` by inner LOSO) and the fusion weights on training rows.

    Args:
        tables: per member, ``(N, D_m)`` functionals of the N training rows.
        augmented: per member, one ``(N, D_m)`` table per speed factor of that member
            (the speed-perturbed copies of the same rows).
        y: ``(N,)`` integer labels ``0..K-1``.
        speakers: ``(N,)`` speaker ids (the inner leave-one-speaker-out groups).
        config: the recipe.
        n_classes: ``K`` (default ``max(y) + 1``).

    Returns:
        An :class:`EnsembleFit`.

    Raises:
        DataError: fewer than 2 speakers for the inner leave-one-speaker-out.
    """
    from vocalis.ensemble.linear import pooled_uar

    y = np.asarray(y)
    speakers = np.asarray(speakers).astype(str)
    k = int(np.max(y)) + 1 if n_classes is None else int(n_classes)
    fitted, member_inner, chosen, inner_uar = [], [], [], []
    for m, member in enumerate(config.members):
        copies = len(member.speed_factors)
        x = np.vstack([tables[m]] + [augmented[m][j] for j in range(copies)])
        spk = np.tile(speakers, 1 + copies)
        flag = np.repeat(np.arange(1 + copies), len(y)) > 0
        ytr = np.tile(y, 1 + copies)
        if config.normalization == "speaker_norm":
            copy_id = np.repeat(np.arange(1 + copies), len(y))
            pseudo = np.array([f"{s}/{c}" for s, c in zip(spk, copy_id, strict=True)])
            x = speaker_standardise(x, pseudo)
        clf = FunctionalClassifier(member.linear).fit(x, ytr, spk, flag, n_classes=k)
        fitted.append(clf)
        member_inner.append(_pad(clf.inner_proba_[~flag], k))
        chosen.append(float(clf.c_))
        inner_uar.append(float(clf.inner_uar_[clf.c_]))
    if len(fitted) == 1 or config.fusion_resolution == 0:
        weights: tuple[float, ...] = tuple([1.0 / len(fitted)] * len(fitted))
    else:
        weights = choose_weights(member_inner, y, config.fusion_resolution)
    fused_inner = fuse(member_inner, weights)
    return EnsembleFit(
        config=config,
        members=fitted,
        weights=tuple(float(w) for w in weights),
        n_classes=k,
        chosen_c=chosen,
        inner_uar=inner_uar,
        fused_inner_uar=pooled_uar(y, fused_inner.argmax(1)),
    )


def _pad(p: np.ndarray, k: int) -> np.ndarray:
    if p.shape[1] == k:
        return p
    out = np.zeros((len(p), k))
    out[:, : p.shape[1]] = p
    return out
