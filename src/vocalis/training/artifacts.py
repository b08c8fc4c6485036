"""What a run folder holds beside checkpoints and metrics: summary, verification, gates.

- ``model_summary.txt`` (every run, written at the start): each module with its
  output shape on a dummy input and its parameters, then the totals.
- For speaker-labelled runs (``dataset.label_column=speaker``): the embeddings of
  the validation rows scored as trials (every pair; same speaker = target),
  EER and minDCF beside the closed-set accuracy in ``metrics.json``
  (``details.verification_val``). Those speakers are training speakers, so the
  numbers are speaker-dependent; :mod:`vocalis.verification` scores held-out ones.
- ``gating.csv`` + ``gating.png`` + ``gating_summary.csv`` for a model whose output
  carries ``extras["gate"]`` (:mod:`vocalis.models.sv_fusion` with ``fusion=gating``):
  the mean PTM weight of every validation utterance (``gating.csv``) and its
  distribution per speaker and per class of the manifest's ``label`` column, when that
  is not the trained label (``gating_summary.csv``).

The PNGs (curves, confusion, gates) are drawn from these files by
:func:`vocalis.evaluation.plots.plot_run`, which ``vocalis train`` calls at the end.
The analysis after training is best effort: a failure is logged, never fatal.
"""

from __future__ import annotations

import csv
import io
import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from vocalis.training.runfolder import RunFolder
    from vocalis.training.session import Session

log = logging.getLogger(__name__)

#: Frames of the dummy input of ``model_summary.txt`` (samples for waveform models).
SUMMARY_FRAMES = 200


def model_summary(model: nn.Module, input_dim: int, frames: int = SUMMARY_FRAMES) -> str:
    """A text table of ``model``: module, type, output shape on a dummy input, parameters.

    Args:
        model: a :class:`~vocalis.models.SpeechClassifier` (any ``nn.Module`` taking
            ``(features (B, F, T), lengths (B,))``).
        input_dim: F of the dummy input.
        frames: T of the dummy input (a waveform model gets 1 s at 16 kHz instead).

    Returns:
        The table; shapes are left empty when the dummy forward pass fails.

    Example:
        >>> from vocalis.models import build_model
        >>> text = model_summary(build_model("tier1", {"channels": [8]}, 13, 3), 13)
        >>> "total parameters" in text and "(2, 3)" in text
        True
    """
    frames = 16000 if input_dim == 1 else frames
    shapes: dict[str, str] = {}
    hooks = []

    def hook(name: str):
        def record(_module: nn.Module, _inputs: Any, output: Any) -> None:
            out = output[0] if isinstance(output, (tuple, list)) and output else output
            out = getattr(out, "logits", out)
            if isinstance(out, torch.Tensor):
                shapes.setdefault(name, str(tuple(out.shape)))

        return record

    for name, module in model.named_modules():
        hooks.append(module.register_forward_hook(hook(name or "(model)")))
    was_training = model.training
    note = ""
    try:
        model.eval()
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        with torch.no_grad():
            g = torch.Generator().manual_seed(0)  # the run's random streams stay untouched
            x = torch.randn(2, input_dim, frames, generator=g).to(device)
            model(x, torch.tensor([frames, frames], device=device))
    except Exception as err:
        note = f"(output shapes unavailable: {type(err).__name__}: {err})"
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    rows = [("module", "type", "output shape", "parameters", "trainable")]
    for name, module in model.named_modules():
        depth = name.count(".") + 1 if name else 0
        if depth > 3:
            continue
        params = list(module.parameters())
        n = sum(p.numel() for p in params)
        t = sum(p.numel() for p in params if p.requires_grad)
        label = "  " * depth + (name.rsplit(".", 1)[-1] if name else "(model)")
        rows.append((label, type(module).__name__, shapes.get(name or "(model)", ""), n, t))
    widths = [
        max(len(f"{r[i]:,}" if isinstance(r[i], int) else r[i]) for r in rows) for i in range(5)
    ]
    lines = [f"input: (2, {input_dim}, {frames}) dummy batch (batch, features, frames)"]
    for r in rows:
        cells = [f"{c:,}" if isinstance(c, int) else c for c in r]
        lines.append(
            "  ".join(
                c.ljust(w) if i < 3 else c.rjust(w)
                for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )
        )
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    lines += [
        "",
        f"total parameters: {total:,}",
        f"trainable parameters: {trainable:,}",
        f"parameter memory: {4 * total / 2**20:.1f} MiB (float32)",
    ]
    if note:
        lines.append(note)
    return "\n".join(lines) + "\n"


def write_model_summary(run: RunFolder, model: nn.Module, input_dim: int) -> None:
    """Write ``model_summary.txt`` into an active run folder."""
    if run.active:
        run.write_text("model_summary.txt", model_summary(model, input_dim))


