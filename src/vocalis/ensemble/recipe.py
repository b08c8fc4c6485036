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

:func:`run_fold` returns the test probabilities; a LOSO runner concatenates them.

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
        cache_dir: a :class:`~vocalis.features.cache.FeatureCache` root, or None.

    Returns:
        ``(N, D)`` float64.
    """
    import torch

    from vocalis.audio.io import load_audio

    cache = None
    if cache_dir is not None:
        from vocalis.features.cache import FeatureCache

        cache = FeatureCache(cache_dir)
    key = {"functionals": functionals_key(config), "speed": speed}

    def one(path: str) -> torch.Tensor:
        wav = load_audio(path, config.sample_rate, normalize="none").numpy()
        wav = speed_perturb(wav, config.sample_rate, speed)
        return compute_functionals(
            torch.from_numpy(np.ascontiguousarray(wav)), config.sample_rate, config
        )

    rows = []
    for p in paths:
        vec = one(p) if cache is None else cache.get_or_compute(p, key, lambda p=p: one(p))
        rows.append(vec.double().numpy())
    return np.stack(rows)


@dataclass
class FoldResult:
    """What :func:`run_fold` returns.

    Attributes:
        proba: ``(M, K)`` fused test probabilities, columns in ``classes`` order.
        classes: the class names.
        weights: fusion weights, one per member.
        chosen_c: the ``C`` each member chose.
        inner_uar: each member's inner LOSO pooled UAR at its ``C``.
        fused_inner_uar: pooled UAR of the fused inner out-of-fold probabilities
            (optimistic: the weights were fit on them).
    """

    proba: np.ndarray
    classes: tuple[str, ...]
    weights: tuple[float, ...]
    chosen_c: list[float]
    inner_uar: list[float]
    fused_inner_uar: float


def run_fold_arrays(
    tables: Sequence[np.ndarray],
    augmented: Sequence[Sequence[np.ndarray]],
    y: np.ndarray,
    speakers: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    config: EnsembleConfig,
    n_classes: int | None = None,
) -> tuple[np.ndarray, dict]:
    """:func:`run_fold` on precomputed functionals (what the LOSO loop calls).

    Args:
        tables: per member, ``(N, D_m)`` functionals of all N utterances.
        augmented: per member, one ``(N, D_m)`` table per speed factor of that member
            (only the training rows are read).
        y: ``(N,)`` integer labels (only ``y[train]`` is read).
        speakers: ``(N,)`` speaker ids.
        train: indices of training rows; test: indices of test rows.
        config: the recipe.
        n_classes: ``K`` (default ``max(y[train]) + 1``).

    Returns:
        ``(len(test), K)`` probabilities and a dict of fold diagnostics.
    """
    from vocalis.ensemble.linear import pooled_uar

    train, test = np.asarray(train), np.asarray(test)
    speakers = np.asarray(speakers).astype(str)
    if set(speakers[train]) & set(speakers[test]):
        raise DataError(
            "ensemble.run_fold: a speaker is in both train and test; use a speaker-independent "
            "split (LeaveOneSpeakerOut)"
        )
    k = int(np.max(y[train])) + 1 if n_classes is None else int(n_classes)
    member_test, member_inner, chosen, inner_uar = [], [], [], []
    for m, member in enumerate(config.members):
        copies = len(member.speed_factors)
        parts = [tables[m][train]] + [augmented[m][j][train] for j in range(copies)]
        x = np.vstack(parts)
        spk = np.tile(speakers[train], 1 + copies)
        flag = np.repeat(np.arange(1 + copies), len(train)) > 0
        ytr = np.tile(y[train], 1 + copies)
        xte = tables[m][test]
        if config.normalization == "speaker_norm":
            copy_id = np.repeat(np.arange(1 + copies), len(train))
            pseudo = np.array([f"{s}/{c}" for s, c in zip(spk, copy_id, strict=True)])
            x = speaker_standardise(x, pseudo)
            xte = speaker_standardise(xte, speakers[test])
        clf = FunctionalClassifier(member.linear).fit(x, ytr, spk, flag, n_classes=k)
        member_test.append(_pad(clf.predict_proba(xte), k))
        member_inner.append(_pad(clf.inner_proba_[~flag], k))
        chosen.append(float(clf.c_))
        inner_uar.append(float(clf.inner_uar_[clf.c_]))
    if len(member_test) == 1 or config.fusion_resolution == 0:
        weights: tuple[float, ...] = tuple([1.0 / len(member_test)] * len(member_test))
    else:
        weights = choose_weights(member_inner, y[train], config.fusion_resolution)
    fused_inner = fuse(member_inner, weights)
    info = {
        "weights": weights,
        "chosen_c": chosen,
        "inner_uar": inner_uar,
        "fused_inner_uar": pooled_uar(y[train], fused_inner.argmax(1)),
    }
    return fuse(member_test, weights), info


def _pad(p: np.ndarray, k: int) -> np.ndarray:
    if p.shape[1] == k:
        return p
    out = np.zeros((len(p), k))
    out[:, : p.shape[1]] = p
    return out


def run_fold(
    manifest,
    train: Sequence[int],
    test: Sequence[int],
    config: EnsembleConfig | None = None,
    cache_dir: str | os.PathLike | None = None,
    classes: Sequence[str] | None = None,
) -> FoldResult:
    """One outer fold of the recipe on a manifest: train on ``train``, predict ``test``.

    Args:
        manifest: a :class:`vocalis.data.Manifest` with ``path``, ``label`` and
            ``speaker`` columns.
        train: row indices to train on; test: row indices to predict (their labels
            are never read; under ``speaker_norm`` their audio is).
        config: the recipe (default :class:`EnsembleConfig`).
        cache_dir: feature-cache root (recommended: ComParE takes ~0.2 s per file).
        classes: class order of the output (default: sorted labels of the manifest).

    Returns:
        A :class:`FoldResult`.

    Raises:
        DataError: a speaker in both train and test, or a missing column.
    """
    config = config or EnsembleConfig()
    labels = manifest.labels()
    classes = tuple(classes) if classes is not None else tuple(sorted(set(labels)))
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted({labels[i] for i in train} - set(index))
    if unknown:
        raise DataError(
            f"ensemble.run_fold: training labels {unknown} are not in classes {list(classes)}"
        )
    y = np.array([index.get(v, -1) for v in labels])
    speakers = np.array(manifest.speakers)
    paths = manifest.paths
    rows = np.concatenate([np.asarray(train), np.asarray(test)])
    sub_paths = [paths[i] for i in rows]
    n_tr = len(train)
    tables, augmented = [], []
    for member in config.members:
        t = functional_table(sub_paths, member.functionals, 1.0, cache_dir)
        full = np.zeros((len(paths), t.shape[1]))
        full[rows] = t
        tables.append(full)
        aug = []
        for f in member.speed_factors:
            a = np.zeros_like(full)
            a[np.asarray(train)] = functional_table(
                sub_paths[:n_tr], member.functionals, f, cache_dir
            )
            aug.append(a)
        augmented.append(aug)
    y_fit = np.where(y < 0, 0, y)
    k = len(classes)
    proba, info = run_fold_arrays(tables, augmented, y_fit, speakers, train, test, config, k)
    return FoldResult(
        proba=_pad(proba, k)[:, :k],
        classes=classes,
        weights=tuple(info["weights"]),
        chosen_c=info["chosen_c"],
        inner_uar=info["inner_uar"],
        fused_inner_uar=info["fused_inner_uar"],
    )
