"""``tracking=tensorboard`` / ``tracking=wandb`` (offline): files written beside history.csv."""

from __future__ import annotations

import sys

import pytest
from _training_helpers import tiny_overrides

from vocalis.errors import ConfigError
from vocalis.training import load_config, train
from vocalis.training.tracking import TrackingConfig, open_tracker


def test_tensorboard_gets_every_epoch_and_the_test_metrics(corpus, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = load_config(
        None,
        [*tiny_overrides(corpus, epochs=2), "tracking=tensorboard", "tracking.log_every_steps=1"],
    )
    out = tmp_path / "run"
    result = train(cfg, out, test_indices=[0, 1, 2, 3], progress=False)
    assert (out / "history.csv").is_file()  # the CSV history is always there
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert {"train/loss", "train/acc", "val/uar", "lr", "step/train_loss", "test/uar"} <= set(tags)
    assert [e.step for e in events.Scalars("val/uar")] == [1, 2]
    uar = [e.value for e in events.Scalars("val/uar")]
    assert uar == pytest.approx([h["val_uar"] for h in result.history], abs=1e-6)
    assert events.Scalars("test/uar")[0].value == pytest.approx(result.test_metrics["uar"])
    steps = [e.step for e in events.Scalars("step/train_loss")]  # every optimiser step
    assert steps == list(range(1, len(steps) + 1)) and len(steps) % 2 == 0 and steps


def test_wandb_offline_writes_a_run_without_network(corpus, tmp_path, monkeypatch):
    pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DISABLE_GIT", "true")
    cfg = load_config(None, [*tiny_overrides(corpus, epochs=1), "tracking=wandb"])
    out = tmp_path / "run"
    train(cfg, out, progress=False)
    runs = list((out / "wandb").glob("wandb/offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
    run_id = (out / "wandb" / "run_id").read_text().strip()
    assert runs[0].name.endswith(run_id)


def test_a_missing_tracker_package_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # import wandb -> ImportError
    with pytest.raises(ConfigError, match=r"pip install 'vocalis\[tracking\]'"):
        open_tracker(TrackingConfig(backend="wandb"), tmp_path)
    assert type(open_tracker(TrackingConfig(backend="wandb"), None)).__name__ == "NullTracker"
    with pytest.raises(ConfigError, match="log_every_steps"):
        TrackingConfig(log_every_steps=-1)
