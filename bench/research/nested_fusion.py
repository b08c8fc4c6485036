"""Nested evaluation of late fusion of members saved by ``nested_linear.py``.

Per outer speaker s, each member has out-of-fold probabilities on the 9 training
speakers (its inner LOSO at its chosen C). Fusion weights are chosen on those
(:func:`vocalis.ensemble.fusion.choose_weights`) and applied to the members'
outer probabilities of s (report only).

Design score (``inner``): within each outer fold, the weights are themselves
chosen leave-one-inner-speaker-out on the OOF probabilities and applied to the
held-out inner speaker; the pooled inner UAR is averaged over outer folds. This
keeps the weight fitting out of the score (the fused OOF UAR with weights fit on
all 9 speakers is reported as ``inner_fit``, optimistic).

    python bench/research/nested_fusion.py --protocol online compare lld_mfcc_pitch
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from vocalis.ensemble.fusion import choose_weights, fuse
from vocalis.ensemble.linear import pooled_uar

WORK = Path("work/research")


def _weights(oof, y, resolution):
    if resolution == 0:
        return tuple([1.0 / len(oof)] * len(oof))
    return choose_weights(oof, y, resolution)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tags", nargs="+")
    ap.add_argument("--protocol", default="online")
    ap.add_argument("--resolution", type=int, default=10)
    ap.add_argument("--uniform", action="store_true", help="plain average, no weights fit")
    args = ap.parse_args()
    if args.uniform:
        args.resolution = 0
    data = [np.load(WORK / f"nested_{t}_{args.protocol}.npz") for t in args.tags]
    y, spk = data[0]["y"], data[0]["spk"]
    outer = np.zeros_like(data[0]["outer"])
    inner_cv, inner_fit, weights = [], [], {}
    for s in sorted(set(spk)):
        tr = spk != s
        oof = [d[f"inner_{s}"] for d in data]
        ytr, str_ = y[tr], spk[tr]
        w = _weights(oof, ytr, args.resolution)
        weights[s] = w
        outer[spk == s] = fuse([d["outer"][spk == s] for d in data], w)
        inner_fit.append(pooled_uar(ytr, fuse(oof, w).argmax(1)))
        pred = np.empty_like(ytr)
        for si in sorted(set(str_)):
            m = str_ == si
            wi = _weights([o[~m] for o in oof], ytr[~m], args.resolution)
            pred[m] = fuse([o[m] for o in oof], wi).argmax(1)
        inner_cv.append(pooled_uar(ytr, pred))
    rec = {
        "members": args.tags,
        "resolution": args.resolution,
        "protocol": args.protocol,
        "inner": round(float(np.mean(inner_cv)), 4),
        "inner_fit": round(float(np.mean(inner_fit)), 4),
        "outer": round(pooled_uar(y, outer.argmax(1)), 4),
        "weights": {k: list(v) for k, v in weights.items()},
    }
    print(
        json.dumps(
            {
                k: rec[k]
                for k in ("members", "protocol", "resolution", "inner", "inner_fit", "outer")
            }
        )
    )
    with open(WORK / "nested_fusion.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
