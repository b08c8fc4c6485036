"""Round 10: statistics of more speed and pitch copies of the GE2E layer 1-2 mix.

The recipe draws its speed from U(0.9, 1.1) and a pitch shift of U(-2, 2) semitones
with p 0.5; the simulation of ``ssl_head_protocol.py`` had only the fixed speed copies
0.9 / 1.1. This writes the mean / std of the 0.5 / 0.5 layer mix (``ge2eMix0.5``) for
each ``SPEED:SEMITONES`` given (the pitch shift first, then the speed change):
``work/research/emodb_ge2eMix0.5_s<speed>_p<semitones>.npy`` (N, 512) in ``list_corpus``
order, read by ``ssl_head_protocol.py --speeds ... --pitches ...``.

    python bench/research/extract_ge2e_copies.py 0.95:0 1.05:0 1:-2 1:-1 1:1 1:2 \
        0.9:-2 0.9:-1 0.9:1 0.9:2 1.1:-2 1.1:-1 1.1:1 1.1:2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from emodb_loso import DEFAULT_WAV, list_corpus
from extract_ge2e_mix import layer_frames, ms

from vocalis.encoders.select import open_encoder


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("copies", nargs="+", help="SPEED:SEMITONES, e.g. 0.95:0 1:-2")
    a = ap.parse_args()
    torch.set_num_threads(1)
    files, _, _ = list_corpus(DEFAULT_WAV)
    enc = open_encoder("ge2e", (1, 2)).eval()
    Path("work/research").mkdir(parents=True, exist_ok=True)
    for spec in a.copies:
        speed, semitones = (float(v) for v in spec.split(":"))
        rows = []
        for path in files:
            h1, h2 = layer_frames(enc, path, speed, semitones)
            rows.append(ms(0.5 * h1 + 0.5 * h2).numpy())
        out = f"work/research/emodb_ge2eMix0.5_s{speed:g}_p{semitones:g}.npy"
        np.save(out, np.stack(rows))
        print(f"{spec}: {out}", flush=True)


if __name__ == "__main__":
    main()
