"""Speaker-verification metrics: equal error rate and minimum detection cost.

Scores are similarity scores (higher = more likely the same speaker); labels are
1 for target trials and 0 for non-target trials. A trial is accepted when its
score is ``>= threshold``.

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

__all__ = ["compute_eer", "compute_min_dcf", "error_rates"]


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
        DataError: lengths differ, or there are no target or no non-target trials.

    Example:
        >>> fnr, fpr, thr = error_rates(np.array([0.2, 0.7]), np.array([0, 1]))
        >>> fnr.tolist(), fpr.tolist(), thr.tolist()
        ([1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [inf, 0.7, 0.2])
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    if s.shape != y.shape:
        raise DataError(f"{s.size} scores but {y.size} labels; pass one label per trial")
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
    """Equal error rate and the threshold where miss and false-alarm rates cross.

    Takes the operating point where ``|fnr - fpr|`` is smallest and returns the
    mean of the two rates there. 0 for perfectly separated scores, 1 for inverted.

    Shape:
        scores, labels: (N,).

    Example:
        >>> eer, thr = compute_eer(np.array([0.9, 0.4, 0.6, 0.1]), np.array([1, 1, 0, 0]))
        >>> eer, thr
        (0.5, 0.6)
    """
    fnr, fpr, thr = error_rates(scores, labels)
    i = int(np.argmin(np.abs(fnr - fpr)))
    return float((fnr[i] + fpr[i]) / 2), float(thr[i])


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
    the best trivial system), minimised over thresholds.

    Shape:
        scores, labels: (N,).

    Example:
        >>> compute_min_dcf(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 1, 0, 0]))
        (0.0, 0.8)
    """
    if not 0.0 < p_target < 1.0:
        raise DataError(f"p_target={p_target} must lie strictly between 0 and 1")
    fnr, fpr, thr = error_rates(scores, labels)
    dcf = c_miss * p_target * fnr + c_fa * (1.0 - p_target) * fpr
    i = int(np.argmin(dcf))
    c_def = min(c_miss * p_target, c_fa * (1.0 - p_target))
    return float(dcf[i] / c_def), float(thr[i])
