"""EER, minDCF and operating points against their definitions and scikit-learn's ROC."""

from __future__ import annotations

import numpy as np
import pytest

from vocalis.errors import DataError
from vocalis.metrics.verification import (
    compute_eer,
    compute_min_dcf,
    detection_costs,
    error_rates,
    threshold_at_far,
)

sk = pytest.importorskip("sklearn.metrics")


def _scores(n=2000, sep=1.5, p=0.3, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.random(n) < p
    return rng.normal(size=n) + sep * labels, labels.astype(int)


def test_eer_is_0_for_separated_and_1_for_inverted_scores():
    labels = np.r_[np.ones(50), np.zeros(500)]
    scores = np.r_[np.linspace(1, 2, 50), np.linspace(-2, 0.5, 500)]
    eer, thr = compute_eer(scores, labels)
    assert eer == 0.0 and 0.5 < thr <= 1.0
    assert compute_eer(-scores, labels)[0] == 1.0


def test_eer_is_interpolated_at_the_crossing_like_brentq_on_sklearn_roc():
    brentq = pytest.importorskip("scipy.optimize").brentq
    interp1d = pytest.importorskip("scipy.interpolate").interp1d
    for seed in range(5):
        scores, labels = _scores(n=301 + seed * 37, seed=seed)
        fpr, tpr, _ = sk.roc_curve(labels, scores, drop_intermediate=False)
        ref = brentq(lambda x, f=fpr, t=tpr: 1.0 - x - interp1d(f, t)(x), 0.0, 1.0)
        assert compute_eer(scores, labels)[0] == pytest.approx(ref, abs=1e-9)


def test_eer_between_two_points_is_not_their_mean():
    # fnr/fpr go (1,0) -> (0.5,0) -> (0.5,0.5)... crossing exactly at a point: 0.5
    eer, _ = compute_eer(np.array([0.9, 0.6, 0.4, 0.1]), np.array([1, 0, 1, 0]))
    assert eer == 0.5
    # 1 target, 3 non-targets, target in 2nd place: fnr (1, 1, 0, 0, 0), fpr (0, 1/3, 1/3, ..)
    eer, _ = compute_eer(np.array([0.9, 0.8, 0.3, 0.1]), np.array([0, 1, 0, 0]))
    assert eer == pytest.approx(1 / 3)  # the segment (1, 1/3) -> (0, 1/3) meets the diagonal


def test_min_dcf_extremes():
    labels = np.r_[np.ones(100), np.zeros(900)]
    separated = np.where(labels == 1, 5.0, -5.0)
    assert compute_min_dcf(separated, labels)[0] == 0.0
    assert compute_min_dcf(-separated, labels)[0] == pytest.approx(1.0)  # trivial system wins
    assert compute_min_dcf(np.zeros(1000), labels)[0] == pytest.approx(1.0)
    scores, y = _scores()
    assert 0.0 < compute_min_dcf(scores, y)[0] <= 1.0


@pytest.mark.parametrize(("p", "cm", "cf"), [(0.01, 1, 1), (0.05, 1, 1), (0.5, 10, 1), (0.2, 1, 3)])
def test_min_dcf_matches_an_independent_computation_from_sklearn_roc(p, cm, cf):
    scores, labels = _scores(seed=3)
    fpr, tpr, _ = sk.roc_curve(labels, scores, drop_intermediate=False)
    dcf = cm * p * (1 - tpr) + cf * (1 - p) * fpr
    ref = dcf.min() / min(cm * p, cf * (1 - p))
    got, at = compute_min_dcf(scores, labels, p_target=p, c_miss=cm, c_fa=cf)
    assert got == pytest.approx(ref, abs=1e-12)
    # the threshold reproduces the cost it reports
    miss = np.mean(scores[labels == 1] < at)
    fa = np.mean(scores[labels == 0] >= at)
    assert (cm * p * miss + cf * (1 - p) * fa) / min(cm * p, cf * (1 - p)) == pytest.approx(got)


def test_detection_costs_refuse_bad_parameters():
    scores, labels = _scores(n=50)
    for kwargs in ({"p_target": 0.0}, {"p_target": 1.0}, {"c_miss": 0.0}, {"c_fa": -1.0}):
        with pytest.raises(DataError):
            detection_costs(scores, labels, **kwargs)


def test_threshold_at_far_keeps_the_false_accept_rate():
    scores, labels = _scores(n=5000, seed=4)
    for far in (0.0, 0.01, 0.1, 0.5):
        thr, fpr, fnr = threshold_at_far(scores, labels, far)
        assert np.mean(scores[labels == 0] >= thr) == pytest.approx(fpr) and fpr <= far
        assert np.mean(scores[labels == 1] < thr) == pytest.approx(fnr)
        # a lower threshold (the next distinct score) would exceed the rate
        lower = scores[scores < thr].max()
        assert np.mean(scores[labels == 0] >= lower) > far
    with pytest.raises(DataError, match="false-accept"):
        threshold_at_far(scores, labels, 1.0)


def test_error_rates_refuse_bad_input():
    with pytest.raises(DataError, match="nan or inf"):
        error_rates(np.array([np.nan, 1.0]), np.array([0, 1]))
    with pytest.raises(DataError, match="target and non-target"):
        compute_eer(np.zeros(3), np.ones(3))
