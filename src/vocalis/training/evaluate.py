"""Evaluate a checkpoint on a manifest: the same pipeline as training, read from the checkpoint.

:func:`evaluate` rebuilds tier 0, the feature extractor, the normalisation and
the label encoder from the checkpoint, computes features, predicts and scores.
The prediction helpers here are also what the trainer uses on its validation
and test data.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vocalis.errors import DataError, ModelError

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
) -> tuple[np.ndarray, float]:
    """Class probabilities for every item of a :class:`~vocalis.training.data.FeatureDataset`.

    Args:
        model: a :class:`~vocalis.models.SpeechClassifier` (put in eval mode here).
        dataset: whole utterances, no crops.
        batch_size: items per forward pass (batched by length).
        device: where to run.
        loss_fn: optional ``(logits, targets) -> loss`` for the mean loss.
        amp_dtype: autocast dtype, or ``None`` for full precision.

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
        p = out.extras.get("probs")
        p = torch.softmax(logits, dim=-1) if p is None else p.float()
        if probs is None:
            probs = np.zeros((len(dataset), p.shape[-1]), dtype=np.float64)
        probs[batch.indices.numpy()] = p.cpu().double().numpy()
        if loss_fn is not None:
            loss = loss_fn(logits, batch.targets)
            total += float(loss) * len(batch)
            count += len(batch)
    model.train(was_training)
    if probs is None:
        raise DataError("nothing to predict: the dataset has no utterance")
    return probs, (total / count if count else float("nan"))


def score(targets: Sequence[int], probs: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Classification metrics of ``probs`` against class ids ``targets``."""
    from vocalis.evaluation.metrics import classification_metrics

    pred = probs.argmax(axis=1)
    names = list(classes)
    return classification_metrics(
        [names[int(t)] for t in targets], [names[int(p)] for p in pred], probs, classes=names
    )


def prediction_rows(
    manifest: Any, targets: Sequence[int], probs: np.ndarray, classes: Sequence[str]
) -> list[dict[str, Any]]:
    """Rows of ``predictions.csv``.

    Columns: ``path,speaker,true_label,pred_label,correct,confidence,p_<class>...``.
    """
    speakers = manifest.column("speaker") if "speaker" in manifest.columns else [""] * len(manifest)
    rows = []
    for i, path in enumerate(manifest.paths):
        k = int(probs[i].argmax())
        true = classes[int(targets[i])]
        row: dict[str, Any] = {
            "path": path,
            "speaker": speakers[i],
            "true_label": true,
            "pred_label": classes[k],
            "correct": classes[k] == true,
            "confidence": float(probs[i, k]),
        }
        row.update({f"p_{c}": float(probs[i, j]) for j, c in enumerate(classes)})
        rows.append(row)
    return rows


def encode_known(encoder: Any, labels: Sequence[str], source: str) -> list[int]:
    """Class ids of ``labels``.

    Raises:
        DataError: a label the model was not trained on (naming it and the known classes).
    """
    known = set(encoder.classes)
    for label in labels:
        if label not in known:
            raise DataError(
                f"{source}: label '{label}' was never seen in training (known classes: "
                f"{', '.join(encoder.classes)}); map it with dataset.label_map or remove those rows"
            )
    return [int(i) for i in encoder.encode(list(labels))]


def evaluate(
    checkpoint: str | os.PathLike,
    manifest: Any,
    *,
    out: str | os.PathLike | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    cache_dir: str | os.PathLike | None = None,
    workers: int = 2,
    progress: bool = True,
) -> dict[str, Any]:
    """Score a trained checkpoint on a labelled manifest.

    Args:
        checkpoint: a ``best.pt`` / ``last.pt`` written by :func:`vocalis.training.train`.
        manifest: manifest CSV path or :class:`~vocalis.data.Manifest`; the training
            run's ``dataset.label_map`` is applied to it.
        out: folder for ``predictions.csv`` and ``metrics.json`` (``None``: write nothing).
        batch_size: items per forward pass.
        device: ``cpu``, ``cuda``...
        cache_dir: feature cache (default: none).
        workers: feature extraction processes.
        progress: progress bar.

    Returns:
        :func:`vocalis.evaluation.metrics.classification_metrics` output plus ``n_failed``.

    Raises:
        ModelError: not a Vocalis checkpoint, a newer format, or weights that do
            not fit the stored model.
        DataError: a label that training never saw (named with the known classes).
    """
    from vocalis.checkpoint import load_checkpoint
    from vocalis.config import from_dict, to_dict
    from vocalis.evaluation.predictions import write_predictions
    from vocalis.features.normalize import FeatureNormalizer
    from vocalis.inference.neural import model_from_checkpoint
    from vocalis.training.config import DatasetConfig, FeaturesConfig
    from vocalis.training.data import FeatureDataset
    from vocalis.training.pipeline import compute_features, load_rows, speakers_of
    from vocalis.training.runfolder import RunFolder

    ckpt = load_checkpoint(checkpoint)
    model = model_from_checkpoint(ckpt).to(device)
    encoder = ckpt.labels
    train_cfg = ckpt.config
    dataset_cfg = from_dict(DatasetConfig, train_cfg.get("dataset", {}), where="dataset")
    features_cfg = FeaturesConfig(
        tier0=to_dict(ckpt.tier0),
        extractor=to_dict(ckpt.features),
        normalization=ckpt.normalization.mode,
        cache_dir=str(cache_dir) if cache_dir else None,
        workers=workers,
        max_failures=float(train_cfg.get("features", {}).get("max_failures", 0.1)),
    )
    rows = load_rows(dataset_cfg, manifest)
    source = str(getattr(rows, "source", manifest))
    targets = encode_known(encoder, rows.labels(dataset_cfg.label_column), source)
    feats, failures = compute_features(rows.paths, features_cfg, progress=progress)
    keep = [i for i, f in enumerate(feats) if f is not None]
    if not keep:
        raise DataError(f"{source}: no file could be read; nothing to evaluate")
    rows = rows.select(keep)
    targets = [targets[i] for i in keep]
    feats = [feats[i] for i in keep]
    dim = int(feats[0].shape[0])
    if dim != int(ckpt.model.input_dim or 0):
        raise ModelError(
            f"{checkpoint}: the model expects {ckpt.model.input_dim} features per frame, "
            f"the checkpoint's pipeline gives {dim}; the checkpoint is inconsistent, retrain it"
        )
    norm = FeatureNormalizer.from_state(ckpt.normalization.to_dict(), dim)
    speakers = speakers_of(rows)
    data = FeatureDataset(
        [norm.normalize(f, s) for f, s in zip(feats, speakers, strict=True)], targets
    )
    probs, _ = predict_dataset(model, data, batch_size=batch_size, device=device)
    classes = list(encoder.classes)
    metrics = score(targets, probs, classes)
    metrics["n_failed"] = len(failures)
    if out is not None:
        out = Path(out)
        write_predictions(
            out / "predictions.csv", prediction_rows(rows, targets, probs, classes), classes
        )
        RunFolder(out).write_metrics(
            kind="eval",
            model="neural",
            test={k: v for k, v in metrics.items() if k != "n_failed"},
            n_rows={"test": len(targets)},
            classes=classes,
            details={"checkpoint": str(checkpoint), "manifest": source, "n_failed": len(failures)},
        )
    return metrics
