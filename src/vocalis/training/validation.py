"""Validation and metrics: score each epoch, keep the best, test it, write ``metrics.json``.

Validation and test run on rank 0 only, on the full sets, so the numbers do not
depend on the world size; the epoch's history row is broadcast to every rank so
that all of them take the same early-stopping and schedule decisions.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from vocalis.data.failures import summary
from vocalis.training import resume
from vocalis.training.distributed import broadcast
from vocalis.training.session import DivergedError, NonFiniteLossError, Session, fmt, plain

#: Validation metrics of the history rows (and of ``TrainResult.best_metrics``).
VAL_KEYS = ("val_loss", "val_acc", "val_uar", "val_macro_f1")


def predict_split(s: Session, dataset: Any) -> tuple[np.ndarray, float]:
    """Class probabilities (N, C) and mean loss of the unwrapped model on ``dataset``."""
    from vocalis.training.predict import predict_dataset

    return predict_dataset(
        s.raw_model,
        dataset,
        batch_size=s.cfg.train.batch_size,
        device=s.engine.device,
        loss_fn=s.parts.loss,
        amp_dtype=s.engine.amp_dtype,
    )


def validate(
    s: Session, epoch: int, sums: list[float], last_lr: float, t0: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Sum training numbers over ranks, validate on rank 0: ``(history row, scores)``.

    Args:
        s: the session.
        epoch: 0-based epoch.
        sums: this rank's ``[loss * n, correct, n, mixed correct]`` of the epoch
            (:func:`vocalis.training.loop.train_step`).
        last_lr: learning rate of the epoch's last step.
        t0: ``time.perf_counter()`` at the start of the epoch.

    Returns:
        The history row (``HISTORY_COLUMNS``) and the validation scores
        (:func:`vocalis.metrics.predictions.score`), the same on every rank.
    """
    from vocalis.metrics.predictions import score

    tot = s.engine.sum(sums)
    train_loss, train_acc = tot[0] / max(tot[2], 1), tot[1] / max(tot[2], 1)
    mixup = s.parts.mixup is not None
    train_mixup_acc = tot[3] / max(tot[2], 1) if mixup and len(tot) > 3 else float("nan")
    decision = None
    if s.engine.is_main:
        probs, val_loss = predict_split(s, s.data.val)
        vm = score(s.data.val.targets, probs, s.classes)
        row = {
            "epoch": epoch + 1,
            "train_loss": float(train_loss),
            "train_acc": float(train_acc),
            "train_mixup_acc": float(train_mixup_acc),
            "val_loss": float(val_loss),
            "val_acc": float(vm["accuracy"]),
            "val_uar": float(vm["uar"]),
            "val_macro_f1": float(vm["macro_f1"]),
            "lr": last_lr,
            "seconds": round(time.perf_counter() - t0, 3),
        }
        decision = (row, vm)
    return broadcast(s.engine.dist, decision)


#: A training loss this many times its reference means the run diverged.
DIVERGENCE_FACTOR = 100.0


def check_divergence(s: Session, epoch: int, loss: float) -> None:
    """Stop a run whose training loss grew by two orders of magnitude.

    The reference is the lowest training loss of the earlier epochs and, for
    the first epoch, the loss of a chance-level classifier, ``ln K`` (what
    cross-entropy starts near). A diverged run would otherwise go on to its
    last epoch and exit 0 with chance-level validation.

    Raises:
        DivergedError: ``loss > DIVERGENCE_FACTOR * reference``; the message
            names the epoch, both losses, the learning rate and the remedy.
    """
    past = [h["train_loss"] for h in s.state.history if np.isfinite(h.get("train_loss", np.nan))]
    chance = math.log(max(len(s.classes), 2))
    reference = min(past) if past else chance
    reference = max(reference, 1e-3 * chance)  # a near-zero loss may wobble by any factor
    if loss > DIVERGENCE_FACTOR * reference:
        what = "its best earlier epoch" if past else f"chance level (ln {len(s.classes)})"
        message = (
            f"epoch {epoch + 1}: the training loss is {loss:.3g}, more than "
            f"{DIVERGENCE_FACTOR:g}x {what} ({reference:.3g}): the run diverged; lower "
            f"train.lr (now {s.cfg.train.lr:g}, try 10-100x less), keep train.grad_clip on "
            "and rerun with --overwrite"
        )
        s.run.log(f"Stopped: {message}", echo=False)
        raise DivergedError(message)


