"""The fitted ensemble as a torch module: primal SVMs equal scikit-learn, checkpoints round-trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vocalis.ensemble.linear import FunctionalClassifier, LinearConfig
from vocalis.ensemble.model import EnsembleModel, LinearMember, build_ensemble, save_ensemble
from vocalis.ensemble.recipe import EnsembleConfig, MemberConfig, fit_ensemble
from vocalis.errors import ModelError
from vocalis.features.functionals import FunctionalsConfig


def _data(k: int, n_per: int = 8, d: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(k), n_per)
    x = rng.normal(size=(len(y), d)) * rng.uniform(0.5, 3, d) + 1.5 * np.eye(k, d)[y] + 4.0
    spk = np.tile(np.arange(4), len(y) // 4 + 1)[: len(y)]
    return x, y, spk, rng.normal(size=(13, d)) * 2 + 4.0


@pytest.mark.parametrize("k", [2, 7])
@pytest.mark.parametrize(
    "linear",
    [
        LinearConfig(c_grid=(1e-3, 1e-1)),
        LinearConfig(c_grid=(1e-2,), balanced=True, temperature=0.5, clip=1.0),
        LinearConfig(classifier="logreg", c_grid=(0.1,), clip=0.0),
    ],
    ids=["svm", "svm-balanced-t0.5-clip1", "logreg"],
)
def test_primal_member_equals_sklearn(k, linear):
    x, y, spk, new = _data(k)
    clf = FunctionalClassifier(linear).fit(x, y, spk)
    member = LinearMember.from_primal(clf.primal())
    got = member(torch.from_numpy(new)).numpy()
    want = clf.predict_proba(new)
    assert got.shape == want.shape == (len(new), k)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    assert np.abs(got - want).max() < 1e-10  # float64 all the way: far below the tolerance
    assert not np.allclose(want, want[:1])  # the rows differ, so the check means something


def test_primal_member_with_a_class_absent_from_training():
    x, y, spk, new = _data(4)
    keep = y != 2
    clf = FunctionalClassifier(LinearConfig(c_grid=(0.1,))).fit(
        x[keep], y[keep], spk[keep], None, 4
    )
    got = LinearMember.from_primal(clf.primal())(torch.from_numpy(new)).numpy()
    np.testing.assert_allclose(got, clf.predict_proba(new), atol=1e-10)
    assert (got[:, 2] == 0).all()


MFCC_STATS = FunctionalsConfig("lld_stats", deltas=False)  # 440 values
PITCH_STATS = FunctionalsConfig("lld_stats", lld="pitch", deltas=False)


def _fit(normalization: str):
    """A 2-member ensemble fit on random functionals of the members' real sizes."""
    from vocalis.features.functionals import functionals_dim

    rng = np.random.default_rng(1)
    x, y, spk, _ = _data(3, n_per=12, d=functionals_dim(MFCC_STATS), seed=1)
    x2 = x[:, : functionals_dim(PITCH_STATS)] ** 2 + rng.normal(size=(len(y), 1))
    members = (
        MemberConfig(MFCC_STATS, LinearConfig(c_grid=(1e-2, 1.0)), (0.9,)),
        MemberConfig(PITCH_STATS, LinearConfig(classifier="logreg", c_grid=(0.1,)), ()),
    )
    config = EnsembleConfig(members=members, normalization=normalization, fusion_resolution=4)
    aug = [[x + rng.normal(scale=0.1, size=x.shape)], []]
    return fit_ensemble([x, x2], aug, y, spk.astype(str), config), [x, x2], spk


@pytest.mark.parametrize("normalization", ["online", "speaker_norm"])
def test_module_equals_the_fitted_ensemble(normalization):
    fit, tables, spk = _fit(normalization)
    model = EnsembleModel.from_fit(fit)
    speakers = spk.astype(str) if normalization == "speaker_norm" else None
    want = fit.predict_proba(tables, speakers)
    got = model.proba_from_functionals([torch.from_numpy(t) for t in tables], speakers).numpy()
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    assert np.abs(got - want).max() < 1e-10
    assert torch.allclose(model.fusion_weights.sum(), torch.tensor(1.0, dtype=torch.float64))


