"""Metrics against scikit-learn and hand-made cases; EER/minDCF properties."""

from __future__ import annotations

import numpy as np
import pytest

from vocalis.errors import DataError
from vocalis.metrics.classification import (
    ccc,
    classification_metrics,
    expected_calibration_error,
    mae,
    multilabel_metrics,
    regression_metrics,
)
from vocalis.metrics.verification import compute_eer, compute_min_dcf

sk = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_classification_matches_sklearn_on_random_labels(seed):
    rng = np.random.default_rng(seed)
    classes = ["ang", "bor", "dis", "fea", "hap", "neu", "sad"]
    y = rng.choice(classes, 300)
    p = np.where(rng.random(300) < 0.5, y, rng.choice(classes, 300))
    m = classification_metrics(y, p, classes=classes)
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(y, p), abs=1e-12)
    assert m["uar"] == pytest.approx(sk.recall_score(y, p, average="macro"), abs=1e-12)
    assert m["uar"] == pytest.approx(sk.balanced_accuracy_score(y, p), abs=1e-12)
    assert m["macro_f1"] == pytest.approx(sk.f1_score(y, p, average="macro"), abs=1e-12)
    assert m["weighted_f1"] == pytest.approx(sk.f1_score(y, p, average="weighted"), abs=1e-12)
    assert m["confusion"] == sk.confusion_matrix(y, p, labels=classes).tolist()
    prec, rec, f1, sup = sk.precision_recall_fscore_support(y, p, labels=classes)
    for i, c in enumerate(classes):
        assert m["per_class"][c]["precision"] == pytest.approx(prec[i], abs=1e-12)
        assert m["per_class"][c]["recall"] == pytest.approx(rec[i], abs=1e-12)
        assert m["per_class"][c]["f1"] == pytest.approx(f1[i], abs=1e-12)
        assert m["per_class"][c]["support"] == sup[i]
    rows = np.asarray(m["confusion_normalized"])
    np.testing.assert_allclose(rows.sum(1), 1.0, atol=1e-12)
    assert m["n"] == 300


def test_uar_hand_made_imbalanced():
    # 8 'a' all right, 2 'b' one right: accuracy 0.9, UAR (1 + 0.5) / 2 = 0.75
    y = ["a"] * 8 + ["b"] * 2
    p = ["a"] * 8 + ["b", "a"]
    m = classification_metrics(y, p)
    assert m["accuracy"] == pytest.approx(0.9)
    assert m["uar"] == pytest.approx(0.75)
    # always predicting the majority class: UAR = chance = 1/2 despite accuracy 0.8
    m2 = classification_metrics(y, ["a"] * 10)
    assert m2["uar"] == pytest.approx(0.5) and m2["accuracy"] == pytest.approx(0.8)


def test_uar_ignores_classes_absent_from_reference():
    # a LOSO fold without any 'c': UAR averages over a and b only
    m = classification_metrics(["a", "b"], ["a", "c"], classes=["a", "b", "c"])
    assert m["uar"] == pytest.approx(0.5)
    assert m["per_class"]["c"]["support"] == 0


def test_integer_labels_index_into_class_names():
    m = classification_metrics([0, 1, 2], [0, 2, 2], classes=["x", "y", "z"])
    assert m["confusion"] == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]
    assert list(m["per_class"]) == ["x", "y", "z"]


def test_ece_hand_made():
    # bin (0.8, 0.867]: conf 0.85 x2, 1 right -> |0.5 - 0.85| = 0.35, weight 0.5
    # bin (0.6, 0.667]: conf 0.65 x2, 2 right -> |1 - 0.65| = 0.35, weight 0.5
    conf = np.array([0.85, 0.85, 0.65, 0.65])
    ok = np.array([1, 0, 1, 1])
    assert expected_calibration_error(conf, ok) == pytest.approx(0.35, abs=1e-12)
    # perfectly calibrated bins give 0
    conf = np.full(10, 0.7)
    ok = np.array([1] * 7 + [0] * 3)
    assert expected_calibration_error(conf, ok) == pytest.approx(0.0, abs=1e-12)


def test_confidence_stats_and_ece_from_probs():
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.6, 0.4], [0.2, 0.8]])
    y = ["a", "b", "b", "a"]
    p = ["a", "b", "a", "b"]
    m = classification_metrics(y, p, probs=probs, classes=["a", "b"])
    assert m["mean_confidence_correct"] == pytest.approx(0.8)
    assert m["mean_confidence_wrong"] == pytest.approx(0.7)
    expected = expected_calibration_error(np.array([0.9, 0.7, 0.6, 0.8]), np.array([1, 1, 0, 0]))
    assert m["ece"] == pytest.approx(expected)
    with pytest.raises(DataError, match="probs has shape"):
        classification_metrics(y, p, probs=probs[:, :1], classes=["a", "b"])


