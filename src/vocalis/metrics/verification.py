"""Speaker-verification metrics: equal error rate, detection cost, operating points.

Scores are similarity scores (higher = more likely the same speaker); labels are
1 for target trials and 0 for non-target trials. A trial is accepted when its
score is ``>= threshold``.

Definitions (tools disagree on both, so they are spelled out here and in
``docs/howto/speaker-verification.md``):

- **EER**: the ROC curve is the polyline through the operating points of every
  distinct threshold (miss rate ``fnr``, false-alarm rate ``fpr``); the EER is
  the rate where that polyline crosses ``fnr = fpr``, linearly interpolated
  between the two operating points on either side of the crossing. This is the
  VoxCeleb / scikit-learn-ROC + ``brentq`` value; it is *not* the ROC convex
  hull EER of BOSARIS, nor the nearest-point ``(fnr + fpr) / 2`` of older scripts.
- **minDCF**: ``DCF(t) = c_miss * p_target * fnr(t) + c_fa * (1 - p_target) * fpr(t)``
  minimised over the thresholds and divided by the default cost
  ``min(c_miss * p_target, c_fa * (1 - p_target))`` (the better of accepting
  or rejecting everything), as in NIST SRE and Kaldi's ``compute_min_dcf.py``.
  Defaults ``p_target = 0.01``, ``c_miss = c_fa = 1``. A useless system scores 1,
  a perfect one 0.

Example:
    >>> scores = np.array([0.9, 0.8, 0.3, 0.1])
    >>> labels = np.array([1, 1, 0, 0])
    >>> compute_eer(scores, labels)
    (0.0, 0.8)
    >>> compute_eer(-scores, labels)[0]
    1.0
"""

from __future__ import annotations

import numpy as np

from vocalis.errors import DataError

__all__ = [
    "compute_eer",
    "compute_min_dcf",
    "detection_costs",
    "error_rates",
    "threshold_at_far",
]


def error_rates(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, ...]:
    """Miss and false-alarm rates at every distinct threshold.

    The first threshold is ``+inf`` (accept nothing: miss rate 1, false-alarm 0),
    then every distinct score in decreasing order.

    Args:
        scores: trial scores.
        labels: 1 target, 0 non-target.

    Returns:
        ``(fnr, fpr, thresholds)``.

    Shape:
        scores, labels: (N,); outputs: (U + 1,) with U distinct scores.

    Raises:
        DataError: lengths differ, a score is not finite, or there are no target or
            no non-target trials.

    Example:
        >>> fnr, fpr, thr = error_rates(np.array([0.2, 0.7]), np.array([0, 1]))
        >>> fnr.tolist(), fpr.tolist(), thr.tolist()
        ([1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [inf, 0.7, 0.2])
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    if s.shape != y.shape:
        raise DataError(f"{s.size} scores but {y.size} labels; pass one label per trial")
    if not np.isfinite(s).all():
        bad = int((~np.isfinite(s)).sum())
        raise DataError(f"{bad} of {s.size} scores are nan or inf; check the embeddings")
    n_tgt, n_non = int(y.sum()), int((~y).sum())
    if n_tgt == 0 or n_non == 0:
        raise DataError(
            f"verification needs target and non-target trials, got {n_tgt} target and "
            f"{n_non} non-target; check the trial list labels"
        )
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]  # last index of each distinct score
    fnr = np.r_[1.0, 1.0 - tp[last] / n_tgt]
    fpr = np.r_[0.0, fp[last] / n_non]
    return fnr, fpr, np.r_[np.inf, s[last]]


def compute_eer(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Equal error rate, interpolated at the ``fnr = fpr`` crossing, and its threshold.

    Between the last operating point with ``fnr > fpr`` and the first with
    ``fnr <= fpr`` the ROC is a straight segment; the EER is where it meets the
    diagonal. The threshold is interpolated the same way between the two
    thresholds (the first one when the crossing is next to "accept nothing").
    0 for perfectly separated scores, 1 for inverted ones.

    Args:
        scores: trial scores.
        labels: 1 target, 0 non-target.

    Returns:
        ``(eer, threshold)``, the EER as a fraction in [0, 1].

    Shape:
        scores, labels: (N,).

    Raises:
        DataError: see :func:`error_rates`.

    Example:
        >>> eer, thr = compute_eer(np.array([0.9, 0.4, 0.6, 0.1]), np.array([1, 1, 0, 0]))
        >>> eer, round(thr, 3)
        (0.5, 0.6)
    """
    fnr, fpr, thr = error_rates(scores, labels)
    d = fnr - fpr  # starts at 1 (thr = inf), decreases to -1, never increases
    i = int(np.argmax(d <= 0))
    if d[i] == 0 or i == 0:
        return float(fnr[i]), float(thr[i])
    t = d[i - 1] / (d[i - 1] - d[i])
    eer = fnr[i - 1] + t * (fnr[i] - fnr[i - 1])
    threshold = thr[i] if not np.isfinite(thr[i - 1]) else thr[i - 1] + t * (thr[i] - thr[i - 1])
    return float(eer), float(threshold)


