"""Speaker-independent (and, with a warning, random) train/test splits.

Every splitter follows scikit-learn's protocol: ``split(X, y=None, groups=None)``
yields ``(train_indices, test_indices)`` pairs of int64 arrays and
``get_n_splits(X, y, groups)`` counts them, so they plug into
``sklearn.model_selection.cross_val_score`` and friends. ``X`` may be a
:class:`~vocalis.data.manifest.Manifest`: then ``groups`` defaults to its
``speaker`` column and ``y`` to its ``label`` column, and a manifest without
speakers makes the speaker-based splitters refuse with a clear error.
:meth:`folds` yields the same splits as :class:`Fold` records that also name
the held-out speakers.

All randomness comes from an explicit ``seed`` (an int or a
:class:`numpy.random.Generator`), never from global state.

Example:
    >>> spk = ["a", "a", "b", "b", "c", "c"]
    >>> [f.name for f in LeaveOneSpeakerOut().folds(range(6), groups=spk)]
    ['a', 'b', 'c']
    >>> tr, te = next(LeaveOneSpeakerOut().split(range(6), groups=spk))
    >>> tr.tolist(), te.tolist()
    ([2, 3, 4, 5], [0, 1])
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from vocalis.data.manifest import Manifest
from vocalis.errors import ConfigError, DataError
from vocalis.registry import Registry

Seed = int | np.random.Generator


class SpeakerDependentWarning(UserWarning):
    """A random split puts the same speakers in train and test: results are optimistic."""


@dataclass(frozen=True)
class Fold:
    """One train/test split.

    Attributes:
        index: fold number, from 0.
        name: a readable name (the held-out speaker for LOSO, ``fold3`` otherwise).
        train: int64 indices of the training rows.
        test: int64 indices of the test (or validation) rows.
        test_speakers: speakers whose rows are in ``test`` (empty when unknown).
    """

    index: int
    name: str
    train: np.ndarray
    test: np.ndarray
    test_speakers: tuple[str, ...] = ()


def _rng(seed: Seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng(int(seed))
    raise DataError(f"seed={seed!r}; expected an int or a numpy.random.Generator")


def _int_seed(seed: Seed) -> int:
    """An int for scikit-learn's ``random_state`` (drawn from a Generator if needed)."""
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**31 - 1))
    _rng(seed)  # validates
    return int(seed)


def _n(X: Any) -> int:
    if isinstance(X, Manifest):
        return len(X)
    if isinstance(X, int):
        return X
    try:
        return len(X)
    except TypeError:
        return int(np.asarray(X).shape[0])


def _groups(X: Any, groups: Sequence[Any] | None, who: str) -> np.ndarray:
    if groups is None:
        if isinstance(X, Manifest):
            groups = X.speakers
        else:
            raise DataError(
                f"{who} needs speaker ids: pass groups=speakers or a Manifest with a "
                "'speaker' column"
            )
    g = np.asarray([str(x) for x in groups])
    if len(g) != _n(X):
        raise DataError(f"{who}: groups has {len(g)} entries for {_n(X)} samples")
    return g


def _labels(X: Any, y: Sequence[Any] | None, who: str) -> np.ndarray:
    if y is None:
        if isinstance(X, Manifest):
            y = X.labels()
        else:
            raise DataError(f"{who} needs labels: pass y=labels or a Manifest with 'label'")
    arr = np.asarray([str(v) for v in y])
    if len(arr) != _n(X):
        raise DataError(f"{who}: y has {len(arr)} entries for {_n(X)} samples")
    return arr


