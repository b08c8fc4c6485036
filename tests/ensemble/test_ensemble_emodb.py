"""The functionals ensemble on real EmoDB speakers (skipped without the corpus)."""

from __future__ import annotations

import numpy as np
import pytest

from vocalis.ensemble.linear import LinearConfig, pooled_uar
from vocalis.ensemble.recipe import EnsembleConfig, MemberConfig
from vocalis.ensemble.recipe_file import EnsembleRecipe
from vocalis.features.functionals import FunctionalsConfig
from vocalis.testing import emodb_root
from vocalis.training.ensemble_estimator import EnsembleEstimator


def _unseen_speaker_uar(functionals: FunctionalsConfig, linear: LinearConfig) -> float:
    """Train one member on speakers 03, 08, 09 and return its UAR on speaker 10."""
    from vocalis.data import prepare

    manifest = prepare("emodb", emodb_root())
    keep = [i for i, s in enumerate(manifest.speakers) if s in ("03", "08", "09", "10")]
    manifest = manifest.select(keep)
    speakers = np.array(manifest.speakers)
    train, test = np.flatnonzero(speakers != "10"), np.flatnonzero(speakers == "10")
    member = MemberConfig(functionals, linear, speed_factors=())
    recipe = EnsembleRecipe(ensemble=EnsembleConfig(members=(member,)))
    fitted = EnsembleEstimator(recipe).fit(manifest, train, train[:0], None)
    truth = np.array([fitted.classes.index(manifest.labels()[i]) for i in test])
    return pooled_uar(truth, fitted.predict_proba(manifest, test).argmax(1))


@pytest.mark.emodb
def test_fbank_statistics_recognise_an_unseen_emodb_speaker():
    uar = _unseen_speaker_uar(
        FunctionalsConfig("lld_stats", lld="fbank", deltas=False), LinearConfig(c_grid=(1e-3,))
    )
    # 7 classes (chance 0.14), 3 training speakers only: measured 0.42
    assert uar > 0.3


@pytest.mark.emodb
def test_pretrained_ge2e_statistics_recognise_an_unseen_emodb_speaker():
    uar = _unseen_speaker_uar(
        FunctionalsConfig("ge2e_stats", layers=(2,)),
        LinearConfig(c_grid=(1e-4, 1e-3, 1e-2, 1e-1), balanced=True),
    )
    # 7 classes (chance 0.14), 3 training speakers, 38 test clips: measured 0.65
    assert uar > 0.45
