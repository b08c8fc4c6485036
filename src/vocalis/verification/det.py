"""The DET curve (miss rate against false-alarm rate on normal-deviate axes) as a PNG."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

__all__ = ["plot_det"]

_TICKS = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.95)


def plot_det(
    curves: Sequence[tuple[str, np.ndarray, np.ndarray]],
    path: str | os.PathLike,
    points: Sequence[tuple[str, float, float]] = (),
    title: str = "DET curve",
) -> str:
    """Plot one or more DET curves and mark operating points; write ``path`` atomically.

    Args:
        curves: ``(label, fpr, fnr)`` per system, rates in [0, 1] (e.g. from
            :func:`vocalis.metrics.verification.error_rates`).
        path: PNG to write.
        points: ``(label, fpr, fnr)`` operating points to mark (EER, minDCF, threshold).
        title: plot title.

    Returns:
        ``str(path)``.

    Shape:
        fpr, fnr: (U,) each.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from scipy.stats import norm

    from vocalis.io import atomic_open

    lo, hi = 5e-4, 0.95

    def probit(x: np.ndarray | float) -> np.ndarray:
        return norm.ppf(np.clip(np.asarray(x, dtype=float), lo, hi))

    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    for label, fpr, fnr in curves:
        ax.plot(probit(fpr), probit(fnr), lw=1.6, label=label)
    for label, fpr, fnr in points:
        ax.plot(probit(fpr), probit(fnr), "o", ms=6, label=label)
    ticks = [t for t in _TICKS if lo <= t <= hi]
    ax.set_xticks(probit(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(probit(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_xlim(probit(lo), probit(hi))
    ax.set_ylim(probit(lo), probit(hi))
    ax.plot([probit(lo), probit(hi)], [probit(lo), probit(hi)], ":", color="grey", lw=0.8)
    ax.set_xlabel("false-alarm rate (%)")
    ax.set_ylabel("miss rate (%)")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return str(path)
