"""Mean/std statistics of a fixed mix of GE2E layers 1-2 (round 6: ``ssl_head_frozen.py``).

The ``ssl`` model sums its chosen layers with softmax weights before pooling; this
writes the statistics such a sum gives with the encoder frozen, for the weights of
layer 2 given with ``--w2`` (layer 1 gets ``1 - w2``), at speeds 1.0 / 0.9 / 1.1:
``work/research/emodb_ge2eMix<w2>[_speed<f>].npy`` (N, 512) in ``list_corpus`` order.

    python bench/research/extract_ge2e_mix.py --w2 0.5 0.73

Round 12: ``--vad`` keeps only the speech Silero VAD finds in each clip (Vocalis'
``features.tier0.vad``, default settings) before the speed change, and writes
``emodb_ge2eMix<w2>vad*.npy``. ``--rms-db L`` sets every clip's RMS level to L dBFS
(``features.tier0.normalize: rms``; EmoDB's clips lie at -26..-12 dBFS, and GE2E only
raises a clip to -30) and writes ``emodb_ge2eMix<w2>rms<L>*.npy``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from emodb_loso import DEFAULT_WAV, list_corpus

from vocalis.audio.io import load_audio
from vocalis.encoders.select import open_encoder
from vocalis.ensemble.recipe import speed_perturb


def layer_frames(
    enc,
    path: Path,
    speed: float,
    semitones: float = 0.0,
    layers: tuple[int, ...] = (1, 2),
    vad: bool = False,
    rms_db: float | None = None,
) -> tuple[torch.Tensor, ...]:
    """Frames (T, 256) of the GE2E ``layers`` for the clip at ``path`` played at ``speed``.

    ``semitones``: a pitch shift (Vocalis' ``PitchShift``, Rubber Band) applied first;
    ``vad``: only the speech regions Silero VAD finds are kept, before the pitch and speed;
    ``rms_db``: the clip's RMS level is set to this many dBFS on loading.
    """
    if rms_db is None:
        wav = load_audio(str(path), 16000, normalize="none")
    else:
        wav = load_audio(str(path), 16000, normalize="rms", target_rms_db=rms_db)
    if vad:
        from vocalis.audio.vad import apply_vad

        wav = apply_vad(wav, 16000, source=str(path))
    if semitones:
        from vocalis.augment.rubberband import PitchShift

        wav = PitchShift(semitones, semitones)(wav, 16000, torch.Generator())
    wav = torch.from_numpy(np.ascontiguousarray(speed_perturb(wav.numpy(), 16000, speed)))
    with torch.no_grad():
        out = enc(wav[None], torch.tensor([len(wav)]))
    n = int(out.lengths[0])
    return tuple(out.hidden_states[enc.layer_index(k)][0, :n] for k in layers)


def ms(h: torch.Tensor) -> torch.Tensor:
    """Mean and std over frames: (T, H) -> (2H,)."""
    return torch.cat([h.mean(0), h.std(0)])


def save_views(views: Callable[[Path, float], dict[str, torch.Tensor]]) -> None:
    """Save ``views(path, speed)`` of every clip at speeds 1.0 / 0.9 / 1.1.

    ``views`` maps an array name to the clip's vector; each name is written to
    ``work/research/emodb_<name>[_speed<f>].npy`` (N, D) in ``list_corpus`` order.
    """
    files, _, _ = list_corpus(DEFAULT_WAV)
    Path("work/research").mkdir(parents=True, exist_ok=True)
    for f in (1.0, 0.9, 1.1):
        rows: dict[str, list[np.ndarray]] = {}
        for path in files:
            for name, v in views(path, f).items():
                rows.setdefault(name, []).append(v.numpy())
        suffix = "" if f == 1.0 else f"_speed{f:g}"
        for name, r in rows.items():
            np.save(f"work/research/emodb_{name}{suffix}.npy", np.stack(r))
        print(f"speed {f}: done", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--w2", type=float, nargs="+", default=[0.5])
    ap.add_argument("--vad", action="store_true", help="keep only Silero VAD's speech")
    ap.add_argument("--rms-db", type=float, default=None, help="set each clip's RMS level")
    a = ap.parse_args()
    torch.set_num_threads(1)
    enc = open_encoder("ge2e", (1, 2)).eval()

    def mixes(path: Path, speed: float) -> dict[str, torch.Tensor]:
        h1, h2 = layer_frames(enc, path, speed, vad=a.vad, rms_db=a.rms_db)
        tag = ("vad" if a.vad else "") + ("" if a.rms_db is None else f"rms{a.rms_db:g}")
        return {f"ge2eMix{w:g}{tag}": ms((1 - w) * h1 + w * h2) for w in a.w2}

    save_views(mixes)


if __name__ == "__main__":
    main()
