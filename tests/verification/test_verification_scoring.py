"""Cosine scores and z/t/s/as-norm against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from vocalis.errors import ConfigError, DataError
from vocalis.verification.scoring import cohort_stats, cosine_scores, normalize_scores


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(6, 5)), rng.normal(size=(6, 5)), rng.normal(size=(40, 5))


def test_cosine_is_scale_free_and_in_range(data):
    e, t, _ = data
    idx = np.arange(6)
    s = cosine_scores(e, t, idx, idx)
    assert np.allclose(s, cosine_scores(3 * e, 0.1 * t, idx, idx))
    assert np.allclose(s, [_unit(a) @ _unit(b) for a, b in zip(e, t, strict=True)])
    assert cosine_scores(e, e, idx, idx) == pytest.approx(np.ones(6))


def test_norms_match_a_hand_computation(data):
    e, t, c = data
    raw = cosine_scores(e, t, np.arange(6), np.arange(6))
    ce = np.array([[_unit(x) @ _unit(y) for y in c] for x in e])  # (6, 40)
    ct = np.array([[_unit(x) @ _unit(y) for y in c] for x in t])
    z = (raw - ce.mean(1)) / ce.std(1)
    tn = (raw - ct.mean(1)) / ct.std(1)
    assert normalize_scores(raw, e, t, "z", c) == pytest.approx(z)
    assert normalize_scores(raw, e, t, "t", c) == pytest.approx(tn)
    assert normalize_scores(raw, e, t, "s", c) == pytest.approx((z + tn) / 2)
    k = 7
    top_e = np.sort(ce, axis=1)[:, -k:]
    top_t = np.sort(ct, axis=1)[:, -k:]
    asn = ((raw - top_e.mean(1)) / top_e.std(1) + (raw - top_t.mean(1)) / top_t.std(1)) / 2
    assert normalize_scores(raw, e, t, "as", c, top_k=k) == pytest.approx(asn)
    # a top_k as large as the cohort is plain s-norm
    assert normalize_scores(raw, e, t, "as", c, top_k=999) == pytest.approx((z + tn) / 2)
    assert normalize_scores(raw, e, t, "none") == pytest.approx(raw)


def test_cohort_stats_in_chunks_equal_one_product(data):
    e, _, c = data
    for k in (None, 3):
        m1, s1 = cohort_stats(e, c, k)
        m2, s2 = cohort_stats(e, c, k, chunk=2)
        assert np.allclose(m1, m2) and np.allclose(s1, s2)


def test_norm_errors(data):
    e, t, c = data
    raw = np.zeros(6)
    with pytest.raises(ConfigError, match="needs a cohort"):
        normalize_scores(raw, e, t, "s")
    with pytest.raises(ConfigError, match="expected one of"):
        normalize_scores(raw, e, t, "x", c)
    with pytest.raises(DataError, match="size 5 but cohort of size 3"):
        normalize_scores(raw, e, t, "z", c[:, :3])
    with pytest.raises(ConfigError, match="top-k"):
        normalize_scores(raw, e, t, "as", c, top_k=0)
    with pytest.raises(DataError, match="nan or inf"):
        cosine_scores(np.full((1, 2), np.nan), e[:, :2], [0], [0])


def test_score_embeddings_skips_trials_without_vectors_and_matches_the_metrics():
    from vocalis.metrics.verification import compute_eer
    from vocalis.verification.api import score_embeddings
    from vocalis.verification.trials import TrialList

    rng = np.random.default_rng(1)
    vec = {f"s{s}_{i}": rng.normal(size=8) + 3 * np.eye(8)[s] for s in range(4) for i in range(3)}
    pairs = [(int(a[:2] == b[:2]), a, b) for a in vec for b in vec if a < b]
    pairs.append((1, "missing", "s0_0"))
    labels, enrol, test = zip(*pairs, strict=True)
    tl = TrialList(np.array(labels), enrol, test)
    res = score_embeddings(tl, vec)
    assert res.metrics["skipped_trials"] == 1 and res.metrics["n_trials"] == len(labels) - 1
    assert res.metrics["eer"] == compute_eer(res.scores, res.labels)[0]
    assert res.metrics["n_target"] == 12 and res.metrics["n_nontarget"] == 54
