"""A tiny real checkpoint, trained by :func:`vocalis.training.train` on bundled clips.

Plug-ins and tests that need a checkpoint exactly as training writes it (run
folder, ``model.pt``, format, normalisation statistics) use :func:`tiny_run`
instead of assembling a payload by hand. The run trains a small ``tier1`` model
on MFCCs of three bundled EmoDB clips (two of speaker 09 for training, one of
speaker 11 for validation) for one epoch: a few seconds on a CPU. Its weights
are barely trained; use it for plumbing, parity and format checks, not accuracy.

Example:
    >>> run = tiny_run()  # doctest: +SKIP
    >>> Predictor.from_checkpoint(run / "model").classes  # doctest: +SKIP
    ('anger', 'sadness')
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path

#: Sample clips the tiny run uses, by role (paths relative to the samples folder).
TRAIN_CLIPS = ("wav/09a02Wb.wav", "wav/09a07Ta.wav")
VAL_CLIPS = ("wav/11a01Wc.wav",)

#: ``key=value`` overrides of a tiny, fast model: 13 MFCCs, a tier1 with 8 units.
TINY_MODEL_OVERRIDES = (
    "features.cache_dir=null",
    "features.workers=1",
    "features.extractor.name=mfcc",
    "features.extractor.n_mfcc=13",
    "features.extractor.n_mels_mfcc=20",
    "model=tier1",
    "model.params.channels=[8]",
    "model.params.lstm_hidden=8",
    "model.params.lstm_layers=1",
    "model.params.pooling_hidden=8",
)

#: ``key=value`` overrides of the tiny run (on top of the default config).
TINY_OVERRIDES = (
    *TINY_MODEL_OVERRIDES,
    "train=default",
    "train.epochs=1",
    "train.batch_size=2",
    "train.warmup_epochs=0",
    "train.device=cpu",
)


def train_tiny(out_dir: str | os.PathLike, *extra: str) -> Path:
    """Train the tiny run into ``out_dir`` (``extra``: more ``key=value`` overrides).

    Returns:
        The run folder (holding ``model.pt`` and ``checkpoints/``).
    """
    from vocalis.testing import sample_manifest
    from vocalis.training import load_config, train

    rows = sample_manifest()
    index = {p.replace("\\", "/").split("emodb_mini/", 1)[-1]: i for i, p in enumerate(rows.paths)}
    train_idx = [index[p] for p in TRAIN_CLIPS]
    val_idx = [index[p] for p in VAL_CLIPS]
    subset = rows.select(train_idx + val_idx)
    n = len(train_idx)
    cfg = load_config(None, [*TINY_OVERRIDES, *extra])
    train(
        cfg,
        out_dir,
        manifest=subset,
        train_indices=list(range(n)),
        val_indices=list(range(n, len(subset))),
        overwrite=True,
        progress=False,
    )
    return Path(out_dir)


@functools.cache
def tiny_run() -> Path:
    """The tiny run folder, trained once per process into a temporary folder.

    Returns:
        The run folder; ``tiny_run() / "model.pt"`` is its deployable checkpoint.
    """
    return train_tiny(Path(tempfile.mkdtemp(prefix="vocalis-tiny-")) / "run")
