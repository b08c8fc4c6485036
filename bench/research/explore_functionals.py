"""Nested-LOSO exploration of utterance-level functional classifiers on EmoDB.

For every design (features x transform x classifier, with a small hyper-parameter
grid) and protocol (online / speaker_norm) this computes, per outer fold, the
pooled UAR of an inner leave-one-speaker-out on the 9 training speakers for each
grid point; the grid point with the best inner score is refit on all 9 speakers
and predicts the outer speaker. Reported:

* ``inner``: mean over outer folds of the best inner pooled UAR (design choice);
* ``outer``: pooled UAR over the 10 outer speakers (report only).

Reads the openSMILE caches written by ``bench/emodb_loso.py``.
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
from sklearn.metrics import recall_score


def uar(y, p):
    return float(recall_score(y, p, average="macro"))


def spk_norm(x, spk):
    out = np.empty_like(x)
    for s in np.unique(spk):
        m = spk == s
        sd = x[m].std(0)
        out[m] = (x[m] - x[m].mean(0)) / np.where(sd > 1e-12, sd, 1)
    return out


def znorm(xtr, xte):
    mu, sd = xtr.mean(0), xtr.std(0)
    sd = np.where(sd > 1e-12, sd, 1)
    return (xtr - mu) / sd, (xte - mu) / sd


def prep(xtr, xte, transform, online):
    if online:
        xtr, xte = znorm(xtr, xte)
    if transform == "clip":
        xtr, xte = np.clip(xtr, -5, 5), np.clip(xte, -5, 5)
    if transform == "l2":
        xtr = xtr / np.linalg.norm(xtr, axis=1, keepdims=True)
        xte = xte / np.linalg.norm(xte, axis=1, keepdims=True)
    return xtr, xte


def fit_predict(xtr, ytr, xte, clf, grid):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    out = {}
    if clf == "svm":
        ktr, kte = xtr @ xtr.T, xte @ xtr.T
        for c in grid:
            out[c] = SVC(kernel="precomputed", C=c).fit(ktr, ytr).predict(kte)
    elif clf == "svm_ovr":
        from sklearn.svm import LinearSVC

        for c in grid:
            out[c] = LinearSVC(C=c, max_iter=5000).fit(xtr, ytr).predict(xte)
    elif clf == "rbf":
        d = xtr.shape[1]
        for c, g in grid:
            out[(c, g)] = SVC(kernel="rbf", C=c, gamma=g / d).fit(xtr, ytr).predict(xte)
    elif clf == "lr":
        # multinomial LR on the kernel PCA (= all PCs) of train
        _, _, vt = np.linalg.svd(xtr, full_matrices=False)
        ptr, pte = xtr @ vt.T, xte @ vt.T
        for c in grid:
            out[c] = LogisticRegression(C=c, max_iter=2000).fit(ptr, ytr).predict(pte)
    elif clf == "lda":
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        _, _, vt = np.linalg.svd(xtr, full_matrices=False)
        ptr, pte = xtr @ vt.T, xte @ vt.T
        for k in grid:
            out[k] = (
                LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
                .fit(ptr[:, :k], ytr)
                .predict(pte[:, :k])
            )
    return out


def nested(x, y, spk, design, online):
    _, transform, clf, grid = design
    outer_pred = np.empty_like(y)
    inner_best = []
    chosen = {}
    for s in np.unique(spk):
        te = spk == s
        xo, yo, so = x[~te], y[~te], spk[~te]
        preds = {g: np.empty_like(yo) for g in grid}
        for si in np.unique(so):
            ti = so == si
            a, b = prep(xo[~ti], xo[ti], transform, online)
            for g, p in fit_predict(a, yo[~ti], b, clf, grid).items():
                preds[g][ti] = p
        scores = [uar(yo, preds[g]) for g in grid]
        k = int(np.argmax(scores))
        inner_best.append(scores[k])
        chosen[s] = grid[k]
        a, b = prep(xo, x[te], transform, online)
        outer_pred[te] = fit_predict(a, yo, b, clf, [grid[k]])[grid[k]]
    return float(np.mean(inner_best)), uar(y, outer_pred), chosen


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--designs", nargs="+", default=None)
    ap.add_argument("--protocols", nargs="+", default=["online", "speaker_norm"])
    ap.add_argument("--out", default="work/research/explore_functionals.jsonl")
    args = ap.parse_args()
    files, spk, y = list_corpus(DEFAULT_WAV)
    feats = {
        "compare": functionals("ComParE_2016", files, DEFAULT_CACHE, 1),
        "egemaps": functionals("eGeMAPSv02", files, DEFAULT_CACHE, 1),
    }
    feats["compare+egemaps"] = np.hstack([feats["compare"], feats["egemaps"]])
    cgrid = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1e0)
    designs = {
        "compare/none/svm": ("compare", "none", "svm", cgrid),
        "compare/clip/svm": ("compare", "clip", "svm", cgrid),
        "compare/l2/svm": ("compare", "l2", "svm", (1e-2, 1e-1, 1, 10, 100)),
        "compare+egemaps/clip/svm": ("compare+egemaps", "clip", "svm", cgrid),
        "egemaps/none/svm": ("egemaps", "none", "svm", (1e-3, 1e-2, 1e-1, 1, 10)),
        "compare/clip/lr": ("compare", "clip", "lr", (1e-4, 1e-3, 1e-2, 1e-1)),
        "compare/clip/lda": ("compare", "clip", "lda", (50, 100, 200, 400)),
        "compare/clip/rbf": (
            "compare",
            "clip",
            "rbf",
            tuple((c, g) for c in (1, 10, 100) for g in (0.1, 1)),
        ),
    }
    names = args.designs or list(designs)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        d = designs[name]
        for protocol in args.protocols:
            online = protocol == "online"
            x = feats[d[0]] if online else spk_norm(feats[d[0]], spk)
            t0 = time.time()
            inner, outer, chosen = nested(x, y, spk, d, online)
            rec = {
                "design": name,
                "protocol": protocol,
                "inner": round(inner, 4),
                "outer": round(outer, 4),
                "seconds": round(time.time() - t0, 1),
                "chosen": {k: str(v) for k, v in chosen.items()},
            }
            print(
                json.dumps(
                    {k: rec[k] for k in ("design", "protocol", "inner", "outer", "seconds")}
                ),
                flush=True,
            )
            with open(args.out, "a") as f:
                f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
