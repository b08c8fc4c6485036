"""Nested LOSO of neural heads on frozen GE2E statistics (round 6 of the research notes).

Which head, loss and regularisation should the fine-tuned GE2E recipe
(``configs/recipes/emodb_ge2e_finetune.yaml``) use? The encoder is frozen here, so
one design costs seconds: per-utterance mean/std of GE2E layers 1-2
(``extract_vocalis.py --name ge2eL12 --functionals ge2e_stats --layers 1 2``, plus
speed copies 0.9/1.1) go through the same head the ``ssl`` model builds (optional
BatchNorm standardisation without affine weights, MLP blocks, dropout, linear
output), trained with AdamW and class-weighted cross-entropy. Every design is
scored by the *inner* LOSO over the nine training speakers of each outer fold
(the mean over outer folds is the selection score); the outer number is printed
beside it but never chooses.

    python bench/research/extract_vocalis.py --name ge2eL12 --functionals ge2e_stats \
        --layers 1 2 --speed 1.0 0.9 1.1
    python bench/research/ssl_head_frozen.py
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from emodb_loso import DEFAULT_WAV, list_corpus
from sklearn.metrics import balanced_accuracy_score


def head(dim: int, classes: int, mlp: list[int], dropout: float, norm: bool) -> nn.Module:
    """The ``ssl`` model's head on pooled statistics (B, dim) -> logits (B, classes)."""
    layers: list[nn.Module] = [nn.BatchNorm1d(dim, affine=False)] if norm else []
    size = dim
    for n in mlp:
        layers += [nn.Dropout(dropout), nn.Linear(size, n), nn.BatchNorm1d(n), nn.ReLU()]
        size = n
    layers += [nn.Dropout(dropout), nn.Linear(size, classes)]
    return nn.Sequential(*layers)


def fit_predict(xtr, ytr, xte, d: dict, classes: int, seed: int, proba: bool = False) -> np.ndarray:
    """Train one head on (N, D) rows; class-weighted CE, AdamW, cosine; return test argmax.

    With ``proba``: the test rows' softmax probabilities (N_test, classes) instead.
    """
    torch.manual_seed(seed)
    net = head(xtr.shape[1], classes, d["mlp"], d["dropout"], d["norm"])
    opt = torch.optim.AdamW(net.parameters(), lr=d["lr"], weight_decay=d["wd"])
    counts = np.bincount(ytr, minlength=classes).astype(np.float32)
    w = torch.tensor(counts.sum() / (classes * np.maximum(counts, 1)))
    lossf = nn.CrossEntropyLoss(weight=w, label_smoothing=d["smooth"])
    x, y = torch.tensor(xtr, dtype=torch.float32), torch.tensor(ytr)
    steps = d["epochs"] * int(np.ceil(len(x) / 16))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    g = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(d["epochs"]):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 16):
            b = perm[i : i + 16]
            if len(b) < 2:
                continue
            opt.zero_grad()
            lossf(net(x[b]), y[b]).backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        logits = net(torch.tensor(xte, dtype=torch.float32))
    return torch.softmax(logits, 1).numpy() if proba else logits.argmax(1).numpy()


def loso(xs, y, spk, rows, d, classes, speed: bool) -> float:
    """Pooled UAR of LOSO over the speakers of ``rows`` (speed copies train only)."""
    pred = np.empty(len(rows), dtype=int)
    sp = spk[rows]
    for s in np.unique(sp):
        te = rows[sp == s]
        tr = rows[sp != s]
        xtr = np.concatenate([x[tr] for x in (xs if speed else xs[:1])])
        ytr = np.concatenate([y[tr]] * (len(xs) if speed else 1))
        pred[sp == s] = fit_predict(xtr, ytr, xs[0][te], d, classes, 0)
    return float(balanced_accuracy_score(y[rows], pred))


SPEEDS = ("", "_speed0.9", "_speed1.1")


def corpus_arrays(name: str) -> tuple[np.ndarray, np.ndarray, list[str], list[np.ndarray]]:
    """EmoDB labels (ids), speakers, class names and ``work/research/emodb_<name>`` arrays.

    The arrays are the originals and the speed copies 0.9 / 1.1, in ``list_corpus`` order.
    """
    _, speakers, labels = list_corpus(DEFAULT_WAV)
    names = sorted(set(labels))
    y = np.array([names.index(v) for v in labels])
    xs = [np.load(Path("work/research") / f"emodb_{name}{s}.npy") for s in SPEEDS]
    return y, np.array(speakers), names, xs


def report(path: str, fields: dict, inner: list[float], y, outer_pred, t0: float) -> None:
    """Print and append to ``path`` one JSON line: ``fields``, the nested inner score
    (mean of ``inner``), the outer pooled UAR of ``outer_pred`` and the seconds since ``t0``."""
    rec = {
        **fields,
        "inner": round(float(np.mean(inner)), 4),
        "outer": round(float(balanced_accuracy_score(y, outer_pred)), 4),
        "s": round(time.time() - t0, 1),
    }
    print(json.dumps(rec), flush=True)
    with open(path, "a") as f:
        f.write(json.dumps(rec) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", default="ge2eL12")
    ap.add_argument("--out", default="work/research/ssl_head_frozen.jsonl")
    ap.add_argument("--grid", default="{}", help="JSON: grid entries to replace")
    a = ap.parse_args()
    torch.set_num_threads(1)
    y, spk, names, xs = corpus_arrays(a.name)
    grid = {
        "cols": ["L2", "L12"],
        "mlp": [[], [256]],
        "dropout": [0.0, 0.5],
        "wd": [0.01, 1.0],
        "epochs": [12],
        "lr": [1e-3],
        "smooth": [0.05],
        "norm": [True],
        "speed": [True],
    }
    grid.update(json.loads(a.grid))
    keys = list(grid)
    for combo in itertools.product(*grid.values()):
        d = dict(zip(keys, combo, strict=True))
        cols = {"L2": slice(512, 1024), "L12": slice(0, 1024)}.get(d["cols"], slice(None))
        xd = [x[:, cols] for x in xs]
        t0 = time.time()
        inner, outer_pred = [], np.empty(len(y), dtype=int)
        for s in np.unique(spk):
            tr = np.flatnonzero(spk != s)
            inner.append(loso(xd, y, spk, tr, d, len(names), d["speed"]))
            te = np.flatnonzero(spk == s)
            xtr = np.concatenate([x[tr] for x in (xd if d["speed"] else xd[:1])])
            ytr = np.concatenate([y[tr]] * (len(xd) if d["speed"] else 1))
            outer_pred[te] = fit_predict(xtr, ytr, xd[0][te], d, len(names), 0)
        report(a.out, {"name": a.name, **d}, inner, y, outer_pred, t0)


if __name__ == "__main__":
    main()
