"""openSMILE functionals of speed-perturbed EmoDB (training-time augmentation).

Speed perturbation by factor f: resample the waveform from ``sr`` to ``sr / f``
with soxr and play it back at ``sr`` (tempo and pitch both scale by f), as in
Kaldi's 3-way speed perturbation. Caches ``work/research/emodb_<set>_speed<f>.npy``
rows in the order of ``bench/emodb_loso.list_corpus``.

    python bench/research/extract_speed.py --factors 0.9 1.1 --set ComParE_2016
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from emodb_loso import DEFAULT_WAV, list_corpus


def _chunk(args):
    feature_set, factor, paths = args
    import opensmile
    import soundfile as sf
    import soxr

    smile = opensmile.Smile(
        feature_set=getattr(opensmile.FeatureSet, feature_set),
        feature_level=opensmile.FeatureLevel.Functionals,
    )
    rows = []
    for p in paths:
        x, sr = sf.read(p, dtype="float32")
        y = soxr.resample(x, sr, round(sr / factor), quality="HQ") if factor != 1 else x
        rows.append(smile.process_signal(y, sr).to_numpy()[0])
    return np.stack(rows).astype(np.float64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--factors", type=float, nargs="+", default=[0.9, 1.1])
    ap.add_argument("--set", default="ComParE_2016")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("work/research"))
    args = ap.parse_args()
    files, _, _ = list_corpus(DEFAULT_WAV)
    args.out.mkdir(parents=True, exist_ok=True)
    for f in args.factors:
        dest = args.out / f"emodb_{args.set}_speed{f:g}.npy"
        if dest.exists():
            continue
        t0 = time.time()
        chunks = [(args.set, f, [str(p) for p in files[i :: args.jobs]]) for i in range(args.jobs)]
        with ProcessPoolExecutor(args.jobs) as pool:
            parts = list(pool.map(_chunk, chunks))
        feats = np.empty((len(files), parts[0].shape[1]))
        for i, part in enumerate(parts):
            feats[i :: args.jobs] = part
        np.save(dest, feats)
        print(f"speed {f:g}: {feats.shape} in {time.time() - t0:.0f} s -> {dest}", flush=True)


if __name__ == "__main__":
    main()