def detection_costs(
    scores: np.ndarray,
    labels: np.ndarray,
    p_target: float = 0.01,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Normalised detection cost at every distinct threshold.

    Args:
        scores: trial scores.
        labels: 1 target, 0 non-target.
        p_target: prior of a target trial, strictly between 0 and 1.
        c_miss: cost of a missed target (> 0).
        c_fa: cost of a false alarm (> 0).

    Returns:
        ``(costs, thresholds)``: ``DCF(t) / min(c_miss * p_target, c_fa * (1 - p_target))``.

    Shape:
        scores, labels: (N,); outputs: (U + 1,) as in :func:`error_rates`.

    Raises:
        DataError: bad costs or prior, or see :func:`error_rates`.
    """
    if not 0.0 < p_target < 1.0:
        raise DataError(f"p_target={p_target} must lie strictly between 0 and 1")
    if not (c_miss > 0 and c_fa > 0):
        raise DataError(f"c_miss={c_miss} and c_fa={c_fa} must both be > 0")
    fnr, fpr, thr = error_rates(scores, labels)
    dcf = c_miss * p_target * fnr + c_fa * (1.0 - p_target) * fpr
    c_def = min(c_miss * p_target, c_fa * (1.0 - p_target))
    return dcf / c_def, thr


def compute_min_dcf(
    scores: np.ndarray,
    labels: np.ndarray,
    p_target: float = 0.01,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
) -> tuple[float, float]:
    """Normalised minimum detection cost (NIST SRE) and its threshold.

    ``DCF(t) = c_miss * p_target * fnr(t) + c_fa * (1 - p_target) * fpr(t)``,
    divided by ``min(c_miss * p_target, c_fa * (1 - p_target))`` (the cost of
    the best trivial system), minimised over thresholds. Never above 1.

    Args:
        scores: trial scores.
        labels: 1 target, 0 non-target.
        p_target: prior of a target trial.
        c_miss: cost of a missed target.
        c_fa: cost of a false alarm.

    Returns:
        ``(min_dcf, threshold)``.

    Shape:
        scores, labels: (N,).

    Raises:
        DataError: see :func:`detection_costs`.

    Example:
        >>> compute_min_dcf(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 1, 0, 0]))
        (0.0, 0.8)
    """
    costs, thr = detection_costs(scores, labels, p_target, c_miss, c_fa)
    i = int(np.argmin(costs))
    return float(costs[i]), float(thr[i])


def threshold_at_far(
    scores: np.ndarray, labels: np.ndarray, far: float
) -> tuple[float, float, float]:
    """The lowest threshold whose false-accept rate is at most ``far``.

    Args:
        scores: trial scores.
        labels: 1 target, 0 non-target.
        far: target false-accept (false-alarm) rate in [0, 1).

    Returns:
        ``(threshold, fpr, fnr)``: the threshold and the rates it gives on these trials.

    Shape:
        scores, labels: (N,).

    Raises:
        DataError: ``far`` outside [0, 1), or see :func:`error_rates`.

    Example:
        >>> threshold_at_far(np.array([0.9, 0.5, 0.6, 0.1]), np.array([1, 1, 0, 0]), 0.0)
        (0.9, 0.0, 0.5)
    """
    if not 0.0 <= far < 1.0:
        raise DataError(f"far={far}: expected a false-accept rate in [0, 1), e.g. 0.01")
    fnr, fpr, thr = error_rates(scores, labels)
    ok = np.nonzero(fpr <= far)[0]
    i = int(ok[-1])  # fpr never decreases: the last admissible point misses least
    if not np.isfinite(thr[i]):  # only "accept nothing" qualifies: just above the top score
        return float(np.nextafter(thr[1], np.inf)), 0.0, 1.0
    return float(thr[i]), float(fpr[i]), float(fnr[i])
