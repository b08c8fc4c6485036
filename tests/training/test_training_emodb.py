"""Integration: tier1 on a subset of real EmoDB with speaker-independent validation."""

from __future__ import annotations

import json
import time

import pytest

from vocalis.testing import EMODB_SKIP_REASON, emodb_root

ROOT = emodb_root()


@pytest.mark.emodb
@pytest.mark.skipif(ROOT is None, reason=EMODB_SKIP_REASON)
def test_tier1_one_epoch_on_emodb_subset(tmp_path):
    from vocalis.data import prepare
    from vocalis.training import load_config, train

    full = prepare("emodb", ROOT)
    keep = [i for i, s in enumerate(full.speakers) if s in {"03", "08", "09", "10", "12"}]
    subset = full.select(keep)
    cfg = load_config(
        "configs/recipes/emodb_tier1.yaml",
        [
            "train.epochs=1",
            "train.batch_size=16",
            "train.warmup_epochs=0",
            "features.cache_dir=null",
            "model.params.channels=[32,64]",
            "model.params.lstm_hidden=32",
            "model.params.lstm_layers=1",
            "model.params.pooling_hidden=32",
            "dataset.val_fraction=0.2",
        ],
    )
    t0 = time.perf_counter()
    result = train(cfg, tmp_path / "run", manifest=subset, progress=False)
    seconds = time.perf_counter() - t0
    assert seconds < 60, f"took {seconds:.1f} s"
    assert len(result.history) == 1 and len(result.classes) == 7
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["n_rows"]["train"] + metrics["n_rows"]["val"] == len(subset)
    log = (tmp_path / "run" / "log.txt").read_text()
    val_line = next(line for line in log.splitlines() if line.startswith("Validation speakers"))
    held = val_line.split(":")[1].split("(")[0].replace(",", " ").split()
    assert len(held) == 1  # one of five speakers held out, so validation is speaker-independent
    assert "none of them in training" in val_line
    spk = subset.speakers
    assert metrics["n_rows"]["val"] == sum(s == held[0] for s in spk)
    assert 0.0 <= result.best_metrics["val_uar"] <= 1.0
