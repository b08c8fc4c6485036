"""Round 13: ensembles whose members differ in what they see, not only in their seed.

Round 11 averaged the probabilities of heads that differ only in their seed (3 heads:
+0.005 nested inner). Members that look at different *views* of the frozen encoder
(another layer mix, another augmentation) should disagree more, and an average of
members that disagree gains more. This script makes that cheap to test:

* ``fit``: one member, i.e. one ``(--name, --seed, options)`` of ``ssl_head_protocol.py``
  (any of its options; ``--val 0 --keep last`` unless given), trained in every nested
  fit (10 outer folds x 9 inner speakers, and the 10 outer fits). Its softmax
  probabilities are saved to ``work/research/views/<tag>.npz``:
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
from ssl_head_protocol import fit_proba, protocol_inputs, protocol_options, protocol_parser

VIEWS = Path("work/research/views")


def fit(tag: str, argv: list[str]) -> None:
    """Train one member in every nested fit and save its probabilities (see the module)."""
    a = protocol_parser(prog="ssl_head_views.py fit").parse_args(
        ["--val", "0", "--keep", "last", *argv]
    )
    torch.set_num_threads(1)
    y, spk, names, xs = protocol_inputs(a)
    d = protocol_options(a)
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
    tmp = VIEWS / f"{tag}.tmp.npz"
    np.savez(tmp, inner=inner, outer=outer, y=y, spk=spk, meta=json.dumps({"tag": tag, **vars(a)}))
    tmp.replace(VIEWS / f"{tag}.npz")
    print(tag, "single:", score([tag]), f"{time.time() - t0:.0f}s", flush=True)


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
    f = sub.add_parser("fit", help="one member; other options go to ssl_head_protocol.py")
    f.add_argument("--tag", required=True)
    c = sub.add_parser("combine")
    c.add_argument("tags", nargs="+")
    a, rest = ap.parse_known_args()
    if a.cmd == "fit":
        fit(a.tag, rest)
    elif rest:
        ap.error(f"unrecognized arguments: {' '.join(rest)}")
    else:
        print(" + ".join(a.tags), score(a.tags))


if __name__ == "__main__":
    main()
