"""The functionals ensemble on real EmoDB speakers (skipped without the corpus)."""

from __future__ import annotations

import numpy as np
import pytest

from vocalis.ensemble.linear import LinearConfig, pooled_uar
from vocalis.ensemble.recipe import EnsembleConfig, MemberConfig, run_fold
from vocalis.features.functionals import FunctionalsConfig
from vocalis.testing import emodb_root


@pytest.mark.emodb
def test_fbank_statistics_recognise_an_unseen_emodb_speaker():
    from vocalis.data import prepare

    manifest = prepare("emodb", emodb_root())
    keep = [i for i, s in enumerate(manifest.speakers) if s in ("03", "08", "09", "10")]
    manifest = manifest.select(keep)
    speakers = np.array(manifest.speakers)
    train, test = np.flatnonzero(speakers != "10"), np.flatnonzero(speakers == "10")
    member = MemberConfig(
        FunctionalsConfig("lld_stats", lld="fbank", deltas=False),
        LinearConfig(c_grid=(1e-3,)),
        speed_factors=(),
    )
    result = run_fold(manifest, train, test, EnsembleConfig(members=(member,)))
    truth = np.array([result.classes.index(manifest.labels()[i]) for i in test])
    # 7 classes (chance 0.14), 3 training speakers only: measured 0.42
    assert pooled_uar(truth, result.proba.argmax(1)) > 0.3
