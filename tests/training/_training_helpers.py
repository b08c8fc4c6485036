"""Tiny synthetic corpora for the training tests: short tones, 3 speakers, 2-3 labels."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from vocalis.testing.checkpoints import TINY_MODEL_OVERRIDES

torch.set_num_threads(1)

#: Small models so that a training epoch takes well under a second.
TINY_TIER1 = {"channels": [8], "lstm_hidden": 8, "lstm_layers": 1, "pooling_hidden": 8}


def write_corpus(
    root: Path,
    *,
    speakers=("s1", "s2", "s3"),
    labels=("low", "high"),
    per_cell: int = 3,
    seconds: float = 0.4,
    extra_columns: dict | None = None,
) -> Path:
    """Write tone wavs (label -> pitch) and a manifest; return the manifest path."""
    import soundfile as sf

    sr = 16000
    freqs = {lab: 200.0 * (2.5**k) for k, lab in enumerate(labels)}
    rng = np.random.default_rng(0)
    rows = []
    for s_i, spk in enumerate(speakers):
        for lab in labels:
            for k in range(per_cell):
                n = int(sr * seconds * (1 + 0.25 * ((k + s_i) % 3)))
                t = np.arange(n) / sr
                f = freqs[lab] * (1 + 0.05 * s_i)
                wav = 0.5 * np.sin(2 * np.pi * f * t) + 0.02 * rng.standard_normal(n)
                path = root / "wav" / f"{spk}_{lab}_{k}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, wav.astype(np.float32), sr)
                row = {"path": str(path), "label": lab, "speaker": spk}
                for col, fn in (extra_columns or {}).items():
                    row[col] = fn(spk, lab, k)
                rows.append(row)
    manifest = root / "manifest.csv"
    with open(manifest, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """A manifest of 18 tone utterances: 3 speakers x 2 labels x 3 takes.

    Besides ``label`` and ``speaker`` it has ``gender`` (2 values in every speaker) and
    ``recognition`` (a number), the columns of the multi-head EmoDB recipe.
    """
    return write_corpus(
        tmp_path_factory.mktemp("corpus"),
        extra_columns={
            "gender": lambda spk, lab, k: "f" if k % 2 else "m",
            "recognition": lambda spk, lab, k: str(60.0 + 10 * k + 5 * (lab == "high")),
        },
    )


def tiny_overrides(manifest: Path, epochs: int = 2) -> list[str]:
    """Overrides for a fast run on ``manifest``."""
    return [
        f"dataset.manifest={manifest}",
        "dataset.val_fraction=0.34",
        *TINY_MODEL_OVERRIDES,
        "train=default",
        f"train.epochs={epochs}",
        "train.batch_size=4",
        "train.lr=0.01",
        "train.warmup_epochs=0",
        "train.patience=0",
    ]


def interrupt_then_resume(cfg, out: Path, monkeypatch, after_steps: int, **train_kwargs):
    """Train into ``out``, killed after ``after_steps`` steps, then resume; the resumed result.

    The interrupted run must leave ``checkpoints/last.pt`` (what the resume reads).
    """
    from vocalis.training import train

    monkeypatch.setenv("VOCALIS_INTERRUPT_AFTER_STEPS", str(after_steps))
    with pytest.raises(KeyboardInterrupt):
        train(cfg, out, progress=False, **train_kwargs)
    assert (Path(out) / "checkpoints" / "last.pt").is_file()
    monkeypatch.delenv("VOCALIS_INTERRUPT_AFTER_STEPS")
    return train(cfg, out, progress=False, **train_kwargs)
