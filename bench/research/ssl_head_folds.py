"""Round 7: the frozen-statistics head (``ssl_head_frozen.py``) on ``ssl_inner.py``'s folds.

How far is the end-to-end recipe from a head on fixed GE2E statistics, on the very
same speakers? The outer speaker(s) of ``--exclude`` are left out and each design is
scored by the pooled UAR over fixed group folds of the others (by default the three
folds ``cross_validate`` drew without speaker 03). ``--seeds N`` averages the
probabilities of N heads; ``--extra NAME`` concatenates another research array
(``work/research/emodb_<NAME>[_speed<f>].npy``); ``--part mean|std`` keeps half of
the statistics.

    python bench/research/ssl_head_folds.py --name ge2eMix0.5 --epochs 4 --lr 3e-3
    python bench/research/ssl_head_folds.py --name ge2eL12 --part L2 --epochs 12 --lr 1e-3
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sklearn.metrics import balanced_accuracy_score
from ssl_head_frozen import corpus_arrays, fit_predict

PARTS = {"all": slice(None), "mean": slice(0, 256), "std": slice(256, 512), "L2": slice(512, 1024)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="ge2eMix0.5")
    ap.add_argument("--part", choices=sorted(PARTS), default="all")
    ap.add_argument("--extra", default="")
    ap.add_argument("--exclude", nargs="+", default=["03"])
    ap.add_argument("--folds", default="11,12,16;10,14,15;08,09,13")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--seeds", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(1)
    y, spk, names, xs = corpus_arrays(a.name)
    xs = [x[:, PARTS[a.part]] for x in xs]
    if a.extra:
        extra = corpus_arrays(a.extra)[3]
        xs = [np.hstack([x, e]) for x, e in zip(xs, extra, strict=True)]
    d = {"mlp": [], "dropout": 0.0, "wd": 0.01, "smooth": 0.05, "norm": True}
    d.update(epochs=a.epochs, lr=a.lr)
    rows = np.flatnonzero(~np.isin(spk, a.exclude))
    prob = np.zeros((len(y), len(names)))
    for fold in a.folds.split(";"):
        test = np.isin(spk[rows], fold.split(","))
        te, tr = rows[test], rows[~test]
        xtr, ytr = np.concatenate([x[tr] for x in xs]), np.concatenate([y[tr]] * len(xs))
        for seed in range(a.seeds):
            prob[te] += fit_predict(xtr, ytr, xs[0][te], d, len(names), seed, proba=True)
    uar = balanced_accuracy_score(y[rows], prob[rows].argmax(1))
    print(json.dumps({**vars(a), "inner": round(float(uar), 4)}))


if __name__ == "__main__":
    main()
