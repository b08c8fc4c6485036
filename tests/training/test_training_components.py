"""The training loop in parts: build_components can be adapted and trained as train() does."""

from __future__ import annotations

import pytest
import torch
from _training_helpers import tiny_overrides

from vocalis.checkpoint import load_checkpoint
from vocalis.training import load_config, train
from vocalis.training.components import build_components
from vocalis.training.distributed import DistInfo
from vocalis.training.engine import Engine, amp_dtype
from vocalis.training.prepared import prepare_data
from vocalis.training.resume import open_run
from vocalis.training.session import Session
from vocalis.training.state import seed_everything
from vocalis.training.trainer import run_training


def _prepared(cfg, run):
    seed_everything(cfg.train.seed)
    return prepare_data(cfg, None, (None, None, None), DistInfo(), run, False)


def test_default_components_train_exactly_like_train(corpus, tmp_path):
    cfg = load_config(None, tiny_overrides(corpus, 2))
    reference = train(cfg, tmp_path / "a", progress=False)
    run, last = open_run(cfg, tmp_path / "b", overwrite=False, dist=DistInfo())
    data = _prepared(cfg, run)
    parts = build_components(cfg, data, Engine(torch.device("cpu")))
    result = run_training(Session(cfg, run, data, Engine(torch.device("cpu")), parts), last)
    assert last is None and result.history[-1]["val_loss"] == reference.history[-1]["val_loss"]
    for k, v in reference.model.state_dict().items():
        assert torch.equal(v, result.model.state_dict()[k]), k


def test_parameter_groups_reach_the_optimiser_and_the_schedule(corpus, tmp_path):
    cfg = load_config(None, [*tiny_overrides(corpus, 2), "train.scheduler=cosine"])

    def groups(model):
        named = list(model.named_parameters())
        head = [p for n, p in named if n.startswith("head.")]
        rest = [p for n, p in named if not n.startswith("head.")]
        assert head and rest
        return [{"params": rest, "lr": cfg.train.lr / 10}, {"params": head}]

    run, last = open_run(cfg, tmp_path / "g", overwrite=False, dist=DistInfo())
    data = _prepared(cfg, run)
    engine = Engine(torch.device("cpu"))
    parts = build_components(cfg, data, engine, param_groups=groups)
    first, second = parts.optimizer.param_groups
    assert first["lr"] == pytest.approx(cfg.train.lr / 10) and second["lr"] == cfg.train.lr
    run_training(Session(cfg, run, data, engine, parts), last)
    lrs = [g["lr"] for g in parts.optimizer.param_groups]
    assert lrs[0] == pytest.approx(lrs[1] / 10)  # the cosine schedule scales both groups
    assert lrs[1] < cfg.train.lr
    ckpt = load_checkpoint(tmp_path / "g" / "model.pt")
    assert "optimizer" not in ckpt.training
    assert ckpt.model_state.keys() == parts.model.state_dict().keys()


def test_engine_precision_follows_the_device():
    assert amp_dtype(False, torch.device("cpu")) is None
    assert amp_dtype(True, torch.device("cpu")) == torch.bfloat16
    assert amp_dtype(True, torch.device("cuda", 0)) == torch.float16
    model = torch.nn.Linear(2, 2)
    assert Engine(torch.device("cpu")).wrap(model) is model  # no DDP in one process


@pytest.mark.parametrize(
    ("scheduler", "extra"),
    [("onecycle", ", schedule onecycle (from lr up to max_lr 0.004, then down)"), ("cosine", "")],
)
def test_the_run_log_gives_each_groups_base_rate_not_the_schedules_first_step(scheduler, extra):
    """A schedule scales the groups' rates when it is built (one-cycle over 2 steps jumps at
    once; warm-up starts low); the log line is about the configured rate."""
    from vocalis.training import optim
    from vocalis.training.components import describe_optimizer, describe_param_groups
    from vocalis.training.config import TrainConfig

    tc = TrainConfig(lr=1e-3, max_lr=4e-3, epochs=1, scheduler=scheduler, warmup_epochs=0.5)
    opt = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(3))], lr=tc.lr)
    optim.build_scheduler(opt, tc, steps_per_epoch=2)
    assert opt.param_groups[0]["lr"] != pytest.approx(tc.lr)  # the schedule moved it
    assert describe_param_groups(opt, tc.lr) == [
        "Parameter group 0: lr 0.001 (train.lr x 1), 3 parameters (3 trainable now)"
    ]
    assert extra in describe_optimizer(tc)
