"""Late fusion: weighted means of class probabilities, weights chosen on validation.

Weights are searched on a simplex grid (step ``1 / resolution``) and scored by
pooled UAR on *validation* probabilities only (the inner out-of-fold
probabilities of :class:`~vocalis.ensemble.linear.FunctionalClassifier`, or a
held-out set of training speakers); ties go to the weights closest to uniform,
so an uninformative validation set gives the plain average.

Example:
    >>> y = np.array([0, 1, 1, 0])
    >>> good = np.array([[0.9, 0.1], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    >>> bad = good[:, ::-1]
    >>> choose_weights([good, bad], y, resolution=4)  # the most uniform perfect weighting
    (0.75, 0.25)
    >>> fuse([good, bad], (0.5, 0.5))[0].tolist()
    [0.5, 0.5]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from vocalis.ensemble.linear import pooled_uar
from vocalis.errors import ConfigError, DataError


def _check(probas: Sequence[np.ndarray]) -> list[np.ndarray]:
    arrays = [np.asarray(p, dtype=np.float64) for p in probas]
    if not arrays:
        raise DataError("fusion: got no members, expected at least one (N, K) probability array")
    shape = arrays[0].shape
    for i, p in enumerate(arrays):
        if p.ndim != 2 or p.shape != shape:
            raise DataError(
                f"fusion: member {i} has shape {p.shape}, expected {shape} like member 0"
            )
    return arrays


def fuse(probas: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted mean of members' probabilities.

    Args:
        probas: ``M`` arrays ``(N, K)``.
        weights: ``M`` non-negative weights (normalised to sum 1).

    Returns:
        ``(N, K)`` fused probabilities.

    Shape:
        M x (N, K) -> (N, K); M members, N rows, K classes.

    Raises:
        ConfigError: wrong number of weights, negative weights or all zero.

    Example:
        >>> fuse([np.eye(2), np.ones((2, 2)) / 2], (3, 1)).tolist()
        [[0.875, 0.125], [0.125, 0.875]]
    """
    arrays = _check(probas)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (len(arrays),) or (w < 0).any() or w.sum() <= 0:
        raise ConfigError(
            f"fusion.weights: got {list(weights)}, expected {len(arrays)} non-negative "
            "weights with a positive sum"
        )
    w = w / w.sum()
    return sum(wi * p for wi, p in zip(w, arrays, strict=True))


def simplex_grid(members: int, resolution: int) -> list[tuple[float, ...]]:
    """All weight vectors with entries in ``{0, 1/r, ..., 1}`` summing to 1.

    Example:
        >>> simplex_grid(2, 2)
        [(0.0, 1.0), (0.5, 0.5), (1.0, 0.0)]
    """
    if members < 1 or resolution < 1:
        raise ConfigError(
            f"fusion: got members={members}, resolution={resolution}, expected both >= 1"
        )
    out = []
    for combo in itertools.product(range(resolution + 1), repeat=members - 1):
        last = resolution - sum(combo)
        if last >= 0:
            out.append(tuple(c / resolution for c in (*combo, last)))
    return sorted(out)


def choose_weights(
    probas: Sequence[np.ndarray], y: np.ndarray, resolution: int = 10
) -> tuple[float, ...]:
    """Fusion weights maximising pooled UAR on validation probabilities.

    Args:
        probas: ``M`` validation arrays ``(N, K)`` (rows with NaN are ignored).
        y: ``(N,)`` integer labels.
        resolution: grid step ``1 / resolution``.

    Returns:
        ``M`` weights summing to 1; among ties, the closest to uniform.
    """
    arrays = _check(probas)
    y = np.asarray(y)
    keep = ~np.any([np.isnan(p).any(1) for p in arrays], axis=0)
    if not keep.any():
        raise DataError("fusion: every validation row has a NaN probability; nothing to fit")
    arrays = [p[keep] for p in arrays]
    y = y[keep]
    m = len(arrays)
    uniform = np.full(m, 1.0 / m)
    best, best_key = None, None
    for w in simplex_grid(m, resolution):
        score = pooled_uar(y, fuse(arrays, w).argmax(1))
        key = (score, -float(np.abs(np.asarray(w) - uniform).sum()))
        if best_key is None or key > best_key:
            best, best_key = w, key
    return best
