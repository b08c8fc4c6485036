"""Nested LOSO of :class:`vocalis.ensemble.linear.FunctionalClassifier` designs on EmoDB.

Per outer speaker: the classifier is fit on the 9 training speakers (plus, with
``--speed``, speed-perturbed copies of *their* audio only), choosing C by inner
LOSO; its inner pooled UAR at the chosen C is the design's inner score. The
outer speaker is then predicted (report only). Saves, per design and protocol,
``work/research/nested_<tag>.npz`` with outer probabilities and the per-fold
inner out-of-fold probabilities (for fusion-weight selection).

    python bench/research/nested_linear.py --feats compare --speed 0.9 1.1 --tag compare_sp
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from emodb_loso import DEFAULT_CACHE, DEFAULT_WAV, functionals, list_corpus

from vocalis.ensemble.linear import (
    FunctionalClassifier,
    LinearConfig,
    pooled_uar,
    speaker_standardise,
)

WORK = Path("work/research")


def load(name: str, files, speed: float | None):
    sets = {"compare": "ComParE_2016", "egemaps": "eGeMAPSv02"}
    parts = []
    for n in name.split("+"):
        if n in sets:
            if speed is None:
                parts.append(functionals(sets[n], files, DEFAULT_CACHE, 1))
            else:
                parts.append(np.load(WORK / f"emodb_{sets[n]}_speed{speed:g}.npy"))
        else:  # a precomputed (N, D) array in work/research/emodb_<n>[_speed<f>].npy
            suffix = "" if speed is None else f"_speed{speed:g}"
            parts.append(np.load(WORK / f"emodb_{n}{suffix}.npy"))
    return np.hstack(parts)


def save_nested(rec, y, spk, outer, inner_scores, inner_oof, seconds):
    """Score a design (inner mean, outer pooled UAR), log it, save its probabilities."""
    rec = {
        **rec,
        "inner": round(float(np.mean(list(inner_scores.values()))), 4),
        "outer": round(pooled_uar(y, outer.argmax(1)), 4),
        "seconds": round(seconds, 1),
    }
    print(json.dumps(rec), flush=True)
    with open(WORK / "nested_linear.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
    np.savez(
        WORK / f"nested_{rec['tag']}_{rec['protocol']}.npz",
        outer=outer,
        y=y,
        spk=spk,
        **{f"inner_{s}": v for s, v in inner_oof.items()},
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--feats", default="compare")
    ap.add_argument("--speed", type=float, nargs="*", default=[])
    ap.add_argument("--classifier", default="svm")
    ap.add_argument("--c-grid", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2])
    ap.add_argument("--clip", type=float, default=5.0)
    ap.add_argument("--balanced", action="store_true")
    ap.add_argument("--protocols", nargs="+", default=["online", "speaker_norm"])
    ap.add_argument("--tag", required=True)
    args = ap.parse_args()
    files, spk, labels = list_corpus(DEFAULT_WAV)
    classes = sorted(set(labels))
    y = np.array([classes.index(v) for v in labels])
    x0 = load(args.feats, files, None)
    xs = [load(args.feats, files, f) for f in args.speed]
    cfg = LinearConfig(
        classifier=args.classifier,
        c_grid=tuple(args.c_grid),
        clip=args.clip,
        balanced=args.balanced,
    )
    n = len(y)
    for protocol in args.protocols:
        t0 = time.time()
        # rows: originals then each speed copy; pseudo-speaker = (speaker, copy)
        copy = np.repeat(np.arange(1 + len(xs)), n)
        x_all = np.vstack([x0, *xs])
        y_all, spk_all = np.tile(y, 1 + len(xs)), np.tile(spk, 1 + len(xs))
        if protocol == "speaker_norm":
            pseudo = np.array([f"{s}/{c}" for s, c in zip(spk_all, copy, strict=True)])
            x_all = speaker_standardise(x_all, pseudo)
        outer = np.zeros((n, len(classes)))
        inner_scores, inner_oof, chosen = {}, {}, {}
        for s in sorted(set(spk)):
            te = (spk_all == s) & (copy == 0)
            tr = spk_all != s
            clf = FunctionalClassifier(cfg).fit(x_all[tr], y_all[tr], spk_all[tr], copy[tr] > 0)
            outer[te[:n]] = clf.predict_proba(x_all[te])
            inner_scores[s] = clf.inner_uar_[clf.c_]
            chosen[s] = clf.c_
            inner_oof[s] = clf.inner_proba_[copy[tr] == 0]
        rec = {
            "tag": args.tag,
            "feats": args.feats,
            "speed": args.speed,
            "classifier": args.classifier,
            "protocol": protocol,
            "chosen_c": chosen,
        }
        save_nested(rec, y, spk, outer, inner_scores, inner_oof, time.time() - t0)


if __name__ == "__main__":
    main()
