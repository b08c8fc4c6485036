"""Vocalis functionals of EmoDB (originals and speed copies) via ``functional_table``.

Writes ``work/research/emodb_<name>[_speed<f>].npy`` in ``list_corpus`` order,
cached per file in ``work/research/featcache``.

    python bench/research/extract_vocalis.py --name lld_mfcc_pitch --lld mfcc_pitch
    python bench/research/extract_vocalis.py --name ge2eL2v --functionals ge2e_stats --layers 2
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from emodb_loso import DEFAULT_WAV, list_corpus

from vocalis.ensemble.recipe import functional_table
from vocalis.features.functionals import FunctionalsConfig


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--functionals", default="lld_stats")
    ap.add_argument("--lld", default="mfcc")
    ap.add_argument("--layers", type=int, nargs="+", default=[2], help="ge2e_stats layers")
    ap.add_argument("--speed", type=float, nargs="*", default=[1.0, 0.9, 1.1])
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    files, _, _ = list_corpus(DEFAULT_WAV)
    extra = {"layers": tuple(args.layers)} if args.functionals == "ge2e_stats" else {}
    cfg = FunctionalsConfig(args.functionals, lld=args.lld, **extra)
    Path("work/research").mkdir(parents=True, exist_ok=True)
    for f in args.speed:
        suffix = "" if f == 1.0 else f"_speed{f:g}"
        dest = Path("work/research") / f"emodb_{args.name}{suffix}.npy"
        if dest.exists():
            continue
        t0 = time.time()
        x = functional_table([str(p) for p in files], cfg, f, "work/research/featcache")
        np.save(dest, x)
        print(f"{dest}: {x.shape} in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
