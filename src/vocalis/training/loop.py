"""The step loop: epochs of seeded optimiser steps, stoppable at any step boundary.

Every step reseeds torch and the augmentation generator from
``(seed, epoch, step, rank)`` (:func:`~vocalis.training.state.step_seed`), so a run
resumed at any step draws exactly the numbers of an uninterrupted one. A stop
request (Ctrl-C, SIGTERM, ``VOCALIS_INTERRUPT_AFTER_STEPS``) finishes the current
step, saves ``last.pt`` with the position in the epoch and raises
``KeyboardInterrupt``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from vocalis.models import SpeechClassifier
from vocalis.training import resume, validation
from vocalis.training.losses import AAMSoftmax
from vocalis.training.session import NonFiniteLossError, Session
from vocalis.training.state import GracefulInterrupt, step_seed

if TYPE_CHECKING:
    from vocalis.training.data import Batch


def train_step(s: Session, epoch: int, step: int, batch: Batch, sums: list[float]) -> float:
    """Train on one batch, seeded by ``(seed, epoch, step, rank)``; add it to ``sums``.

    Args:
        s: the session.
        epoch: 0-based epoch.
        step: 0-based step in the epoch.
        batch: the batch (on the CPU).
        sums: ``[loss * n, correct, n, mixed correct]`` of the epoch so far (updated
            in place). ``correct`` counts predictions equal to the un-mixed targets
            (the "clean" training accuracy, also under mixup); ``mixed correct`` is
            mixup's own ``lam * [pred = y] + (1 - lam) * [pred = y[perm]]`` (0 without mixup).

    Returns:
        The learning rate of the step (of the first parameter group).

    Raises:
        NonFiniteLossError: the loss is NaN or infinite (the message names the remedies).
    """
    tc, parts, engine = s.cfg.train, s.parts, s.engine
    seed = step_seed(tc.seed, epoch, step, engine.dist.rank)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed ^ 0x5DEECE66D)
    batch = batch.to(engine.device)
    feats, lengths = batch.features, batch.lengths
    if parts.spec_noise is not None:  # noise first, so masked cells stay masked
        feats = parts.spec_noise(feats, lengths, gen)
    if parts.specaug is not None:
        feats = parts.specaug(feats, lengths, gen)
    mixed = None
    if batch.mix is not None:  # file mixup in the data loader: same loss mixing as mixup
        mixed = batch.mix
    elif parts.mixup is not None and parts.mixup.draws(gen):
        mixed = parts.mixup(feats, lengths, gen)
        feats, lengths = mixed.features, mixed.lengths
    with engine.autocast():
        out = s.model(feats, lengths)
    objective = parts.objective
    heads = batch.head_targets
    if mixed is None:
        loss, _ = objective(out.logits, batch.targets, out.extras, batch.regression, heads)
    else:
        la, _ = objective(out.logits, batch.targets, out.extras, batch.regression, heads)
        perm = mixed.perm
        reg_b = None if batch.regression is None else batch.regression[perm]
        heads_b = None if heads is None else heads[perm]
        lb, _ = objective(out.logits, batch.targets[perm], out.extras, reg_b, heads_b)
        loss = mixed.lam * la + (1.0 - mixed.lam) * lb
    if not torch.isfinite(loss):
        raise NonFiniteLossError(
            f"epoch {epoch + 1} step {step + 1}: the training loss is "
            f"{float(loss.detach())}; lower "
            f"train.lr (now {tc.lr}), keep train.grad_clip on, and check the features "
            "and their normalisation (features.normalization) for NaN or huge values"
            f"; the batch held {batch_ids(s, batch)}"
        )
    optimizer, scaler = parts.optimizer, parts.scaler
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if tc.grad_clip > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(s.model.parameters(), tc.grad_clip)
    lr = float(optimizer.param_groups[0]["lr"])
    scaler.step(optimizer)
    scaler.update()
    if parts.per_step:
        parts.scheduler.step()
    s.state.global_step += 1
    every = s.cfg.tracking.log_every_steps
    if every and s.state.global_step % every == 0:
        s.tracker.log_step(s.state.global_step, float(loss.detach()), lr)
    n = len(batch)
    pred = out.logits.detach()[:, : s.first_head_size].argmax(-1)  # the first head's
    hits = float((pred == batch.targets).sum())  # clean: against the un-mixed targets
    sums[0] += float(loss.detach()) * n
    sums[1] += hits
    sums[2] += n
    if mixed is not None:
        hits_b = float((pred == batch.targets[mixed.perm]).sum())
        sums[3] += mixed.lam * hits + (1.0 - mixed.lam) * hits_b
    return lr


def batch_ids(s: Session, batch: Batch, limit: int = 32) -> str:
    """The manifest ids of a training batch's clips, for a message (at most ``limit``).

    A loss that turns NaN on the first steps usually comes from one clip; naming the
    batch's clips tells the user where to look.
    """
    train_idx = s.data.train_idx  # batch.indices count the training split's rows
    ids = [s.data.rows.ids[int(train_idx[int(k)])] for k in batch.indices.tolist()]
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return ", ".join(ids[:limit]) + more


def train_epoch(s: Session, epoch: int, interrupt: GracefulInterrupt) -> tuple[list[float], float]:
    """Train this rank's batches of ``epoch`` from ``state.skip``: ``(sums, lr of last step)``.

    A stop requested before the epoch's last step saves ``last.pt`` with the
    position in the epoch and raises ``KeyboardInterrupt``.
    """
    from tqdm.auto import tqdm

    parts, st = s.parts, s.state
    if st.partial is None:
        st.epoch_lr = float(parts.optimizer.param_groups[0]["lr"])
    last_lr = st.epoch_lr  # the lr of the epoch's last step, reported in history.csv
    parts.sampler.set_epoch(epoch, st.skip)
    if isinstance(parts.model, SpeechClassifier):
        parts.model.start_epoch(epoch)  # e.g. unfreeze encoder layers after K epochs
    warmup = s.cfg.train.aam_margin_warmup_epochs
    if warmup > 0 and isinstance(parts.loss, AAMSoftmax):
        parts.loss.warm_up(epoch, warmup)  # the margin grows from 0 over the first epochs
    s.model.train()
    sums = [0.0, 0.0, 0.0, 0.0]  # loss * n, correct (clean), n, mixed correct
    sums[: len(st.partial or ())] = list(st.partial or ())  # a 3-item partial of older runs
    bar = tqdm(
        total=parts.steps_per_epoch,
        initial=st.skip,
        desc=f"Epoch {epoch + 1}/{s.cfg.train.epochs}",
        disable=not (s.progress and s.engine.is_main),
        leave=False,
        unit="batch",
    )
    for i, batch in enumerate(parts.loader, start=st.skip):
        last_lr = train_step(s, epoch, i, batch, sums)
        bar.update()
        bar.set_postfix(loss=f"{sums[0] / max(sums[2], 1):.3f}")
        interrupt.step()
        if s.engine.stop_requested(interrupt.requested) and i + 1 < parts.steps_per_epoch:
            bar.close()
            resume.stop_mid_epoch(s, epoch, i + 1, sums, interrupt.signum)
    bar.close()
    st.skip, st.partial = 0, None
    return sums, last_lr


def run_epochs(s: Session) -> None:
    """Train from ``state.start_epoch`` until the last epoch or early stopping.

    Each epoch is trained, validated and recorded (history, best weights, log,
    checkpoints, ``metrics.json``). A stop request between epochs raises
    ``KeyboardInterrupt`` once ``last.pt`` is saved, unless the run just finished.
    """
    interrupt = GracefulInterrupt()
    with interrupt:
        for epoch in range(s.state.start_epoch, s.cfg.train.epochs):
            if s.parts.stopper.should_stop:
                break
            t0 = time.perf_counter()
            sums, last_lr = train_epoch(s, epoch, interrupt)
            row, vm = validation.validate(s, epoch, sums, last_lr, t0)
            done = validation.end_epoch(s, epoch, row, vm)
            if interrupt.requested and not done:
                resume.interrupted(s.run, f"after epoch {epoch + 1}", interrupt.signum)


__all__ = ["run_epochs", "train_epoch", "train_step"]
