"""Predict with a model in training: class probabilities of a feature dataset.

:func:`predict_dataset` is what the trainer runs on its validation and test
data. Scoring a saved model on a manifest is :func:`vocalis.evaluation.evaluate`
(through the checkpoint's own pipeline, :class:`vocalis.inference.Predictor`).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from vocalis.errors import DataError

log = logging.getLogger(__name__)


@torch.no_grad()
def predict_dataset(
    model: torch.nn.Module,
    dataset: Any,
    *,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    loss_fn: Any = None,
    amp_dtype: torch.dtype | None = None,
    output: str = "probs",
) -> tuple[np.ndarray, float]:
    """Class probabilities for every item of a :class:`~vocalis.training.data.FeatureDataset`.

    Args:
        model: a :class:`~vocalis.models.SpeechClassifier` (put in eval mode here).
        dataset: whole utterances, no crops.
        batch_size: items per forward pass (batched by length).
        device: where to run.
        loss_fn: optional ``(logits, targets) -> loss`` for the mean loss.
        amp_dtype: autocast dtype, or ``None`` for full precision.
        output: the ``extras`` entry to return instead of the probabilities (e.g.
            ``uncalibrated_logits``; ``logits`` for the model's logits).

    Returns:
        ``(probs, mean_loss)``: (N, C) probabilities in dataset order (the model's
        ``extras["probs"]`` when it gives them, else the softmax of the logits) and
        the mean loss (NaN without ``loss_fn``).
    """
    from vocalis.training.data import EpochBatchSampler, make_loader

    device = torch.device(device)
    was_training = model.training
    model.eval()
    frames = [dataset.num_frames(i) for i in range(len(dataset))]
    sampler = EpochBatchSampler(frames, batch_size, shuffle=False, bucketing=True)
    probs: np.ndarray | None = None
    total, count = 0.0, 0
    for batch in make_loader(dataset, sampler):
        batch = batch.to(device)
        with torch.autocast(
            device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None
        ):
            out = model(batch.features, batch.lengths)
        logits = out.logits.float()
        if output == "logits":
            p = logits
        elif output != "probs":
            p = out.extras[output].float()
        else:
            p = out.probs().float()
        if probs is None:
            probs = np.zeros((len(dataset), p.shape[-1]), dtype=np.float64)
        probs[batch.indices.numpy()] = p.cpu().double().numpy()
        if loss_fn is not None:
            if batch.head_targets is None:
                loss = loss_fn(logits, batch.targets)
            else:  # a multi-head objective: (total, parts)
                loss = loss_fn(logits, batch.targets, None, None, batch.head_targets)[0]
            total += float(loss) * len(batch)
            count += len(batch)
    model.train(was_training)
    if probs is None:
        raise DataError("nothing to predict: the dataset has no utterance")
    return probs, (total / count if count else float("nan"))


def model_head_outputs(
    model: torch.nn.Module,
    data: Any,
    dataset: Any,
    probs: np.ndarray,
    *,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    amp_dtype: torch.dtype | None = None,
) -> tuple[list, np.ndarray, np.ndarray]:
    """The reported heads of a run, their outputs (N, C) and packed targets (N, D).

    A multi-head run: its heads, ``probs`` (every head's outputs side by side) and
    the dataset's packed targets. A single-head run with a valence/arousal head:
    the class head and that head, the probabilities beside the model's
    ``extras["va"]``, the class ids beside the regression targets.

    Args:
        model: the model ``probs`` came from.
        data: the run's :class:`~vocalis.training.prepared.PreparedData` (its
            ``report_heads`` must not be ``None``).
        dataset: the split ``probs`` are of.
        probs: :func:`predict_dataset` output on ``dataset``.
        batch_size: items per forward pass (the valence/arousal pass).
        device: where to run.
        amp_dtype: autocast dtype, or ``None``.

    Returns:
        ``(heads, outputs, targets)`` as :func:`vocalis.metrics.heads.score_heads` takes them.
    """
    if data.heads is not None:
        return data.heads, probs, dataset.head_targets.double().numpy()
    va, _ = predict_dataset(
        model, dataset, batch_size=batch_size, device=device, amp_dtype=amp_dtype, output="va"
    )
    ids = np.asarray(dataset.targets, dtype=np.float64)[:, None]
    reg = dataset.regression.double().numpy()
    return data.report_heads, np.concatenate([probs, va], 1), np.concatenate([ids, reg], 1)
