"""GE2E speaker-encoder statistics of EmoDB (originals and speed copies).

Research probe: does a pretrained speaker encoder that ships its weights inside
a wheel (resemblyzer's GE2E via :mod:`vocalis.encoders.ge2e`, 3-layer LSTM on 40
mel bands, trained on LibriSpeech + VoxCeleb, never on EmoDB) add information to
the functionals?
Per utterance: mean and std over frames of each LSTM layer's output plus the
mean of the 1.6 s partial embeddings -> 3 * 512 + 256 = 1792 values.

Writes ``work/research/emodb_ge2e[_speed<f>].npy`` in ``list_corpus`` order.

    python bench/research/extract_ge2e.py --speed 1.0 0.9 1.1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from emodb_loso import DEFAULT_WAV, list_corpus

from vocalis.audio.io import load_audio
from vocalis.encoders.ge2e import GE2EEncoder, ge2e_mel
from vocalis.ensemble.recipe import speed_perturb


def layer_stats(encoder, mel, window: int = 0) -> np.ndarray:
    """Mean and std of each layer's output, then the mean partial-window embedding."""
    import torch

    x = mel[None]
    if window:  # fresh LSTM state per window of `window` frames, hop window // 2
        starts = range(0, max(mel.shape[0] - window, 0) + 1, window // 2)
        x = torch.stack([mel[s : s + window] for s in starts])
    with torch.inference_mode():
        feats = []
        for h in encoder.layer_outputs(x):
            h = h.reshape(-1, h.shape[-1])
            feats += [h.mean(0), h.std(0)]
        starts = range(0, max(mel.shape[0] - 160, 0) + 1, 80)
        emb = encoder.embed(torch.stack([mel[s : s + 160] for s in starts])).mean(0)
    return torch.cat([*feats, emb]).numpy().astype(np.float64)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--speed", type=float, nargs="*", default=[1.0, 0.9, 1.1])
    ap.add_argument("--window", type=int, default=0, help="frames per fresh-state window")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(2)
    enc = GE2EEncoder.from_pretrained()
    files, _, _ = list_corpus(DEFAULT_WAV)
    Path("work/research").mkdir(parents=True, exist_ok=True)
    for f in args.speed:
        suffix = "" if f == 1.0 else f"_speed{f:g}"
        name = f"ge2e_w{args.window}" if args.window else "ge2e"
        dest = Path("work/research") / f"emodb_{name}{suffix}.npy"
        if dest.exists():
            continue
        t0 = time.time()
        rows = []
        for p in files:
            wav = load_audio(str(p), 16000, normalize="none").numpy()
            wav = speed_perturb(wav, 16000, f)
            mel = ge2e_mel(np.ascontiguousarray(wav))
            if mel.shape[0] < 160:
                mel = torch.nn.functional.pad(mel, (0, 0, 0, 160 - mel.shape[0]))
            rows.append(layer_stats(enc, mel, args.window))
        x = np.stack(rows)
        np.save(dest, x)
        print(f"{dest}: {x.shape} in {time.time() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    main()
