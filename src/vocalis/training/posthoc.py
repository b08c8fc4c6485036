"""What is fitted on the validation split once training ends: thresholds and temperatures.

After the best weights are loaded (and before the test split is scored):

- every multi-label head gets per-label decision thresholds that maximise F1 on
  the validation split (:func:`vocalis.data.targets.best_thresholds`);
- with ``model.params.temperature=true``, every multiclass head gets a temperature
  minimising the validation NLL (:func:`vocalis.models.calibration.calibrate_temperature`),
  stored in the model; the validation ECE before and after goes to
  ``metrics.json`` (``details.calibration``).

Both travel in ``model.pt`` (thresholds in ``model.heads``, temperatures in the
weights), so ``eval``, ``predict``, ``export`` and ``serve`` use them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vocalis.training.session import Session


def _split_logits(s: Session, output: str) -> np.ndarray:
    from vocalis.training.predict import predict_dataset

    values, _ = predict_dataset(
        s.raw_model,
        s.data.val,
        batch_size=s.cfg.train.batch_size,
        device=s.engine.device,
        amp_dtype=s.engine.amp_dtype,
        output=output,
    )
    return values


def _ece(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    from vocalis.metrics.classification import expected_calibration_error

    probs = torch.softmax(torch.as_tensor(logits) / temperature, dim=1).numpy()
    pred = probs.argmax(axis=1)
    return expected_calibration_error(probs.max(axis=1), pred == targets)


def _nll(logits: np.ndarray, targets: np.ndarray, temperature: float) -> float:
    lg = torch.as_tensor(logits, dtype=torch.float64) / temperature
    return float(torch.nn.functional.cross_entropy(lg, torch.as_tensor(targets)))


def fit_thresholds(s: Session) -> dict[str, list[float]]:
    """Choose every multi-label head's thresholds on validation; update ``s.data.heads``."""
    from vocalis.data.targets import best_thresholds, with_thresholds

    heads = s.data.heads
    if not heads or not any(h.kind == "multilabel" for h in heads):
        return {}
    layout = s.data.layout
    probs = _split_logits(s, "probs")
    targets = s.data.val.head_targets.double().numpy()
    chosen: dict[str, list[float]] = {}
    new = []
    for h, (o0, o1), (t0, t1) in zip(heads, layout.outputs, layout.targets, strict=True):
        if h.kind == "multilabel":
            th = best_thresholds(targets[:, t0:t1], probs[:, o0:o1])
            chosen[h.name] = th
            h = with_thresholds(h, th)
        new.append(h)
    s.data.heads = new
    return chosen


def fit_temperature(s: Session) -> dict[str, Any]:
    """Fit the temperature of every multiclass head on validation (``model.temperature``).

    Returns:
        The calibration record: per head ``temperature``, ``ece_before``,
        ``ece_after``, ``nll_before``, ``nll_after`` (validation ECE and NLL at T = 1
        and at the fitted T; the fit minimises the NLL, on a small validation split the
        ECE may still rise); a single-head run has them at the top level. ``{}`` when
        the model has no temperature.
    """
    from vocalis.models.calibration import calibrate_temperature

    model = s.raw_model
    if not getattr(getattr(model, "config", None), "temperature", False):
        return {}
    logits = _split_logits(s, "uncalibrated_logits")
    if getattr(model.config, "head", "") == "cosine":  # probabilities are softmax(scale * cos / T)
        logits = logits * float(model.config.cosine_scale)
    heads = s.data.heads
    if heads is None:
        targets = np.asarray(s.data.val.targets, dtype=np.int64)
        t = calibrate_temperature(torch.as_tensor(logits), torch.as_tensor(targets))
        model.set_temperature(t)
        record = {
            "temperature": t,
            "ece_before": _ece(logits, targets, 1.0),
            "ece_after": _ece(logits, targets, t),
            "nll_before": _nll(logits, targets, 1.0),
            "nll_after": _nll(logits, targets, t),
        }
        return {"split": "val", "n": len(targets), **record}
    layout = s.data.layout
    packed = s.data.val.head_targets.double().numpy()
    out: dict[str, Any] = {}
    for i, (h, (o0, o1), (t0, _)) in enumerate(
        zip(heads, layout.outputs, layout.targets, strict=True)
    ):
        if h.kind != "multiclass":
            continue
        keep = np.isfinite(packed[:, t0])
        lg, y = logits[keep, o0:o1], packed[keep, t0].astype(np.int64)
        t = calibrate_temperature(torch.as_tensor(lg), torch.as_tensor(y))
        model.set_temperature(t, head=i)
        out[h.name] = {
            "temperature": t,
            "ece_before": _ece(lg, y, 1.0),
            "ece_after": _ece(lg, y, t),
            "nll_before": _nll(lg, y, 1.0),
            "nll_after": _nll(lg, y, t),
            "n": int(keep.sum()),
        }
    return {"split": "val", "heads": out} if out else {}


def fit_post_hoc(s: Session) -> None:
    """Thresholds and temperatures on the validation split (rank 0), logged and recorded."""
    if not s.engine.is_main:
        return
    for name, th in fit_thresholds(s).items():
        s.run.log(f"Thresholds of {name} (max F1 on validation): {th}")
    record = fit_temperature(s)
    s.state.calibration = record
    if not record:
        return
    items = record["heads"].items() if "heads" in record else [("model", record)]
    for name, r in items:
        s.run.log(
            f"Temperature of {name}: {r['temperature']:.3f} (validation ECE "
            f"{r['ece_before']:.4f} -> {r['ece_after']:.4f})"
        )


__all__ = ["fit_post_hoc", "fit_temperature", "fit_thresholds"]