def test_checkpoint_round_trip_is_weights_only(tmp_path):
    from vocalis.checkpoint import load_checkpoint
    from vocalis.data import LabelEncoder

    fit, tables, _ = _fit("online")
    model = EnsembleModel.from_fit(fit)
    save_ensemble(tmp_path / "model.pt", model, LabelEncoder(["a", "b", "c"]), {"kind": "ensemble"})
    raw = torch.load(tmp_path / "model.pt", weights_only=True)  # no pickle needed
    assert raw["model"]["kind"] == "ensemble" and raw["pipeline"]["features"] is None
    assert raw["pipeline"]["tier0"]["normalize"] == "none"
    assert all(isinstance(v, torch.Tensor) for v in raw["model_state"].values())
    ckpt = load_checkpoint(tmp_path / "model.pt")
    again = build_ensemble(ckpt)
    x = [torch.from_numpy(t) for t in tables]
    assert torch.equal(again.proba_from_functionals(x), model.proba_from_functionals(x))
    from vocalis.inference.kinds import kind_builder

    assert isinstance(kind_builder("ensemble")(ckpt), EnsembleModel)
    ckpt.model_state.pop("members.1.weight")
    with pytest.raises(ModelError, match=r"member 1 lacks members\.1\.weight"):
        build_ensemble(ckpt)


def test_speaker_norm_needs_speakers_and_opensmile_members_refuse_export():
    model = EnsembleModel.from_fit(_fit("speaker_norm")[0])
    wav, lengths = torch.randn(2, 8000) * 0.1, torch.tensor([8000, 6000])
    with pytest.raises(ModelError, match=r"speaker_norm.*speaker column.*online recipe") as err:
        model(wav, lengths)
    assert "\n" not in str(err.value)
    probs = model.predict_speakers(wav, lengths, ["a", "a"])
    assert probs.shape == (2, 3) and torch.allclose(probs.sum(1), torch.ones(2))
    compare = EnsembleModel(
        [FunctionalsConfig("compare_2016")], [_member(6373)], torch.ones(1), "online"
    )
    assert model.needs_speakers and not compare.needs_speakers
    with pytest.raises(ModelError, match=r"exported: its compare_2016.*opensmile") as err:
        torch.jit.trace(compare, (wav, lengths), check_trace=False)
    assert "\n" not in str(err.value) and "vocalis serve" in str(err.value)
    with pytest.raises(ModelError, match="clip by clip"):  # never a graph frozen to 2 lengths
        torch.jit.trace(model, (wav, lengths), check_trace=False)


def _member(d: int) -> LinearMember:
    zeros = torch.zeros(d, dtype=torch.float64)
    weight = torch.zeros(1, d, dtype=torch.float64)
    return LinearMember("svm", zeros, zeros + 1, weight, torch.zeros(1), torch.tensor([0, 1]),
                        5.0, 1.0, 2)  # fmt: skip


def test_member_sizes_must_fit_their_functionals():
    from vocalis.errors import ConfigError

    with pytest.raises(ConfigError, match=r"member 0.*440 functionals.*reads 12"):
        EnsembleModel([MFCC_STATS], [_member(12)], torch.ones(1))


def test_saved_ensemble_predicts_waveforms_as_the_fit(tmp_path):
    """fit -> model.pt -> load_pipeline -> tier 0 + module == FittedEnsemble.predict_proba."""
    from vocalis.data import Manifest
    from vocalis.ensemble.recipe_file import EnsembleRecipe
    from vocalis.inference import Predictor
    from vocalis.testing import synth_speechlike, write_wav
    from vocalis.training.ensemble_estimator import EnsembleEstimator

    rows = []
    for s, shift in enumerate((1.0, 1.1, 0.92)):
        for label, f0 in (("low", 110.0), ("high", 220.0)):
            for i in range(2):
                wav = synth_speechlike(0.3 + 0.1 * i, f0=f0 * shift, seed=10 * s + i + int(f0))
                path = write_wav(tmp_path / f"s{s}_{label}_{i}.wav", wav)
                rows.append({"path": str(path), "label": label, "speaker": f"s{s}"})
    manifest = Manifest(rows)
    members = (
        MemberConfig(MFCC_STATS, LinearConfig(c_grid=(1e-2, 1.0)), (1.1,)),
        MemberConfig(PITCH_STATS, LinearConfig(c_grid=(0.1,)), ()),
    )
    recipe = EnsembleRecipe(ensemble=EnsembleConfig(members=members, fusion_resolution=4))
    everything = np.arange(len(manifest))
    fitted = EnsembleEstimator(recipe).fit(manifest, everything, everything[:0], None)
    fitted.save(tmp_path / "model.pt")
    predictor = Predictor.from_checkpoint(tmp_path / "model")
    assert predictor.classes == ("high", "low") and predictor.info()["kind"] == "ensemble"
    got = [predictor.predict_file(p) for p in manifest.paths]
    got = np.array([[g.probs[c] for c in predictor.classes] for g in got])
    want = fitted.predict_proba(manifest, everything)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    batch = predictor.predict_many(manifest.paths, batch_size=4, progress=False)  # padded
    got = np.array([[p.probs[c] for c in predictor.classes] for p in batch])
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