class _Splitter:
    """Shared :meth:`folds` on top of :meth:`split`."""

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple]:
        raise NotImplementedError

    def folds(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[Fold]:
        """The splits as :class:`Fold` records (``name``: held-out speaker or ``foldK``)."""
        g = None
        if groups is not None or (isinstance(X, Manifest) and "speaker" in X.columns):
            g = _groups(X, groups, type(self).__name__)
        for k, (train, test) in enumerate(self.split(X, y, groups)):
            spk = tuple(sorted(set(g[test].tolist()))) if g is not None else ()
            name = spk[0] if len(spk) == 1 and isinstance(self, LeaveOneSpeakerOut) else f"fold{k}"
            yield Fold(k, name, train, test, spk)


class LeaveOneSpeakerOut(_Splitter):
    """One fold per speaker, holding out all of that speaker's rows.

    Folds come in sorted speaker order and equal those of
    :class:`sklearn.model_selection.LeaveOneGroupOut`.

    Raises:
        DataError: no speakers given, or fewer than 2 speakers.
    """

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Number of speakers."""
        return len(np.unique(_groups(X, groups, "LeaveOneSpeakerOut")))

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple]:
        """Yield ``(train, test)`` index arrays, one pair per speaker."""
        g = _groups(X, groups, "LeaveOneSpeakerOut")
        speakers = np.unique(g)
        if len(speakers) < 2:
            raise DataError(
                f"LeaveOneSpeakerOut needs at least 2 speakers, got {len(speakers)} "
                f"({', '.join(speakers)})"
            )
        idx = np.arange(len(g), dtype=np.int64)
        for s in speakers:
            mask = g == s
            yield idx[~mask], idx[mask]

    def speakers(self, X: Any, groups: Any = None) -> list[str]:
        """Held-out speaker of each fold, in fold order."""
        return np.unique(_groups(X, groups, "LeaveOneSpeakerOut")).tolist()


class GroupKFold(_Splitter):
    """K folds of whole speakers, balanced in number of rows.

    Without ``seed`` it equals :class:`sklearn.model_selection.GroupKFold`
    (largest speakers first, each to the currently smallest fold). With a seed
    the speakers are shuffled before the assignment (ties then break at random).

    Args:
        n_splits: K, at most the number of speakers.
        seed: optional int or Generator for shuffling.
    """

    def __init__(self, n_splits: int = 5, seed: Seed | None = None) -> None:
        if int(n_splits) < 2:
            raise DataError(f"GroupKFold: n_splits={n_splits}; expected at least 2")
        self.n_splits = int(n_splits)
        self.seed = seed

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """The number of folds, ``n_splits``."""
        return self.n_splits

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple]:
        """Yield ``(train, test)`` index arrays of whole groups, ``n_splits`` times."""
        g = _groups(X, groups, "GroupKFold")
        speakers, inverse, sizes = np.unique(g, return_inverse=True, return_counts=True)
        if self.n_splits > len(speakers):
            raise DataError(
                f"GroupKFold: n_splits={self.n_splits} but only {len(speakers)} speakers; "
                "lower n_splits or use LeaveOneSpeakerOut"
            )
        order = np.argsort(sizes, kind="mergesort")[::-1]
        if self.seed is not None:
            perm = _rng(self.seed).permutation(len(speakers))
            order = perm[np.argsort(-sizes[perm], kind="stable")]
        fold_of = np.zeros(len(speakers), dtype=np.int64)
        load = np.zeros(self.n_splits, dtype=np.int64)
        for s in order:
            f = int(np.argmin(load))
            fold_of[s] = f
            load[f] += sizes[s]
        idx = np.arange(len(g), dtype=np.int64)
        for f in range(self.n_splits):
            mask = fold_of[inverse] == f
            yield idx[~mask], idx[mask]


class StratifiedGroupKFold(_Splitter):
    """K folds of whole speakers that also try to keep class proportions.

    Wraps :class:`sklearn.model_selection.StratifiedGroupKFold` (shuffled, with
    ``random_state`` from ``seed``).
    """

    def __init__(self, n_splits: int = 5, seed: Seed = 0) -> None:
        if int(n_splits) < 2:
            raise DataError(f"StratifiedGroupKFold: n_splits={n_splits}; expected at least 2")
        self.n_splits = int(n_splits)
        self.seed = seed

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """The number of folds, ``n_splits``."""
        return self.n_splits

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple]:
        """Yield ``(train, test)`` index arrays of whole groups with balanced labels."""
        from sklearn.model_selection import StratifiedGroupKFold as _SGKF

        g = _groups(X, groups, "StratifiedGroupKFold")
        labels = _labels(X, y, "StratifiedGroupKFold")
        if self.n_splits > len(np.unique(g)):
            raise DataError(
                f"StratifiedGroupKFold: n_splits={self.n_splits} but only "
                f"{len(np.unique(g))} speakers; lower n_splits"
            )
        inner = _SGKF(self.n_splits, shuffle=True, random_state=_int_seed(self.seed))
        for train, test in inner.split(np.zeros(len(g)), labels, g):
            yield train.astype(np.int64), test.astype(np.int64)


class StratifiedHoldout(_Splitter):
    """One random split stratified by label: speaker-DEPENDENT.

    The same speakers end up in train and test, so accuracy is optimistic and not
    comparable with speaker-independent results; it warns
    (:class:`SpeakerDependentWarning`, a :class:`UserWarning`) each time it splits.
    Silence it with :func:`warnings.catch_warnings` where the split is only used
    for validation, or use :func:`stratified_val_split`.

    Args:
        test_fraction: share of rows in the test part, in (0, 1).
        seed: int or Generator.
    """

    def __init__(self, test_fraction: float = 0.2, seed: Seed = 0) -> None:
        if not 0.0 < float(test_fraction) < 1.0:
            raise DataError(f"StratifiedHoldout: test_fraction={test_fraction}; expected (0, 1)")
        self.test_fraction = float(test_fraction)
        self.seed = seed

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Always 1: one train/validation split."""
        return 1

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[tuple]:
        """Yield one ``(train, test)`` pair of indices, stratified by label."""
        labels = _labels(X, y, "StratifiedHoldout")
        msg = (
            "StratifiedHoldout is a random split: the same speakers are in train and test, "
            "so results are speaker-dependent and optimistic; use LeaveOneSpeakerOut "
            "for comparable numbers"
        )
        warnings.warn(msg, SpeakerDependentWarning, stacklevel=2)
        idx = np.arange(len(labels), dtype=np.int64)
        train, test = stratified_val_split(idx, labels, self.test_fraction, self.seed)
        yield train, test


class SpeakerHoldout(_Splitter):
    """Hold out a reproducible share of whole speakers (e.g. for validation).

    ``max(1, round(fraction * n_speakers))`` speakers are held out. When genders
    are known (``strata``, or the ``gender`` column of a Manifest passed as ``X``)
    the held-out speakers are spread over the genders in proportion
    (largest remainder).

    Args:
        fraction: share of speakers to hold out, in (0, 1).
        seed: int or Generator.

    Example:
        >>> spk = ["a", "a", "b", "c", "d"]
        >>> tr, va = next(SpeakerHoldout(0.25, seed=0).split(range(5), groups=spk))
        >>> len(set(tr.tolist()) & set(va.tolist())), len(tr) + len(va)
        (0, 5)
    """

    def __init__(self, fraction: float = 0.2, seed: Seed = 0) -> None:
        if not 0.0 < float(fraction) < 1.0:
            raise DataError(f"SpeakerHoldout: fraction={fraction}; expected (0, 1)")
        self.fraction = float(fraction)
        self.seed = seed

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Always 1: one train/validation split."""
        return 1

    def held_out(
        self, X: Any, groups: Any = None, strata: Sequence[Any] | None = None
    ) -> list[str]:
        """The held-out speakers, sorted."""
        g = _groups(X, groups, "SpeakerHoldout")
        speakers = np.unique(g)
        if len(speakers) < 2:
            raise DataError(
                f"SpeakerHoldout needs at least 2 speakers, got {len(speakers)}; use "
                "stratified_val_split for a single-speaker set"
            )
        if strata is None and isinstance(X, Manifest) and X.has("gender"):
            strata = X.column("gender")
        n_hold = min(len(speakers) - 1, max(1, round(self.fraction * len(speakers))))
        rng = _rng(self.seed)
        if strata is None:
            return sorted(rng.choice(speakers, size=n_hold, replace=False).tolist())
        s = np.asarray([str(v) for v in strata])
        first = {}
        for spk, st in zip(g.tolist(), s.tolist(), strict=True):
            first.setdefault(spk, st)
        by_stratum: dict[str, list[str]] = {}
        for spk in speakers.tolist():
            by_stratum.setdefault(first[spk], []).append(spk)
        names = sorted(by_stratum)
        sizes = np.array([len(by_stratum[k]) for k in names])
        quota = _largest_remainder(sizes, n_hold, rng)
        chosen: list[str] = []
        for k, q in zip(names, quota, strict=True):
            chosen += rng.choice(by_stratum[k], size=int(q), replace=False).tolist()
        return sorted(chosen)

    def split(
        self, X: Any, y: Any = None, groups: Any = None, strata: Any = None
    ) -> Iterator[tuple]:
        """Yield one ``(train, test)`` pair of indices holding out whole speakers."""
        g = _groups(X, groups, "SpeakerHoldout")
        hold = self.held_out(X, groups, strata)
        mask = np.isin(g, hold)
        idx = np.arange(len(g), dtype=np.int64)
        yield idx[~mask], idx[mask]


def _largest_remainder(
    sizes: np.ndarray, total: int, rng: np.random.Generator, cap: np.ndarray | None = None
) -> np.ndarray:
    """Split ``total`` over strata in proportion to ``sizes`` (ties broken by ``rng``)."""
    cap = sizes if cap is None else cap
    exact = total * sizes / sizes.sum()
    quota = np.minimum(np.floor(exact).astype(np.int64), cap)
    rest = exact - quota
    tie = rng.random(len(sizes))
    for i in np.lexsort((tie, -rest)):
        if quota.sum() >= total:
            break
        if quota[i] < cap[i]:
            quota[i] += 1
    while quota.sum() < total and (quota < cap).any():  # caps left some over
        quota[int(np.argmax(cap - quota))] += 1
    return quota


def stratified_val_split(
    indices: Sequence[int] | np.ndarray,
    labels: Sequence[Any] | np.ndarray,
    fraction: float = 0.1,
    seed: Seed = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``indices`` into train and validation parts with the same class mix.

    Meant for the inner validation set within a fold. ``round(fraction * n)``
    rows go to validation, shared over classes by largest remainder, always
    leaving at least one row of each class in train.

    Args:
        indices: the row indices to split (e.g. a fold's training indices).
        labels: the labels aligned with ``indices`` (``labels[k]`` belongs to
            ``indices[k]``); a full-length label array indexed by ``indices`` is
            also accepted when its length differs from ``len(indices)``.
        fraction: share of rows for validation, in (0, 1).
        seed: int or Generator.

    Returns:
        ``(train, val)``: sorted int64 arrays of values taken from ``indices``.

    Example:
        >>> tr, va = stratified_val_split(range(10), ["a"] * 5 + ["b"] * 5, 0.2, seed=0)
        >>> len(tr), len(va), sorted(v // 5 for v in va.tolist())
        (8, 2, [0, 1])
    """
    if not 0.0 < float(fraction) < 1.0:
        raise DataError(f"stratified_val_split: fraction={fraction}; expected (0, 1)")
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    lab = np.asarray([str(v) for v in labels])
    if len(lab) != len(idx):
        if len(idx) and idx.max() >= len(lab):
            raise DataError(
                f"stratified_val_split: {len(lab)} labels for {len(idx)} indices (max "
                f"{idx.max()}); pass labels aligned with indices"
            )
        lab = lab[idx]
    if len(idx) < 2:
        raise DataError(f"stratified_val_split: need at least 2 rows, got {len(idx)}")
    rng = _rng(seed)
    classes, inverse, sizes = np.unique(lab, return_inverse=True, return_counts=True)
    n_val = min(max(1, round(float(fraction) * len(idx))), int((sizes - 1).sum()))
    if n_val < 1:
        raise DataError(
            "stratified_val_split: every class has a single row, nothing can go to "
            "validation without emptying a class in train"
        )
    quota = _largest_remainder(sizes, n_val, rng, cap=sizes - 1)
    val_pos: list[np.ndarray] = []
    for c in range(len(classes)):
        pos = np.flatnonzero(inverse == c)
        val_pos.append(rng.permutation(pos)[: quota[c]])
    val_mask = np.zeros(len(idx), dtype=bool)
    val_mask[np.concatenate(val_pos)] = True
    return np.sort(idx[~val_mask]), np.sort(idx[val_mask])


@dataclass(frozen=True)
class SplitParts:
    """The three parts of a :class:`TrainValTestSplit`.

    Attributes:
        train: sorted int64 indices of the training rows.
        val: sorted int64 indices of the validation rows.
        test: sorted int64 indices of the test rows.
        speakers: the speakers of each part (``{"train": [...], ...}``; empty lists
            for an utterance split without speaker ids).
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    speakers: dict[str, list[str]]


@dataclass(frozen=True)
class TrainValTestSplit:
    """A three-way train / validation / test split, speaker-independent by default.

    The config of ``dataset.split`` (``{by: speaker, train: 0.7, val: 0.15, test:
    0.15}``). ``by=speaker`` puts whole speakers in each part: the numbers of
    speakers per part are the fractions of the speakers (:meth:`speaker_counts`),
    spread over the genders in proportion when they are known (the ``gender``
    column of a Manifest, or ``strata``). ``by=utterance`` splits the rows
    stratified by label, so the same speakers are in every part: it warns
    (:class:`SpeakerDependentWarning`).

    Args:
        by: ``speaker`` (speaker-independent) or ``utterance``.
        train: share of speakers (or rows) for training.
        val: share for validation (early stopping, best epoch).
        test: share for the test part, scored once at the end of training (0: none).

    Raises:
        ConfigError: fractions that are negative, do not sum to 1 or leave training
            or validation empty.

    Example:
        >>> spk = [s for s in "abcdefghij" for _ in range(3)]
        >>> parts = TrainValTestSplit().parts(range(30), groups=spk, seed=0)
        >>> [len(parts.speakers[k]) for k in ("train", "val", "test")]
        [7, 1, 2]
        >>> set(parts.speakers["train"]) & set(parts.speakers["test"])
        set()
    """

    by: Literal["speaker", "utterance"] = "speaker"
    train: float = 0.7
    val: float = 0.15
    test: float = 0.15

    def __post_init__(self) -> None:
        shares = (self.train, self.val, self.test)
        if min(shares) < 0 or self.train <= 0 or self.val <= 0:
            raise ConfigError(
                f"dataset.split: train={self.train}, val={self.val}, test={self.test}; "
                "expected train > 0, val > 0 and test >= 0"
            )
        if abs(sum(shares) - 1.0) > 1e-6:
            raise ConfigError(
                f"dataset.split: train + val + test = {sum(shares):g}; expected 1 "
                "(e.g. 0.7 / 0.15 / 0.15)"
            )

    def speaker_counts(self, n: int) -> dict[str, int]:
        """Speakers per part out of ``n``: largest remainder, ties to test, then val.

        Every part with a non-zero share gets at least one speaker.

        Example:
            >>> TrainValTestSplit().speaker_counts(10), TrainValTestSplit().speaker_counts(24)
            ({'train': 7, 'val': 1, 'test': 2}, {'train': 17, 'val': 3, 'test': 4})
        """
        shares = {"train": self.train, "val": self.val, "test": self.test}
        exact = {k: v * n for k, v in shares.items()}
        counts = {k: int(np.floor(v + 1e-9)) for k, v in exact.items()}
        priority = {"test": 0, "val": 1, "train": 2}
        for k in sorted(exact, key=lambda k: (-(exact[k] - counts[k]), priority[k])):
            if sum(counts.values()) >= n:
                break
            counts[k] += 1
        for k in ("test", "val"):
            if shares[k] > 0 and counts[k] == 0 and counts["train"] > 1:
                counts[k], counts["train"] = 1, counts["train"] - 1
        return counts

    def parts(
        self,
        X: Any,
        y: Sequence[Any] | None = None,
        groups: Sequence[Any] | None = None,
        *,
        seed: Seed = 0,
        strata: Sequence[Any] | None = None,
    ) -> SplitParts:
        """Split the rows of ``X`` into train, validation and test parts.

        Args:
            X: a Manifest (speakers, labels and genders from its columns) or anything
                with a length.
            y: labels (``by=utterance``; default the Manifest's ``label`` column).
            groups: speaker ids (default the Manifest's ``speaker`` column).
            seed: int or Generator.
            strata: one gender (or other stratum) per row, to spread the speakers.

        Returns:
            The :class:`SplitParts`.

        Raises:
            DataError: no speaker ids (``by=speaker``), or fewer speakers than parts.
        """
        rng = _rng(seed)
        if self.by == "utterance":
            return self._by_utterance(X, y, groups, rng)
        g = _groups(X, groups, "dataset.split (by=speaker)")
        speakers = np.unique(g)
        n_parts = 3 if self.test > 0 else 2
        if len(speakers) < n_parts:
            raise DataError(
                f"dataset.split by=speaker needs at least {n_parts} speakers (one per part), "
                f"got {len(speakers)}; use by=utterance (speaker-dependent) or more speakers"
            )
        counts = self.speaker_counts(len(speakers))
        if strata is None and isinstance(X, Manifest) and X.has("gender"):
            strata = X.column("gender")
        order = _spread(speakers, g, strata, rng)
        chosen: dict[str, list[str]] = {}
        start = 0
        for name in ("test", "val", "train"):  # the small parts first: they mix the strata
            chosen[name] = sorted(order[start : start + counts[name]])
            start += counts[name]
        idx = np.arange(len(g), dtype=np.int64)
        parts = {k: idx[np.isin(g, v)] for k, v in chosen.items()}
        speakers_of = {k: chosen[k] for k in ("train", "val", "test")}
        return SplitParts(parts["train"], parts["val"], parts["test"], speakers_of)

    def _by_utterance(self, X: Any, y: Any, groups: Any, rng: np.random.Generator) -> SplitParts:
        labels = _labels(X, y, "dataset.split (by=utterance)")
        warnings.warn(
            "dataset.split by=utterance: the same speakers are in train, val and test, so "
            "the scores are speaker-dependent (optimistic); use by=speaker",
            SpeakerDependentWarning,
            stacklevel=3,
        )
        rest = np.arange(len(labels), dtype=np.int64)
        test = rest[:0]
        if self.test > 0:
            rest, test = stratified_val_split(rest, labels[rest], self.test, rng)
        train, val = stratified_val_split(
            rest, labels[rest], self.val / (self.train + self.val), rng
        )
        spk: dict[str, list[str]] = {"train": [], "val": [], "test": []}
        if groups is not None or (isinstance(X, Manifest) and X.has("speaker")):
            g = _groups(X, groups, "dataset.split")
            spk = {
                k: sorted(set(g[v].tolist())) for k, v in zip(spk, (train, val, test), strict=True)
            }
        return SplitParts(train, val, test, spk)


def _spread(
    speakers: np.ndarray, g: np.ndarray, strata: Sequence[Any] | None, rng: np.random.Generator
) -> list[str]:
    """The speakers in a random order that alternates over the strata in proportion.

    Any prefix of the order holds the strata about in proportion to their sizes,
    so the first few speakers (the test part) mix the genders.
    """
    shuffled = rng.permutation(speakers).tolist()
    if strata is None:
        return shuffled
    first: dict[str, str] = {}
    for spk, st in zip(g.tolist(), [str(v) for v in strata], strict=True):
        first.setdefault(spk, st)
    by_stratum: dict[str, list[str]] = {}
    for spk in shuffled:
        by_stratum.setdefault(first[spk], []).append(spk)
    keyed = []  # position of each speaker in its stratum, scaled to (0, 1]: interleaves
    for members in by_stratum.values():
        n = len(members)
        keyed += [((i + rng.random()) / n, spk) for i, spk in enumerate(members)]
    return [spk for _, spk in sorted(keyed)]


#: Splitter classes by name, for configs and the CLI.
SPLITTERS: Registry[type] = Registry("splitter")
SPLITTERS.register("loso", LeaveOneSpeakerOut)
SPLITTERS.register("group_kfold", GroupKFold)
SPLITTERS.register("stratified_group_kfold", StratifiedGroupKFold)
SPLITTERS.register("speaker_holdout", SpeakerHoldout)
SPLITTERS.register("stratified_holdout", StratifiedHoldout)
SPLITTERS.register("train_val_test", TrainValTestSplit)
