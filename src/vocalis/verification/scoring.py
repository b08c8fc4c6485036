"""Cosine scoring of trials and score normalisation with a cohort (pure numpy).

Embeddings are L2-normalised, and a trial's raw score is the cosine of its
enrolment and test embeddings. Normalisations use a *cohort*: embeddings of clips
of other speakers (disjoint from the trials' speakers), scored against each trial
side. For a trial ``(e, t)`` with raw score ``s``:

- ``z``: ``(s - mu_e) / sd_e``, with ``mu_e, sd_e`` the mean and standard deviation
  of the cosines of ``e`` against every cohort embedding;
- ``t``: ``(s - mu_t) / sd_t``, the same statistics of ``t``;
- ``s``: symmetric normalisation, ``(z + t) / 2``;
- ``as``: adaptive s-norm (Matejka et al., 2017): as ``s`` but each side's
  statistics come from its ``top_k`` highest cohort cosines only.

Standard deviations use ``ddof=0`` and are floored at ``1e-8``.

Shape legend: N trials, U distinct clips, C cohort clips, E embedding size.

Example:
    >>> emb = np.eye(3)
    >>> cosine_scores(emb, emb, np.array([0, 1, 2]), np.array([0, 0, 2])).tolist()
    [1.0, 0.0, 1.0]
"""

from __future__ import annotations

import numpy as np

from vocalis.errors import ConfigError, DataError

__all__ = ["NORMS", "cohort_stats", "cosine_scores", "l2_normalize", "normalize_scores"]

#: Score normalisations: none, zero (z), test (t), symmetric (s), adaptive symmetric (as).
NORMS = ("none", "z", "t", "s", "as")

_FLOOR = 1e-8


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero).

    Shape:
        (N, E) -> (N, E) float64.

    Raises:
        DataError: a value is nan or inf.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise DataError(f"embeddings of shape {x.shape}: expected (N, E)")
    if not np.isfinite(x).all():
        raise DataError("embeddings contain nan or inf; check the model and the audio")
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def cosine_scores(
    emb: np.ndarray, other: np.ndarray, enrol: np.ndarray, test: np.ndarray
) -> np.ndarray:
    """Cosine of ``emb[enrol[n]]`` and ``other[test[n]]`` for every trial.

    Args:
        emb: enrolment-side embeddings.
        other: test-side embeddings (often ``emb`` itself).
        enrol: row of ``emb`` per trial.
        test: row of ``other`` per trial.

    Returns:
        Raw scores in [-1, 1].

    Shape:
        emb: (U, E), other: (U', E), enrol, test: (N,) -> (N,).
    """
    a = l2_normalize(emb)[np.asarray(enrol)]
    b = l2_normalize(other)[np.asarray(test)]
    return np.einsum("ne,ne->n", a, b)


def cohort_stats(
    emb: np.ndarray, cohort: np.ndarray, top_k: int | None = None, chunk: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation of each embedding's cosines against the cohort.

    Args:
        emb: the clips to normalise.
        cohort: cohort embeddings.
        top_k: use only each clip's ``top_k`` highest cohort cosines (adaptive);
            None or ``>= C`` uses all of them.
        chunk: clips per matrix product (bounds memory to ``chunk x C``).

    Returns:
        ``(mean, std)``.

    Shape:
        emb: (U, E), cohort: (C, E) -> (U,), (U,).

    Raises:
        DataError: an empty cohort, or embedding sizes differ.
        ConfigError: ``top_k < 1``.

    Example:
        >>> mean, std = cohort_stats(np.eye(2), np.eye(2))
        >>> mean.tolist(), std.tolist()
        ([0.5, 0.5], [0.5, 0.5])
    """
    a, c = l2_normalize(emb), l2_normalize(cohort)
    if c.shape[0] == 0:
        raise DataError("the cohort is empty; give a cohort manifest with clips of other speakers")
    if a.shape[1] != c.shape[1]:
        raise DataError(f"embeddings of size {a.shape[1]} but cohort of size {c.shape[1]}")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"--top-k {top_k}: expected a positive number of cohort clips")
    k = c.shape[0] if top_k is None else min(int(top_k), c.shape[0])
    mean = np.empty(a.shape[0])
    std = np.empty(a.shape[0])
    for lo in range(0, a.shape[0], chunk):
        sims = a[lo : lo + chunk] @ c.T
        if k < c.shape[0]:
            sims = -np.partition(-sims, k - 1, axis=1)[:, :k]
        mean[lo : lo + chunk] = sims.mean(1)
        std[lo : lo + chunk] = np.maximum(sims.std(1), _FLOOR)
    return mean, std


def normalize_scores(
    raw: np.ndarray,
    enrol_emb: np.ndarray,
    test_emb: np.ndarray,
    norm: str,
    cohort: np.ndarray | None = None,
    top_k: int | None = 200,
) -> np.ndarray:
    """Apply a score normalisation (see the module docstring).

    Args:
        raw: raw cosine scores of the trials.
        enrol_emb: each trial's enrolment embedding.
        test_emb: each trial's test embedding.
        norm: one of :data:`NORMS`.
        cohort: cohort embeddings (needed unless ``norm="none"``).
        top_k: cohort clips per side for ``as`` (ignored by the other norms).

    Returns:
        Normalised scores.

    Shape:
        raw: (N,), enrol_emb, test_emb: (N, E), cohort: (C, E) -> (N,).

    Raises:
        ConfigError: an unknown norm, or a norm without a cohort.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> e, t, c = rng.normal(size=(4, 8)), rng.normal(size=(4, 8)), rng.normal(size=(20, 8))
        >>> raw = cosine_scores(e, t, np.arange(4), np.arange(4))
        >>> z, tn = normalize_scores(raw, e, t, "z", c), normalize_scores(raw, e, t, "t", c)
        >>> bool(np.allclose(normalize_scores(raw, e, t, "s", c), (z + tn) / 2))
        True
    """
    if norm not in NORMS:
        raise ConfigError(f"--norm {norm!r}: expected one of {', '.join(NORMS)}")
    raw = np.asarray(raw, dtype=np.float64)
    if norm == "none":
        return raw
    if cohort is None:
        raise ConfigError(f"--norm {norm} needs a cohort: pass --cohort COHORT.csv")
    k = top_k if norm == "as" else None
    out = np.zeros_like(raw)
    if norm in ("z", "s", "as"):
        mu, sd = cohort_stats(enrol_emb, cohort, k)
        out += (raw - mu) / sd
    if norm in ("t", "s", "as"):
        mu, sd = cohort_stats(test_emb, cohort, k)
        out += (raw - mu) / sd
    return out / 2.0 if norm in ("s", "as") else out
