"""Round 13: ensembles whose members differ in what they see, not only in their seed.

Round 11 averaged the probabilities of heads that differ only in their seed (3 heads:
+0.005 nested inner). Members that look at different *views* of the frozen encoder
(another layer mix, another augmentation) should disagree more, and an average of
members that disagree gains more. This script makes that cheap to test:

* ``fit``: one member, i.e. one ``(--name, --seed, options)`` of ``ssl_head_protocol.py``,
  trained in every nested fit (10 outer folds x 9 inner speakers, and the 10 outer
  fits). Its softmax probabilities are saved to ``work/research/views/<tag>.npz``:
  ``inner`` (10, N, C), row ``o`` holding the inner out-of-speaker probabilities of the
  training rows of outer fold ``o`` (NaN on its test speaker), and ``outer`` (N, C).
* ``combine``: the nested inner score (mean over outer folds of the inner pooled UAR) and
  the outer pooled UAR of the averaged probabilities of the members named. The outer
  number is printed and never chooses.

    python bench/research/ssl_head_views.py fit --tag mix05_s0 --name ge2eMix0.5 --seed 0
    python bench/research/ssl_head_views.py combine mix05_s0 mix1_s1 mix073_s2
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from sklearn.metrics import balanced_accuracy_score
from ssl_head_frozen import corpus_arrays
from ssl_head_protocol import copy_arrays, fit_proba

VIEWS = Path("work/research/views")


def fit(a: argparse.Namespace) -> None:
    """Train one member in every nested fit and save its probabilities (see the module)."""
    torch.set_num_threads(1)
    y, spk, names, _ = corpus_arrays(a.name)
    xs = copy_arrays(a.name, a.speeds, a.pitches)
    d = {"epochs": a.epochs, "lr": a.lr, "val": 0.0, "keep": "last", "p_speed": a.p_speed}
    d.update(ema=0.0, members=1, bag=False, wd=0.01, smooth=0.05, speeds=a.speeds)
    d.update(pitches=a.pitches, p_pitch=a.p_pitch, norm="none", nap=0, swap=0.0, swap_scale=1.0)
    c, speakers = len(names), np.unique(spk)
    inner = np.full((len(speakers), len(y), c), np.nan, dtype=np.float32)
    outer = np.empty((len(y), c), dtype=np.float32)
    t0 = time.time()
    for o, s in enumerate(speakers):
        tr, te = np.flatnonzero(spk != s), np.flatnonzero(spk == s)
        for s2 in np.unique(spk[tr]):
            ite, itr = tr[spk[tr] == s2], tr[spk[tr] != s2]
            inner[o, ite] = fit_proba(xs, y, itr, ite, d, c, a.seed, spk)
        outer[te] = fit_proba(xs, y, tr, te, d, c, a.seed, spk)
    VIEWS.mkdir(parents=True, exist_ok=True)
    tmp = VIEWS / f"{a.tag}.tmp.npz"
    np.savez(tmp, inner=inner, outer=outer, y=y, spk=spk, meta=json.dumps(vars(a)))
    tmp.replace(VIEWS / f"{a.tag}.npz")
    print(a.tag, "single:", score([a.tag]), f"{time.time() - t0:.0f}s", flush=True)


def score(tags: list[str]) -> dict[str, float]:
    """Nested inner and outer pooled UAR of the mean probabilities of the members ``tags``."""
    runs = [np.load(VIEWS / f"{t}.npz") for t in tags]
    y, spk = runs[0]["y"], runs[0]["spk"]
    inner = np.mean([r["inner"] for r in runs], axis=0)
    outer = np.mean([r["outer"] for r in runs], axis=0)
    scores = []
    for o, s in enumerate(np.unique(spk)):
        tr = np.flatnonzero(spk != s)
        scores.append(balanced_accuracy_score(y[tr], inner[o, tr].argmax(1)))
    return {
        "inner": round(float(np.mean(scores)), 4),
        "outer": round(float(balanced_accuracy_score(y, outer.argmax(1))), 4),
    }


def main() -> None:
    """``fit`` one member or ``combine`` saved ones (see the module docstring)."""
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit")
    f.add_argument("--tag", required=True)
    f.add_argument("--name", default="ge2eMix0.5")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--epochs", type=int, default=16)
    f.add_argument("--lr", type=float, default=3e-3)
    f.add_argument("--p-speed", type=float, default=0.67)
    f.add_argument("--speeds", type=float, nargs="+", default=[0.9, 1.1])
    f.add_argument("--pitches", type=float, nargs="*", default=[])
    f.add_argument("--p-pitch", type=float, default=0.5)
    c = sub.add_parser("combine")
    c.add_argument("tags", nargs="+")
    a = ap.parse_args()
    if a.cmd == "fit":
        fit(a)
    else:
        print(" + ".join(a.tags), score(a.tags))


if __name__ == "__main__":
    main()