def test_errors_name_the_problem():
    with pytest.raises(DataError, match="y_true has 2 labels but y_pred has 1"):
        classification_metrics(["a", "b"], ["a"])
    with pytest.raises(DataError, match="not one of the classes"):
        classification_metrics(["a", "q"], ["a", "a"], classes=["a", "b"])


def test_multilabel_against_sklearn():
    rng = np.random.default_rng(0)
    y = (rng.random((200, 4)) < 0.4).astype(int)
    s = np.clip(y * 0.4 + rng.random((200, 4)) * 0.7, 0, 1)
    m = multilabel_metrics(y, s, names=["a", "b", "c", "d"])
    for j, name in enumerate("abcd"):
        assert m["per_label"][name]["auc"] == pytest.approx(sk.roc_auc_score(y[:, j], s[:, j]))
        assert m["per_label"][name]["f1"] == pytest.approx(sk.f1_score(y[:, j], s[:, j] >= 0.5))
    assert m["macro_auc"] == pytest.approx(sk.roc_auc_score(y, s, average="macro"))
    assert m["micro_f1"] == pytest.approx(sk.f1_score(y, s >= 0.5, average="micro"))
    # a constant column has no AUC and is left out of the macro mean
    y[:, 0] = 0
    m = multilabel_metrics(y, s)
    assert m["per_label"]["0"]["auc"] is None
    assert m["macro_auc"] == pytest.approx(
        np.mean([sk.roc_auc_score(y[:, j], s[:, j]) for j in (1, 2, 3)])
    )


def test_ccc_properties():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    x -= x.mean()  # with zero mean, negation is perfect discordance
    assert ccc(x, x) == pytest.approx(1.0)
    assert ccc(x, -x) == pytest.approx(-1.0)
    # a shift lowers CCC but not Pearson
    assert ccc(x, x + 1.0) < 0.7
    assert mae(x, x + 1.0) == pytest.approx(1.0)
    r = regression_metrics(np.c_[x, 2 * x], np.c_[x, 2 * x + 0.1], names=["v", "a"])
    assert r["per_dim"]["v"]["ccc"] == pytest.approx(1.0)
    assert r["per_dim"]["a"]["pearson"] == pytest.approx(1.0)
    assert r["per_dim"]["a"]["rmse"] == pytest.approx(0.1)


def test_eer_separated_inverted_and_random():
    rng = np.random.default_rng(0)
    tgt = rng.normal(3, 0.5, 200)
    non = rng.normal(-3, 0.5, 2000)
    scores = np.r_[tgt, non]
    labels = np.r_[np.ones(200), np.zeros(2000)]
    eer, thr = compute_eer(scores, labels)
    assert eer == 0.0 and non.max() < thr <= tgt.min()
    assert compute_eer(-scores, labels)[0] == 1.0
    # identical distributions: EER near 0.5
    s = rng.normal(size=4000)
    lab = rng.random(4000) < 0.5
    assert abs(compute_eer(s, lab)[0] - 0.5) < 0.05


def test_eer_matches_roc_crossing():
    rng = np.random.default_rng(1)
    labels = rng.random(3000) < 0.3
    scores = rng.normal(size=3000) + 1.5 * labels
    eer, _ = compute_eer(scores, labels)
    fpr, tpr, _ = sk.roc_curve(labels, scores, drop_intermediate=False)
    fnr = 1 - tpr
    i = np.argmin(np.abs(fnr - fpr))
    assert eer == pytest.approx((fnr[i] + fpr[i]) / 2, abs=2e-3)


def test_min_dcf():
    rng = np.random.default_rng(2)
    labels = rng.random(5000) < 0.5
    scores = rng.normal(size=5000) + 2.0 * labels
    dcf, _ = compute_min_dcf(scores, labels, p_target=0.05)
    assert 0.0 < dcf <= 1.0  # never worse than the trivial system
    sep = np.where(labels, 10.0, -10.0)
    assert compute_min_dcf(sep, labels)[0] == 0.0
    # a trivial (constant) system costs exactly the default cost
    assert compute_min_dcf(np.zeros(5000), labels, p_target=0.05)[0] == pytest.approx(1.0)
    with pytest.raises(DataError, match="target and non-target"):
        compute_eer(np.zeros(3), np.ones(3))
