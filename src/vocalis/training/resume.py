"""Resuming: what a run checkpoint holds, and how a run folder continues from it.

An existing run folder resumes from ``checkpoints/last.pt`` when its
``config.yaml`` matches (only :data:`~vocalis.training.config.RESUMABLE_KEYS` may
change); :func:`restore` puts weights, optimiser, schedule, scaler, counters and
the RNG state back, so the resumed run draws exactly the numbers of an
uninterrupted one.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any, NoReturn

from vocalis.config import to_dict
from vocalis.errors import ConfigError, DataError, ModelError, VocalisError
from vocalis.training.config import RESUMABLE_KEYS, ExperimentConfig, config_diff, from_raw
from vocalis.training.runfolder import RunFolder
from vocalis.training.state import rng_state, set_rng_state

if TYPE_CHECKING:
    import torch

    from vocalis.checkpoint import Checkpoint
    from vocalis.training.distributed import DistInfo
    from vocalis.training.prepared import PreparedData
    from vocalis.training.session import Session


def check_resume(run: RunFolder, cfg: ExperimentConfig) -> None:
    """Raise when ``run`` was made with another config than ``cfg``.

    Raises:
        ConfigError: the first differing key (old -> new value) and the remedies.
    """
    old = run.read_config()
    if old is None:
        return
    # keys added to the config since the run was made take their defaults; a config
    # that no longer validates is compared as stored (the first differing key is named)
    with contextlib.suppress(VocalisError):
        old = to_dict(from_raw(old))
    new = to_dict(cfg)
    diff = [k for k in config_diff(old, new) if k not in RESUMABLE_KEYS]
    if diff:

        def get(d: dict, key: str) -> Any:
            for part in key.split("."):
                d = d.get(part) if isinstance(d, dict) else None
            return d

        more = f" and {len(diff) - 1} more key(s)" if len(diff) > 1 else ""
        raise ConfigError(
            f"{run.path}: this run folder was made with another config ({diff[0]}: "
            f"{get(old, diff[0])!r} -> {get(new, diff[0])!r}{more}); rerun with the same config to "
            "resume, pass --overwrite to start over, or choose another --out"
        )


def open_run(
    cfg: ExperimentConfig, out_dir: str | os.PathLike | None, overwrite: bool, dist: DistInfo
) -> tuple[RunFolder, Checkpoint | None]:
    """The run folder, and its ``last.pt`` when it resumes (checked against ``cfg``).

    Raises:
        ConfigError: the folder was made with another config.
        ModelError: its checkpoint is of another model.
    """
    from vocalis.checkpoint import load_checkpoint

    run = RunFolder(out_dir, active=dist.is_main)
    resume: Checkpoint | None = None
    if run.exists() and not overwrite:
        check_resume(run, cfg)
        if run.last is not None and run.last.is_file():
            resume = load_checkpoint(run.last)
            if resume.model.name != cfg.model.name:
                raise ModelError(
                    f"{run.last}: checkpoint of model '{resume.model.name}', the config asks "
                    f"for '{cfg.model.name}'; pass --overwrite to start over"
                )
    return run, resume


def check_labels(run: RunFolder, resume: Checkpoint | None, data: PreparedData) -> None:
    """Raise :class:`DataError` when a resumed run was trained on other classes."""
    if resume is not None and resume.labels != data.encoder:
        raise DataError(
            f"{run.last}: the run was trained on classes {list(resume.classes)}, "
            f"the data now gives {list(data.encoder.classes)}; restore the manifest or pass "
            "--overwrite"
        )


def restore(s: Session, ckpt: Checkpoint) -> None:
    """Load weights, optimiser, schedule, counters and RNG state from a run checkpoint.

    Raises:
        ModelError: the checkpoint's weights or optimiser do not fit this model.
    """
    parts, st = s.parts, s.state
    resume = ckpt.training
    try:
        parts.model.load_state_dict(ckpt.model_state)
        parts.optimizer.load_state_dict(resume["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        first = str(err).splitlines()[0]
        raise ModelError(
            f"{s.run.last}: cannot resume, its weights do not fit this model ({first}); "
            "pass --overwrite to start over"
        ) from None
    parts.scheduler.load_state_dict(resume["scheduler"])
    if resume.get("scaler"):
        parts.scaler.load_state_dict(resume["scaler"])
    parts.stopper.load_state_dict(resume.get("best") or {})
    st.history = list(resume.get("history") or [])
    st.start_epoch = int(resume["epoch"])
    st.skip = int(resume.get("epoch_step", 0))
    st.global_step = int(resume.get("step", 0))
    st.partial = resume.get("partial")
    st.epoch_lr = float(resume.get("epoch_lr") or parts.optimizer.param_groups[0]["lr"])
    st.best_val = dict(resume.get("best_val") or {})
    set_rng_state(resume.get("rng") or {})


def payload(s: Session, extra: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint of the unwrapped model, its pipeline and labels, plus ``extra`` keys."""
    cfg, data, model = s.cfg, s.data, s.raw_model
    return {
        "model": {
            "kind": "neural",
            "name": cfg.model.name,
            "config": to_dict(model.config),
            "input_dim": data.feature_dim,
            "num_classes": len(data.encoder.classes) if data.heads is None else data.layout.sizes,
            "heads": None
            if data.report_heads is None
            else [h.to_dict() for h in data.report_heads],
        },
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "pipeline": to_dict(cfg.features.pipeline),
        "normalization": data.normalizer.state(),
        "labels": data.encoder.to_dict(),
        "config": to_dict(cfg),
        **extra,
    }


