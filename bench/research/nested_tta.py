"""Nested LOSO with speed-perturbation test-time augmentation (TTA).

As ``nested_linear.py``, but every held-out speaker (outer and inner) is
predicted as the mean of the probabilities of its original utterances and of
their speed copies (the copies of a held-out speaker are never trained on).
Writes ``nested_<tag>_<protocol>.npz`` like ``nested_linear.py``.

    python bench/research/nested_tta.py --feats ge2eL23 --speed 0.9 1.1 --tag ge2eL23_sp_bal_tta
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nested_linear import DEFAULT_WAV, list_corpus, load, save_nested

from vocalis.ensemble.linear import LinearConfig, _fit_grid, pooled_uar, speaker_standardise


def tta_proba(fitted, x_all, rows_by_copy):
    return np.mean([fitted.proba(x_all[r]) for r in rows_by_copy], 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--feats", required=True)
    ap.add_argument("--speed", type=float, nargs="+", required=True)
    ap.add_argument(
        "--c-grid", type=float, nargs="+", default=[1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1]
    )
    ap.add_argument("--unbalanced", action="store_true")
    ap.add_argument("--protocols", nargs="+", default=["online", "speaker_norm"])
    ap.add_argument("--tag", required=True)
    args = ap.parse_args()
    files, spk, labels = list_corpus(DEFAULT_WAV)
    classes = sorted(set(labels))
    y = np.array([classes.index(v) for v in labels])
    n, k = len(y), len(classes)
    xs = [load(args.feats, files, None)] + [load(args.feats, files, f) for f in args.speed]
    cfg = LinearConfig(c_grid=tuple(args.c_grid), balanced=not args.unbalanced)
    copy = np.repeat(np.arange(len(xs)), n)
    y_all, spk_all = np.tile(y, len(xs)), np.tile(spk, len(xs))
    for protocol in args.protocols:
        t0 = time.time()
        x_all = np.vstack(xs)
        if protocol == "speaker_norm":
            pseudo = np.array([f"{s}/{c}" for s, c in zip(spk_all, copy, strict=True)])
            x_all = speaker_standardise(x_all, pseudo)

        def rows(s, pool):
            return [np.flatnonzero(pool & (spk_all == s) & (copy == c)) for c in range(len(xs))]

        outer = np.zeros((n, k))
        inner_scores, inner_oof = {}, {}
        for s in sorted(set(spk)):
            tr_pool = spk_all != s
            inner_spk = sorted(set(spk[spk != s]))
            inner = {c: np.zeros((n, k)) for c in cfg.c_grid}
            for si in inner_spk:
                tr = tr_pool & (spk_all != si)
                fitted = _fit_grid(x_all[tr], y_all[tr], cfg, cfg.c_grid, k)
                te = rows(si, tr_pool)
                for c, f in fitted.items():
                    inner[c][spk == si] = tta_proba(f, x_all, te)
            m = spk != s
            uars = {c: pooled_uar(y[m], inner[c][m].argmax(1)) for c in cfg.c_grid}
            best = max(cfg.c_grid, key=lambda c: (uars[c], -c))
            inner_scores[s], inner_oof[s] = uars[best], inner[best][m]
            f = _fit_grid(x_all[tr_pool], y_all[tr_pool], cfg, (best,), k)[best]
            outer[spk == s] = tta_proba(f, x_all, rows(s, np.ones_like(tr_pool)))
        rec = {
            "tag": args.tag,
            "feats": args.feats,
            "speed": args.speed,
            "tta": True,
            "protocol": protocol,
        }
        save_nested(rec, y, spk, outer, inner_scores, inner_oof, time.time() - t0)


if __name__ == "__main__":
    main()
