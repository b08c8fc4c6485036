"""The functionals-ensemble recipe end to end on a tiny synthetic corpus."""

from __future__ import annotations

import numpy as np
import pytest

from vocalis.data import Manifest
from vocalis.ensemble.linear import LinearConfig
from vocalis.ensemble.loso import loso_ensemble
from vocalis.ensemble.recipe import (
    EnsembleConfig,
    MemberConfig,
    run_fold,
    run_fold_arrays,
    speed_perturb,
)
from vocalis.errors import ConfigError, DataError
from vocalis.features.functionals import FunctionalsConfig
from vocalis.testing import synth_speechlike, write_wav

MEMBERS = (
    MemberConfig(
        FunctionalsConfig("lld_stats", lld="mfcc_pitch"),
        LinearConfig(c_grid=(0.01, 1.0)),
        speed_factors=(0.9,),
    ),
    MemberConfig(
        FunctionalsConfig("lld_stats", lld="fbank", deltas=False),
        LinearConfig(classifier="logreg", c_grid=(0.1,)),
        speed_factors=(),
    ),
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """3 speakers x 2 classes ("low": f0 110 Hz, "high": f0 220 Hz) x 3 utterances."""
    root = tmp_path_factory.mktemp("synth")
    rows = []
    for s, spk_shift in enumerate((1.0, 1.1, 0.92)):
        for label, f0 in (("low", 110.0), ("high", 220.0)):
            for i in range(3):
                wav = synth_speechlike(0.4, f0=f0 * spk_shift, seed=100 * s + 10 * i + int(f0))
                path = write_wav(root / f"s{s}_{label}_{i}.wav", wav)
                rows.append({"path": str(path), "label": label, "speaker": f"s{s}"})
    return Manifest(rows)


def test_run_fold_predicts_held_out_speaker(corpus, tmp_path):
    speakers = np.array(corpus.speakers)
    train, test = np.flatnonzero(speakers != "s2"), np.flatnonzero(speakers == "s2")
    cfg = EnsembleConfig(members=MEMBERS)
    result = run_fold(corpus, train, test, cfg, cache_dir=tmp_path / "cache")
    assert result.classes == ("high", "low")
    assert result.proba.shape == (len(test), 2)
    np.testing.assert_allclose(result.proba.sum(1), 1.0, atol=1e-9)
    truth = np.array([result.classes.index(corpus.labels()[i]) for i in test])
    assert (result.proba.argmax(1) == truth).mean() >= 5 / 6
    assert abs(sum(result.weights) - 1) < 1e-9 and len(result.chosen_c) == 2
    assert any((tmp_path / "cache").rglob("*.vfeat"))  # features were cached


def test_speaker_leak_is_refused():
    x = [np.zeros((4, 3))]
    with pytest.raises(DataError, match="both train and test"):
        run_fold_arrays(
            x,
            [[]],
            np.array([0, 1, 0, 1]),
            np.array(["a", "a", "b", "b"]),
            np.array([0, 1, 2]),
            np.array([3]),
            EnsembleConfig(members=(MemberConfig(speed_factors=()),)),
        )


def test_loso_speaker_norm_pools_every_row(corpus):
    cfg = EnsembleConfig(members=MEMBERS[1:], normalization="speaker_norm")
    result = loso_ensemble(corpus, cfg)
    assert result.proba.shape == (len(corpus), 2)
    assert [f["speaker"] for f in result.folds] == ["s0", "s1", "s2"]
    assert result.pooled_uar >= 0.8


def test_speed_perturb_scales_pitch_and_length():
    sr = 16000
    t = np.arange(sr) / sr
    tone = np.sin(2 * np.pi * 200 * t).astype(np.float32)
    fast = speed_perturb(tone, sr, 1.1)
    assert len(fast) == round(sr / 1.1)
    spectrum = np.abs(np.fft.rfft(fast, n=sr))
    assert abs(np.argmax(spectrum) - 220) <= 1  # 200 Hz played 1.1x faster


def test_config_errors():
    with pytest.raises(ConfigError, match="speed_factors"):
        MemberConfig(speed_factors=(1.0,))
    with pytest.raises(ConfigError, match="normalization"):
        EnsembleConfig(normalization="global")
    with pytest.raises(ConfigError, match="members"):
        EnsembleConfig(members=())


def test_test_speaker_copies_and_labels_are_never_read():
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 12)
    speakers = np.repeat(["a", "b", "c", "d"], 6)
    x = rng.normal(size=(24, 5)) + 3 * y[:, None]
    aug = x + rng.normal(scale=0.1, size=x.shape)
    train, test = np.flatnonzero(speakers != "d"), np.flatnonzero(speakers == "d")
    aug[test] = np.nan  # a leak of the test speaker's copies would give NaN
    y_leak = y.copy()
    y_leak[test] = 1 - y[test]  # and a leak of its labels would flip predictions
    cfg = EnsembleConfig(
        members=(MemberConfig(linear=LinearConfig(c_grid=(0.1,)), speed_factors=(0.9,)),) * 2,
        fusion_resolution=0,
    )
    proba, info = run_fold_arrays([x, x], [[aug], [aug]], y_leak, speakers, train, test, cfg)
    assert np.isfinite(proba).all() and info["weights"] == (0.5, 0.5)
    assert (proba.argmax(1) == y[test]).all()
