"""FunctionalClassifier: inner-LOSO choice of C, honest out-of-fold outputs, reference."""

from __future__ import annotations

import numpy as np
import pytest

from vocalis.ensemble.linear import (
    FunctionalClassifier,
    LinearConfig,
    pooled_uar,
    speaker_standardise,
)
from vocalis.errors import ConfigError, DataError


def _blobs(n_per=10, speakers=4, k=3, d=30, shift=4.0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.tile(np.repeat(np.arange(k), n_per), speakers)
    spk = np.repeat(np.arange(speakers), k * n_per)
    x = rng.normal(size=(len(y), d)) + shift * np.eye(k, d)[y]
    x += rng.normal(scale=3.0, size=(speakers, d))[spk]  # speaker offsets
    return x, y, spk


@pytest.mark.parametrize("classifier", ["svm", "logreg"])
def test_separable_data_is_learned_and_probabilities_sum_to_one(classifier):
    x, y, spk = _blobs()
    clf = FunctionalClassifier(LinearConfig(classifier=classifier, c_grid=(0.01, 1.0))).fit(
        x, y, spk
    )
    p = clf.predict_proba(x)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-9)
    assert pooled_uar(y, p.argmax(1)) > 0.9
    assert set(clf.inner_uar_) == {0.01, 1.0} and clf.c_ in clf.inner_uar_


def test_inner_proba_is_out_of_fold():
    # pure-noise labels: training accuracy can be high, out-of-fold must be at chance
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 200))
    y = rng.integers(0, 2, 120)
    spk = np.repeat(np.arange(6), 20)
    clf = FunctionalClassifier(LinearConfig(c_grid=(10.0,))).fit(x, y, spk)
    assert pooled_uar(y, clf.predict(x)) > 0.95  # memorised
    assert pooled_uar(y, clf.inner_proba_.argmax(1)) < 0.7  # honest


def test_augmented_rows_train_but_are_never_validated():
    x, y, spk = _blobs()
    aug = np.zeros(len(y), bool)
    aug[::5] = True
    clf = FunctionalClassifier(LinearConfig(c_grid=(0.1,))).fit(x, y, spk, aug)
    assert np.isnan(clf.inner_proba_[aug]).all()
    assert not np.isnan(clf.inner_proba_[~aug]).any()


def test_speaker_standardise_removes_speaker_offsets():
    x, _, spk = _blobs()
    z = speaker_standardise(x, spk)
    for s in np.unique(spk):
        np.testing.assert_allclose(z[spk == s].mean(0), 0.0, atol=1e-9)
        np.testing.assert_allclose(z[spk == s].std(0), 1.0, atol=1e-9)


def test_svm_matches_sklearn_linear_svc_on_explicit_features():
    from sklearn.svm import SVC

    x, y, spk = _blobs(d=8)
    cfg = LinearConfig(c_grid=(0.1,), clip=0.0)
    ours = FunctionalClassifier(cfg).fit(x, y, spk).predict(x[:40])
    z = (x - x.mean(0)) / x.std(0)
    ref = SVC(kernel="linear", C=0.1).fit(z, y).predict(z[:40])
    assert (ours == ref).mean() == 1.0


def test_bad_input_and_config():
    x, y, spk = _blobs()
    with pytest.raises(DataError, match=">= 2"):
        FunctionalClassifier().fit(x, y, np.zeros(len(y)))
    with pytest.raises(DataError, match="equal lengths"):
        FunctionalClassifier().fit(x[:-1], y, spk)
    with pytest.raises(ConfigError, match="classifier"):
        LinearConfig(classifier="rf")
    with pytest.raises(ConfigError, match="c_grid"):
        LinearConfig(c_grid=(0.0,))
