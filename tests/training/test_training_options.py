"""Each training option runs end to end (one epoch on the tiny corpus) and does what it says."""

from __future__ import annotations

import itertools
import logging
import math

import pytest
import torch
from _training_helpers import tiny_overrides, write_corpus

from vocalis.errors import ConfigError
from vocalis.training import load_config, train
from vocalis.training.config import TrainConfig
from vocalis.training.optim import build_optimizer, build_scheduler, lr_factor


def _run(manifest, tmp_path, *extra, epochs=1):
    cfg = load_config(None, [*tiny_overrides(manifest, epochs), *extra])
    return train(cfg, tmp_path / "run", progress=False)


@pytest.mark.parametrize(
    "extra",
    [
        ("train.loss=focal", "train.focal_gamma=2.0", "train.class_weights=auto"),
        ("train.loss=aam", "model.params.head=cosine", "train.label_smoothing=0.1"),
        ("train.optimizer=sgd", "train.nesterov=true", "train.scheduler=onecycle"),
        (
            "train.optimizer=adamw",
            "train.scheduler=plateau",
            "train.monitor=val_loss",
            "train.mode=min",
        ),
        ("train.amp=true",),
        ("features.normalization=speaker", "train.bucketing=false"),
        (
            "features.normalization=utterance",
            "train.scheduler=cosine_restarts",
            "train.restart_epochs=1",
        ),
        ("dataset.val_protocol=stratified",),
    ],
    ids=[
        "focal",
        "aam",
        "sgd-onecycle",
        "adamw-plateau",
        "amp-bf16",
        "speaker-norm",
        "utt-norm",
        "stratified",
    ],
)
def test_option_trains(corpus, tmp_path, extra):
    result = _run(corpus, tmp_path, *extra)
    assert len(result.history) == 1
    assert torch.isfinite(torch.tensor(result.history[0]["train_loss"]))


def test_stratified_protocol_warns_speaker_dependent(corpus, tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        _run(corpus, tmp_path, "dataset.val_protocol=stratified")
    assert "speaker-dependent" in caplog.text


def test_monitor_epoch_keeps_the_last_epoch(corpus, tmp_path):
    """A fixed schedule: best.pt and the returned model are the final epoch's, whatever
    the validation split says (the default val_uar would keep its best epoch)."""
    result = _run(corpus, tmp_path, "train.monitor=epoch", "train.patience=1", epochs=3)
    assert result.best_epoch == 3 and len(result.history) == 3 and not result.stopped_early
    assert result.best_metrics["val_loss"] == pytest.approx(result.history[-1]["val_loss"])
    with pytest.raises(ConfigError, match=r"train\.mode: got 'min'"):
        TrainConfig(monitor="epoch", mode="min")
    with pytest.raises(ConfigError, match=r"train\.scheduler: got 'plateau'"):
        TrainConfig(monitor="epoch", scheduler="plateau")


def test_multitask_regression_on_va_head(tmp_path):
    manifest = write_corpus(
        tmp_path / "va",
        extra_columns={
            "valence": lambda s, lab, k: "0.5" if lab == "high" else "-0.5",
            "arousal": lambda s, lab, k: "" if k == 0 else str(0.1 * k),
        },
    )
    result = _run(
        manifest,
        tmp_path,
        "model.params.va_head=true",
        "train.multitask_lambda=0.5",
        "dataset.regression_columns=[valence,arousal]",
        "augment.mixup.p=1",
        "augment.mixup.alpha=0.3",
    )
    assert len(result.history) == 1
    from vocalis.errors import ModelError

    with pytest.raises(ModelError, match="extras"):
        _run(
            manifest,
            tmp_path / "no_head",
            "train.multitask_lambda=0.5",
            "dataset.regression_columns=[valence,arousal]",
        )


@pytest.mark.parametrize(
    "name", ["cosine", "cosine_restarts", "step", "none", "onecycle", "plateau"]
)
def test_schedulers_build_and_step(name):
    cfg = TrainConfig(epochs=3, lr=0.1, scheduler=name, step_epochs=1, restart_epochs=1)
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(1))], cfg)
    sched = build_scheduler(opt, cfg, steps_per_epoch=4)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if name == "plateau":
            sched.step(1.0)
        else:
            sched.step()
    if name == "cosine":  # half a cosine from lr to 0 over the 12 steps
        assert lrs == pytest.approx([0.05 * (1 + math.cos(math.pi * k / 12)) for k in range(12)])
    if name == "cosine_restarts":  # the same within each epoch of 4 steps, then a restart
        assert lrs == pytest.approx([0.05 * (1 + math.cos(math.pi * k / 4)) for k in range(4)] * 3)
    if name == "step":  # halved after every epoch (step_epochs=1)
        assert lrs == pytest.approx([0.1] * 4 + [0.05] * 4 + [0.025] * 4)
    if name == "none":
        assert lrs == [0.1] * 12
    if name == "onecycle":  # from lr up to max_lr = 10 * lr, then down to ~0
        peak = max(range(12), key=lrs.__getitem__)
        assert lrs[0] == pytest.approx(0.1) and 2 <= peak <= 4 and lrs[peak] > 0.95
        falling = lrs[peak:]
        assert all(a > b for a, b in itertools.pairwise(falling)) and lrs[-1] < 1e-3
    if name == "plateau":  # a metric that never improves: halved after patience (3) + 1 steps
        assert lrs == pytest.approx([0.1] * 5 + [0.05] * 4 + [0.025] * 3)


def test_warmup_is_linear():
    cfg = TrainConfig(epochs=4, lr=1.0, scheduler="none", warmup_epochs=2)
    assert [lr_factor(s, cfg, 2) for s in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]


def test_history_reports_the_lr_of_the_last_step(corpus, tmp_path):
    # one warm-up epoch ramps the lr from 0: the row must not say 0 (the epoch's start)
    over = [*tiny_overrides(corpus, epochs=2), "train.warmup_epochs=1", "train.scheduler=cosine"]
    result = train(load_config(None, over), tmp_path / "run", progress=False)
    lr = load_config(None, over).train.lr
    first, second = (row["lr"] for row in result.history)
    assert 0 < first <= lr and 0 < second < lr
