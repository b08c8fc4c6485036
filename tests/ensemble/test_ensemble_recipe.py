"""The functionals-ensemble recipe end to end on a tiny synthetic corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vocalis.data import Manifest
from vocalis.ensemble.linear import LinearConfig, speaker_standardise
from vocalis.ensemble.recipe import EnsembleConfig, MemberConfig, fit_ensemble, speed_perturb
from vocalis.ensemble.recipe_file import EnsembleRecipe
from vocalis.errors import ConfigError, DataError
from vocalis.features.functionals import FunctionalsConfig
from vocalis.testing import synth_speechlike, write_wav
from vocalis.training.ensemble_estimator import EnsembleEstimator

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


def test_fit_predicts_held_out_speaker_and_writes_a_run_folder(corpus, tmp_path):
    speakers = np.array(corpus.speakers)
    train, test = np.flatnonzero(speakers != "s2"), np.flatnonzero(speakers == "s2")
    recipe = EnsembleRecipe(
        ensemble=EnsembleConfig(members=MEMBERS), cache_dir=str(tmp_path / "cache")
    )
    est = EnsembleEstimator(recipe)
    fitted = est.fit(corpus, train, train[:0], tmp_path / "run")
    assert fitted.classes == ("high", "low")
    proba = fitted.predict_proba(corpus, test)
    assert proba.shape == (len(test), 2)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-9)
    truth = np.array([fitted.classes.index(corpus.labels()[i]) for i in test])
    assert (proba.argmax(1) == truth).mean() >= 5 / 6
    assert abs(sum(fitted.info["weights"]) - 1) < 1e-3 and len(fitted.info["chosen_c"]) == 2
    assert any((tmp_path / "cache").rglob("*.vfeat"))  # features were cached
    for name in ("config.yaml", "env.json", "log.txt", "label_map.json", "metrics.json"):
        assert (tmp_path / "run" / name).is_file(), name
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (metrics["kind"], metrics["model"]) == ("train", "ensemble")
    assert metrics["n_rows"]["train"] == len(train) and metrics["classes"] == ["high", "low"]
    assert metrics["details"]["ensemble"]["weights"] == fitted.info["weights"]
    assert json.loads((tmp_path / "run" / "label_map.json").read_text())["classes"] == [
        "high",
        "low",
    ]
    with pytest.raises(DataError, match="inner leave-one-speaker-out"):
        est.fit(corpus, train, test, None)


def test_fit_reads_only_the_training_rows(corpus, monkeypatch):
    import vocalis.training.ensemble_estimator as estimator_module

    seen = []
    real = estimator_module.functional_table

    def spy(paths, config, speed=1.0, cache_dir=None):
        seen.extend((p, speed) for p in paths)
        return real(paths, config, speed, cache_dir)

    monkeypatch.setattr(estimator_module, "functional_table", spy)
    speakers = np.array(corpus.speakers)
    train, test = np.flatnonzero(speakers != "s1"), np.flatnonzero(speakers == "s1")
    est = EnsembleEstimator(EnsembleRecipe(ensemble=EnsembleConfig(members=MEMBERS)))
    fitted = est.fit(corpus, train, train[:0], None)
    test_paths = {corpus.paths[i] for i in test}
    assert seen and not {p for p, _ in seen} & test_paths  # no test audio, no test copy
    fitted.predict_proba(corpus, test)
    assert {p for p, f in seen if p in test_paths} == test_paths  # originals only
    assert {f for p, f in seen if p in test_paths} == {1.0}


def test_loso_speaker_norm_pools_every_row(corpus, tmp_path):
    from vocalis.evaluation.crossval import loso

    recipe = EnsembleRecipe(
        ensemble=EnsembleConfig(members=MEMBERS[1:], normalization="speaker_norm")
    )
    cv = loso(recipe, tmp_path / "cv", manifest=corpus)
    assert cv["pooled"]["n"] == len(corpus) and cv["n_finished"] == 3
    assert cv["fold_names"] == ["speaker_s0", "speaker_s1", "speaker_s2"]
    assert cv["pooled"]["uar"] >= 0.8


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


def test_speaker_norm_standardises_each_predicted_speaker():
    rng = np.random.default_rng(0)
    y = np.tile([0, 1], 12)
    speakers = np.repeat(["a", "b", "c", "d"], 6)
    x = rng.normal(size=(24, 5)) + 3 * y[:, None]
    aug = x + rng.normal(scale=0.1, size=x.shape)
    shifted = x + 10.0 * np.repeat(np.arange(4), 6)[:, None]  # a per-speaker offset
    member = MemberConfig(linear=LinearConfig(c_grid=(0.1,)), speed_factors=(0.9,))
    cfg = EnsembleConfig(members=(member, member), fusion_resolution=0)
    fit = fit_ensemble([x, x], [[aug], [aug]], y, speakers, cfg)
    assert fit.weights == (0.5, 0.5) and fit.n_classes == 2
    assert (fit.predict_proba([x, x]).argmax(1) == y).all()  # online: no speakers needed
    sn_cfg = EnsembleConfig(members=(member,), normalization="speaker_norm")
    sn = fit_ensemble([shifted], [[shifted + aug - x]], y, speakers, sn_cfg)
    new = x[:6] + 100.0  # an unseen speaker with a large offset: its own statistics remove it
    proba = sn.predict_proba([new], np.array(["e"] * 6))
    assert (proba.argmax(1) == y[:6]).all()
    expected = sn.members[0].predict_proba(speaker_standardise(new, np.array(["e"] * 6)))
    np.testing.assert_allclose(proba, expected)
    with pytest.raises(DataError, match="speaker column"):
        sn.predict_proba([new])