def training_state(
    s: Session, epoch: int, epoch_step: int, part: list[float] | None, done: bool
) -> dict[str, Any]:
    """What a checkpoint needs to resume at step ``epoch_step`` of 0-based ``epoch``."""
    parts, st = s.parts, s.state
    return {
        "optimizer": parts.optimizer.state_dict(),
        "scheduler": parts.scheduler.state_dict(),
        "scaler": parts.scaler.state_dict(),
        "epoch": epoch,
        "step": st.global_step,
        "epoch_step": epoch_step,
        "partial": part,
        "epoch_lr": st.epoch_lr,
        "rng": rng_state(),
        "best": parts.stopper.state_dict(),
        "best_val": st.best_val,
        "history": st.history,
        "finished": done,
    }


def save_checkpoints(s: Session, epoch: int, row: dict[str, Any] | None, improved: bool) -> None:
    """After 0-based ``epoch``: ``last.pt`` and, when it ``improved``, ``best.pt`` too.

    After an improving epoch the two are the same checkpoint (``best.pt`` adds
    the epoch's ``metrics``, which resuming ignores), so ``last.pt`` becomes a
    hard link to ``best.pt`` where the file system allows
    (:func:`~vocalis.checkpoint.link_checkpoint`): one copy on disk, and resuming
    from it restores exactly what a separate copy would.
    """
    from vocalis.checkpoint import link_checkpoint, save_checkpoint

    run, tc = s.run, s.cfg.train
    done = s.parts.stopper.should_stop or epoch + 1 == tc.epochs
    state = training_state(s, epoch + 1, 0, None, done)
    if improved:  # best.pt can resume too, like last.pt
        save_checkpoint(run.best, payload(s, {**state, "metrics": dict(row or {})}))
        if link_checkpoint(run.best, run.last):
            return
    save_checkpoint(run.last, payload(s, state))


def stop_mid_epoch(
    s: Session, epoch: int, step: int, sums: list[float], signum: int = 2
) -> NoReturn:
    """Save ``last.pt`` at step ``step`` of 0-based ``epoch`` and raise ``Stopped``."""
    from vocalis.checkpoint import save_checkpoint

    if s.run.active:
        save_checkpoint(s.run.last, payload(s, training_state(s, epoch, step, sums, False)))
    interrupted(s.run, f"in epoch {epoch + 1} after step {step}", signum)


def interrupted(run: RunFolder, where: str, signum: int = 2) -> NoReturn:
    """Log where the run stopped (``last.pt`` is saved) and raise :class:`~vocalis.signals.Stopped`.

    The CLI prints the message as its one line and exits ``128 + signum``.
    """
    from vocalis.signals import Stopped

    message = f"interrupted {where}; saved {run.last}; rerun the same command to resume"
    run.log(message, echo=False)
    raise Stopped(signum, message)


def load_best(s: Session) -> None:
    """Load the best weights into the unwrapped model (from ``best.pt`` for a finished run)."""
    from vocalis.checkpoint import load_checkpoint

    best, st = s.run.best, s.state
    if st.best_state is None and best is not None and best.is_file():
        st.best_state = load_checkpoint(best).model_state  # a resumed, finished run
    if st.best_state is not None:
        s.raw_model.load_state_dict(st.best_state)


def best_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A CPU copy of ``model``'s weights (the best epoch's, kept in memory)."""
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def write_model(s: Session) -> None:
    """Write ``model.pt``: the slim deployable checkpoint of the best weights."""
    from vocalis.checkpoint import save_checkpoint, slim_checkpoint

    run = s.run
    fitted = bool(s.state.calibration) or any(h.kind == "multilabel" for h in s.data.heads or [])
    if run.best is not None and run.best.is_file() and not fitted:
        slim_checkpoint(run.best, run.model)
    elif run.best is not None and run.best.is_file():
        # Thresholds or temperatures fitted after training: the best weights with them.
        from vocalis.checkpoint import load_checkpoint

        facts = load_checkpoint(run.best).slim().training
        save_checkpoint(run.model, payload(s, dict(facts)))
    else:  # no epoch ever improved: ship the weights there are, without training state
        save_checkpoint(run.model, payload(s, {}))


__all__ = [
    "best_weights",
    "check_labels",
    "check_resume",
    "interrupted",
    "load_best",
    "open_run",
    "payload",
    "restore",
    "save_checkpoints",
    "stop_mid_epoch",
    "training_state",
    "write_model",
]