def end_epoch(s: Session, epoch: int, row: dict[str, Any], vm: dict[str, Any]) -> bool:
    """Record an epoch (history, stopping, schedule, best weights, log, checkpoints).

    Returns:
        Whether the run is done (stopped early, or its last epoch).

    Raises:
        NonFiniteLossError: the epoch's training loss is not finite.
    """
    tc, run, parts, st = s.cfg.train, s.run, s.parts, s.state
    stopper = parts.stopper
    if not np.isfinite(row["train_loss"]):
        raise NonFiniteLossError(f"epoch {epoch + 1}: non-finite training loss")
    check_divergence(s, epoch, row["train_loss"])
    st.history.append(row)
    improved = stopper.update(row[tc.monitor], epoch + 1)
    if not parts.per_step:
        parts.scheduler.step(row[tc.monitor])
    if improved:
        st.best_val = plain(vm)
        st.best_state = resume.best_weights(s.raw_model)
    run.log(
        f"Epoch {epoch + 1}/{tc.epochs} | train loss {fmt(row['train_loss'])} acc "
        f"{fmt(row['train_acc'])} | val loss {fmt(row['val_loss'])} "
        f"acc {fmt(row['val_acc'])} "
        f"UAR {fmt(row['val_uar'])} | lr {row['lr']:.2e} | {row['seconds']:.1f} s"
        + (" *" if improved else "")
    )
    done = stopper.should_stop or epoch + 1 == tc.epochs
    if run.active:
        resume.save_checkpoints(s, epoch, row, improved)
        run.write_history(st.history)
        write_metrics(s)
    s.tracker.log_epoch(row)
    if stopper.should_stop:
        run.log(
            f"Early stopping: {tc.monitor} has not improved for {tc.patience} epochs "
            f"(best {fmt(stopper.best)} at epoch {stopper.best_epoch})"
        )
    return done


def test(s: Session) -> dict[str, Any] | None:
    """Test metrics of the unwrapped model and ``predictions.csv`` (rank 0 with test rows)."""
    data, run, classes = s.data, s.run, s.classes
    if not (s.engine.is_main and data.test is not None):
        return None
    from vocalis.metrics.predictions import prediction_rows, score, write_predictions

    probs, test_loss = predict_split(s, data.test)
    test_metrics = plain(score(data.test.targets, probs, classes))
    test_metrics["loss"] = float(test_loss)
    if run.active:
        test_rows = data.rows.select(data.test_idx.tolist())
        write_predictions(
            run.file("predictions.csv"),
            prediction_rows(test_rows, data.test.targets, probs, classes),
            classes,
        )
    run.log(
        f"Test (best epoch {s.parts.stopper.best_epoch}): acc {fmt(test_metrics['accuracy'])} "
        f"UAR {fmt(test_metrics['uar'])} macro-F1 {fmt(test_metrics['macro_f1'])} "
        f"on {len(data.test_idx)} utterances"
    )
    return test_metrics


def write_metrics(
    s: Session, test: dict[str, Any] | None = None, extra: dict[str, Any] | None = None
) -> None:
    """Write ``metrics.json`` (the run folder's one schema): best epoch, scores, sizes.

    ``extra`` joins ``details`` (the end-of-training analyses of
    :func:`vocalis.training.artifacts.finish_run`: ``verification_val``, ``gating``).
    """
    best_row, st, stopper = s.best_row(), s.state, s.parts.stopper
    val = {**st.best_val, "loss": best_row.get("val_loss")} if st.best_val else None
    seconds = sum(float(h.get("seconds") or 0.0) for h in st.history)
    s.run.write_metrics(
        kind="train",
        model="neural",
        val=val,
        test=test,
        best_epoch=stopper.best_epoch or None,
        epochs_run=len(st.history),
        n_rows={
            "train": len(s.data.train_idx),
            "val": len(s.data.val_idx),
            "test": len(s.data.test_idx),
        },
        classes=s.classes,
        seconds=round(seconds, 3),
        details={
            "monitor": s.cfg.train.monitor,
            "mode": s.cfg.train.mode,
            "stopped_early": stopper.should_stop,
            "rows": summary(s.data.skipped, s.data.n_rows or len(s.data.rows)),
            **(extra or {}),
        },
    )


__all__ = ["VAL_KEYS", "end_epoch", "predict_split", "test", "validate", "write_metrics"]
