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
    """Class probabilities (N, C) and mean loss of the unwrapped model on ``dataset``.

    An AAM-softmax loss is measured with its full margin, also while the margin warms
    up, so that validation losses of different epochs compare (and pick the best).
    """
    from vocalis.training.losses import AAMSoftmax
    from vocalis.training.predict import predict_dataset

    loss = s.parts.loss
    if isinstance(loss, AAMSoftmax):
        loss = loss.with_full_margin()

    return predict_dataset(
        s.raw_model,
        dataset,
        batch_size=s.cfg.train.batch_size,
        device=s.engine.device,
        loss_fn=loss,
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
        if s.data.heads is None:
            vm = score(s.data.val.targets, probs, s.classes)
            extra: dict[str, Any] = {}
            if s.data.aux_heads:  # the valence/arousal head, reported like any head
                scored, extra = score_heads_split(s, probs, s.data.val)
                vm["heads"] = scored["heads"]
        else:
            vm, extra = score_heads_split(s, probs, s.data.val)
            if s.data.heads[0].kind != "multiclass":
                train_acc = float("nan")
        nan = float("nan")
        row = {
            "epoch": epoch + 1,
            "train_loss": float(train_loss),
            "train_acc": float(train_acc),
            "train_mixup_acc": float(train_mixup_acc),
            "val_loss": float(val_loss),
            "val_acc": float(vm.get("accuracy", nan)),
            "val_uar": float(vm.get("uar", nan)),
            "val_macro_f1": float(vm.get("macro_f1", nan)),
            "lr": last_lr,
            "seconds": round(time.perf_counter() - t0, 3),
            **extra,
        }
        decision = (row, vm)
    return broadcast(s.engine.dist, decision)


def head_outputs(
    s: Session, probs: np.ndarray, dataset: Any
) -> tuple[list, np.ndarray, np.ndarray]:
    """The reported heads, their outputs (N, D) and packed targets of ``dataset``.

    :func:`vocalis.training.predict.model_head_outputs` with the session's model and data.
    """
    from vocalis.training.predict import model_head_outputs

    return model_head_outputs(
        s.raw_model,
        s.data,
        dataset,
        probs,
        batch_size=s.cfg.train.batch_size,
        device=s.engine.device,
        amp_dtype=s.engine.amp_dtype,
    )


def score_heads_split(
    s: Session, probs: np.ndarray, dataset: Any
) -> tuple[dict[str, Any], dict[str, float]]:
    """Scores of a multi-head run on one split: ``(scores, extra history columns)``.

    The scores are the first class head's metrics (``{}`` without a class head) with
    every head's metrics under ``"heads"``; the columns are ``val_<head>_<metric>``
    and ``val_ccc`` (mean CCC of the regression heads).
    """
    from vocalis.metrics.heads import head_columns, mean_ccc, primary, score_heads

    heads, outputs, targets = head_outputs(s, probs, dataset)
    per = score_heads(heads, outputs, targets)
    vm = primary(heads, per) or {}
    vm = {k: v for k, v in vm.items() if k != "kind"}
    vm["heads"] = per
    extra = {f"val_{k}": v for k, v in head_columns(per).items()}
    extra["val_ccc"] = mean_ccc(heads, per)
    return vm, extra


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
    monitor = stopper.monitor  # train.monitor, or val_ccc for a regression-only run
    if monitor not in row:
        from vocalis.errors import ConfigError

        raise ConfigError(
            f"train.monitor={monitor}: this run has no such metric; its validation metrics "
            f"are {', '.join(k for k in row if k.startswith('val_'))}"
        )
    improved = stopper.update(row[monitor], epoch + 1)
    if not parts.per_step:
        parts.scheduler.step(row[monitor])
    if improved:
        st.best_val = plain(vm)
        st.best_state = resume.best_weights(s.raw_model)
    run.log(
        f"Epoch {epoch + 1}/{tc.epochs} | train loss {fmt(row['train_loss'])} acc "
        f"{fmt(row['train_acc'])} | val loss {fmt(row['val_loss'])} "
        f"acc {fmt(row['val_acc'])} "
        f"UAR {fmt(row['val_uar'])}{head_summary(s, row)} | lr {row['lr']:.2e} | "
        f"{row['seconds']:.1f} s" + (" *" if improved else "")
    )
    done = stopper.should_stop or epoch + 1 == tc.epochs
    if run.active:
        resume.save_checkpoints(s, epoch, row, improved)
        run.write_history(st.history)
        write_metrics(s)
    s.tracker.log_epoch(row)
    if stopper.should_stop:
        run.log(
            f"Early stopping: {monitor} has not improved for {tc.patience} epochs "
            f"(best {fmt(stopper.best)} at epoch {stopper.best_epoch})"
        )
    return done


def head_summary(s: Session, row: dict[str, Any]) -> str:
    """`` | emotion UAR 0.61, gender UAR 0.93, dur CCC 0.40`` for a multi-head run's log."""
    from vocalis.metrics.heads import HEADLINE

    if not s.data.report_heads:
        return ""
    parts = []
    for h in s.data.report_heads:
        key = HEADLINE[h.kind][1 if h.kind != "regression" else 0]
        parts.append(f"{h.name} {key.upper()} {fmt(row.get(f'val_{h.name}_{key}'))}")
    return " | " + ", ".join(parts)


def test(s: Session) -> dict[str, Any] | None:
    """Test metrics of the unwrapped model and ``predictions.csv`` (rank 0 with test rows).

    A multi-head run scores every head (under ``"heads"``), writes
    ``predictions.csv`` for its first class head and ``predictions_heads.csv``
    with every head's reference and prediction.
    """
    data, run, classes = s.data, s.run, s.classes
    if not (s.engine.is_main and data.test is not None):
        return None
    from vocalis.metrics.predictions import score

    probs, test_loss = predict_split(s, data.test)
    test_rows = data.rows.select(data.test_idx.tolist())
    if data.heads is None:
        test_metrics = plain(score(data.test.targets, probs, classes))
        if data.aux_heads:
            test_metrics["heads"] = plain(score_heads_split(s, probs, data.test)[0]["heads"])
            if run.active:
                write_head_predictions(s, test_rows, probs, data.test)
    else:
        test_metrics = plain(score_heads_split(s, probs, data.test)[0])
        if run.active:
            write_head_predictions(s, test_rows, probs, data.test)
    test_metrics["loss"] = float(test_loss)
    first_class = data.heads is None or data.heads[0].kind == "multiclass"
    if run.active and first_class:
        write_test_predictions(run, data, probs[:, : s.first_head_size])
    nan = float("nan")
    run.log(
        f"Test (best epoch {s.parts.stopper.best_epoch}): acc "
        f"{fmt(test_metrics.get('accuracy', nan))} UAR {fmt(test_metrics.get('uar', nan))} "
        f"macro-F1 {fmt(test_metrics.get('macro_f1', nan))}"
        + (head_summary(s, _test_columns(test_metrics)) if data.report_heads else "")
        + f" on {len(data.test_idx)} utterances"
    )
    return test_metrics


def write_test_predictions(run: Any, data: Any, probs: np.ndarray) -> None:
    """Write ``predictions.csv`` of the test rows of ``data`` from their ``probs`` (N, C).

    ``probs``: the first class head's probabilities (one column per class).
    """
    from vocalis.metrics.predictions import prediction_rows, write_predictions

    classes = list(data.encoder.classes)
    rows = data.rows.select(data.test_idx.tolist())
    targets = [max(t, 0) for t in data.test.targets]
    write_predictions(
        run.file("predictions.csv"), prediction_rows(rows, targets, probs, classes), classes
    )


def _test_columns(metrics: dict[str, Any]) -> dict[str, float]:
    from vocalis.metrics.heads import head_columns

    return {f"val_{k}": v for k, v in head_columns(metrics.get("heads") or {}).items()}


def write_head_predictions(s: Session, rows: Any, probs: np.ndarray, dataset: Any) -> None:
    """The run folder's ``predictions_heads.csv`` (:func:`write_head_table`) of ``dataset``."""
    heads, outputs, targets = head_outputs(s, probs, dataset)
    write_head_table(s.run.file("predictions_heads.csv"), heads, rows, outputs, targets)


def write_head_table(
    path: Any, heads: list, rows: Any, outputs: np.ndarray, targets: np.ndarray
) -> None:
    """``predictions_heads.csv``: per item, every head's reference and prediction.

    Columns: ``path``, ``speaker``, then per head ``<head>_true``, ``<head>_pred``
    (class name; for a multi-label head the labels on, ``;``-separated; for a
    regression head the value in the column's units, one pair per target column).

    Args:
        path: the file to write (atomically).
        heads: the reported heads, in model order.
        rows: the manifest rows of ``outputs``, in order.
        outputs: (N, sum C_h) model outputs (regression values z-scored).
        targets: (N, sum width_h) packed targets.
    """
    import csv
    import io

    from vocalis.data.targets import HeadLayout, decode_outputs
    from vocalis.io import write_text

    layout = HeadLayout(tuple(heads))
    speakers = rows.column("speaker") if "speaker" in rows.columns else [""] * len(rows)
    out = []
    for i, audio in enumerate(rows.paths):
        row: dict[str, Any] = {"path": audio, "speaker": speakers[i]}
        pred = decode_outputs(heads, outputs[i])
        for h, (t0, t1) in zip(heads, layout.targets, strict=True):
            true = targets[i, t0:t1]
            if h.kind == "multiclass":
                row[f"{h.name}_true"] = "" if np.isnan(true[0]) else h.classes[int(true[0])]
                row[f"{h.name}_pred"] = pred[h.name]["label"]
            elif h.kind == "multilabel":
                on = [c for c, v in zip(h.classes, true, strict=True) if v > 0.5]
                row[f"{h.name}_true"] = ";".join(on)
                row[f"{h.name}_pred"] = ";".join(pred[h.name]["labels"])
            else:
                values = h.to_units(true)
                for c, v in zip(h.classes, values, strict=True):
                    row[f"{c}_true"] = f"{v:.6g}"
                    row[f"{c}_pred"] = f"{pred[h.name]['values'][c]:.6g}"
        out.append(row)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(out[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(out)
    write_text(path, buf.getvalue())


def write_metrics(
    s: Session, test: dict[str, Any] | None = None, extra: dict[str, Any] | None = None
) -> None:
    """Write ``metrics.json`` (the run folder's one schema): best epoch, scores, sizes.

    ``extra`` joins ``details`` (the end-of-training analyses of
    :func:`vocalis.training.artifacts.finish_run`: ``verification_val``, ``gating``).
    """
    best_row, st, stopper = s.best_row(), s.state, s.parts.stopper
    val = {**st.best_val, "loss": best_row.get("val_loss")} if st.best_val else None
    heads = None
    if s.data.report_heads is not None:
        val_heads = (val or {}).pop("heads", None) or {}
        test_heads = (test or {}).get("heads") or {}
        heads = {
            h.name: {
                "kind": h.kind,
                "columns": list(h.columns),
                "classes": list(h.classes),
                "loss": h.loss,
                "weight": h.weight,
                "val": val_heads.get(h.name),
                "test": test_heads.get(h.name),
            }
            for h in s.data.report_heads
        }
        if test is not None:
            test = {k: v for k, v in test.items() if k != "heads"}
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
        heads=heads,
        details={
            **({"calibration": s.state.calibration} if s.state.calibration else {}),
            "monitor": stopper.monitor,
            "mode": s.cfg.train.mode,
            "stopped_early": stopper.should_stop,
            "rows": summary(s.data.skipped, s.data.n_rows or len(s.data.rows)),
            **(extra or {}),
        },
    )


__all__ = [
    "VAL_KEYS",
    "end_epoch",
    "predict_split",
    "test",
    "validate",
    "write_metrics",
    "write_test_predictions",
]