@torch.no_grad()
def embed_split(s: Session, dataset: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Embeddings (N, E) and mean gates (N,) or ``None`` of every item of ``dataset``."""
    from vocalis.training.data import EpochBatchSampler, make_loader

    model = s.raw_model
    was_training = model.training
    model.eval()
    device = s.engine.device
    frames = [dataset.num_frames(i) for i in range(len(dataset))]
    sampler = EpochBatchSampler(frames, s.cfg.train.batch_size, shuffle=False, bucketing=True)
    emb: np.ndarray | None = None
    gates: np.ndarray | None = None
    for batch in make_loader(dataset, sampler):
        batch = batch.to(device)
        out = model(batch.features, batch.lengths)
        e = out.embedding.float().cpu().numpy()
        if emb is None:
            emb = np.zeros((len(dataset), e.shape[1]), dtype=np.float64)
        emb[batch.indices.cpu().numpy()] = e
        g = out.extras.get("gate") if out.extras else None
        if g is not None:
            if gates is None:
                gates = np.full(len(dataset), np.nan)
            gates[batch.indices.cpu().numpy()] = g.float().cpu().numpy()
    model.train(was_training)
    assert emb is not None
    return emb, gates


def pair_trials(emb: np.ndarray, speakers: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores and target labels of every unordered pair of rows.

    Shape:
        emb: (N, E) -> scores (N (N - 1) / 2,), labels (same, 1 = same speaker)

    Example:
        >>> s, y = pair_trials(np.array([[1.0, 0], [2.0, 0], [0, 1.0]]), ["a", "a", "b"])
        >>> s.round(3).tolist(), y.tolist()
        ([1.0, 0.0, 0.0], [1, 0, 0])
    """
    x = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    i, j = np.triu_indices(len(x), k=1)
    spk = np.asarray(speakers)
    return np.sum(x[i] * x[j], axis=1), (spk[i] == spk[j]).astype(np.int64)


def verification_scores(scores: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """EER and minDCF (p_target 0.01, C_miss = C_fa = 1) of trial scores, with the trial counts."""
    from vocalis.metrics.verification import compute_eer, compute_min_dcf

    n_tgt, n_non = int(labels.sum()), int(len(labels) - labels.sum())
    if n_tgt == 0 or n_non == 0:
        return {"eer": None, "min_dcf": None, "target_trials": n_tgt, "nontarget_trials": n_non}
    eer = compute_eer(scores, labels)[0]
    dcf = compute_min_dcf(scores, labels)[0]
    return {
        "eer": float(eer),
        "min_dcf": float(dcf),
        "target_trials": n_tgt,
        "nontarget_trials": n_non,
        "p_target": 0.01,
    }


def write_gating(s: Session, gates: np.ndarray, idx: np.ndarray) -> dict[str, Any]:
    """``gating.csv``, ``gating_summary.csv`` and ``gating.png``; returns the summary numbers."""
    from vocalis.io import write_text

    rows = s.data.rows
    label_col = s.cfg.dataset.label_column
    ids = [rows.ids[int(i)] for i in idx]
    speakers = [rows.column("speaker")[int(i)] if "speaker" in rows.columns else "" for i in idx]
    klass_col = "label" if "label" in rows.columns and label_col != "label" else None
    klass = [rows.column(klass_col)[int(i)] for i in idx] if klass_col else None
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "speaker", *(["class"] if klass else []), "gate_ptm"])
    for k, rid in enumerate(ids):
        w.writerow([rid, speakers[k], *([klass[k]] if klass else []), f"{gates[k]:.6f}"])
    write_text(s.run.file("gating.csv"), buf.getvalue())
    groups: dict[tuple[str, str], list[float]] = {}
    for k in range(len(ids)):
        groups.setdefault(("speaker", speakers[k]), []).append(float(gates[k]))
        if klass:
            groups.setdefault(("class", klass[k]), []).append(float(gates[k]))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["by", "group", "n", "mean", "std", "min", "max"])
    for (by, name), vals in sorted(groups.items()):
        v = np.asarray(vals)
        w.writerow([by, name, len(v), *(f"{x:.6f}" for x in (v.mean(), v.std(), v.min(), v.max()))])
    write_text(s.run.file("gating_summary.csv"), buf.getvalue())
    return {
        "mean": float(np.mean(gates)),
        "std": float(np.std(gates)),
        "n": len(gates),
        "on": "val",
    }


def finish_run(s: Session) -> dict[str, Any]:
    """Write the end-of-training files; return details to add to ``metrics.json``.

    Called on rank 0 with the best weights loaded. Nothing here stops a run: a
    failure is logged and the file left out.
    """
    run, details = s.run, {}
    if not run.active:
        return details
    try:
        emb, gates = embed_split(s, s.data.val)
        idx = s.data.val_idx
        if s.cfg.dataset.label_column == "speaker":
            speakers = [s.data.rows.column("speaker")[int(i)] for i in idx]
            ver = verification_scores(*pair_trials(emb, speakers))
            ver["identification_accuracy"] = (s.state.best_val or {}).get("accuracy")
            ver["on"] = "val (training speakers: speaker-dependent)"
            details["verification_val"] = ver
            if ver["eer"] is not None:
                run.log(
                    f"Validation (training speakers): closed-set identification accuracy "
                    f"{ver['identification_accuracy']:.4f}, EER {ver['eer']:.4f}, minDCF "
                    f"{ver['min_dcf']:.4f} on {ver['target_trials']} target / "
                    f"{ver['nontarget_trials']} non-target trials"
                )
        if gates is not None:
            details["gating"] = write_gating(s, gates, idx)
    except Exception as err:
        run.log(f"embedding analysis skipped: {type(err).__name__}: {err}", echo=False)
    return details
