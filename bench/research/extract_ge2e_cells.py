"""Round 10: other views of the frozen GE2E encoder than layers 1-2's outputs.

Writes mean / std statistics (``ssl_head_protocol.py --name <name>``) at speeds 1.0 /
0.9 / 1.1, ``work/research/emodb_<name>[_speed<f>].npy`` in ``list_corpus`` order:

* ``ge2eC_<kind>``: the LSTM *cell* states and gates of layers 1-2, which the network's
  outputs ``h = o * tanh(c)`` squash (the recurrence run step by step, checked against
  ``nn.LSTM`` to 1e-4): ``c2``, ``tc2`` (tanh c2), ``c12`` (0.5 c1 + 0.5 c2), ``h2c2``
  (h2 and c2), ``g2`` (input, forget, output gates of layer 2), ``mixc`` (the h mix and
  the c mix);
* ``ge2eL3_<kind>`` (with ``--layer3``; needs resemblyzer's full weights): layer 3 in
  the mix: ``m23`` (0.5 / 0.5 of layers 2-3), ``m25_3`` (0.75 / 0.25), ``m123`` (1/3
  each), ``m3`` (layer 3 alone).

    python bench/research/extract_ge2e_cells.py [--layer3]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract_ge2e_mix import layer_frames, ms, save_views

from vocalis.audio.io import load_audio
from vocalis.encoders.ge2e import ge2e_mel_batch
from vocalis.encoders.select import open_encoder
from vocalis.ensemble.recipe import speed_perturb


def cell_sequence(layer: torch.nn.LSTM, x: torch.Tensor) -> list[torch.Tensor]:
    """Outputs, cell states and input / forget / output gates (T, H) of one LSTM on (T, In)."""
    pre = x @ layer.weight_ih_l0.T + layer.bias_ih_l0 + layer.bias_hh_l0
    h = c = torch.zeros(layer.hidden_size)
    seqs: list[list[torch.Tensor]] = [[] for _ in range(5)]
    for t in range(len(x)):
        i, f, g, o = (pre[t] + layer.weight_hh_l0 @ h).chunk(4)
        i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
        c = f * c + i * torch.tanh(g)
        h = o * torch.tanh(c)
        for seq, v in zip(seqs, (h, c, i, f, o), strict=True):
            seq.append(v)
    return [torch.stack(s) for s in seqs]


def cell_views(enc, path: Path, speed: float) -> dict[str, torch.Tensor]:
    """The ``ge2eC_*`` vectors of one clip."""
    wav = load_audio(str(path), 16000, normalize="none").numpy()
    wav = torch.from_numpy(np.ascontiguousarray(speed_perturb(wav, 16000, speed)))
    with torch.no_grad():
        out = enc(wav[None], torch.tensor([len(wav)]))
        n = int(out.lengths[0])
        mel = ge2e_mel_batch(wav[None], torch.tensor([len(wav)]))[0, :n]
        h1, c1, _, _, _ = cell_sequence(enc.layers[0], mel)
        h2, c2, i2, f2, o2 = cell_sequence(enc.layers[1], h1)
    reference = out.hidden_states[enc.layer_index(2)][0, :n]
    if not torch.allclose(h2, reference, atol=1e-4):
        raise SystemExit(f"{path}: the step-by-step LSTM differs from nn.LSTM")
    return {
        "c2": ms(c2),
        "tc2": ms(torch.tanh(c2)),
        "c12": ms(0.5 * c1 + 0.5 * c2),
        "h2c2": torch.cat([ms(h2), ms(c2)]),
        "g2": torch.cat([ms(i2), ms(f2), ms(o2)]),
        "mixc": torch.cat([ms(0.5 * h1 + 0.5 * h2), ms(0.5 * c1 + 0.5 * c2)]),
    }


def layer3_views(enc, path: Path, speed: float) -> dict[str, torch.Tensor]:
    """The ``ge2eL3_*`` vectors of one clip."""
    h1, h2, h3 = layer_frames(enc, path, speed, layers=(1, 2, 3))
    return {
        "m23": ms(0.5 * h2 + 0.5 * h3),
        "m25_3": ms(0.75 * h2 + 0.25 * h3),
        "m123": ms((h1 + h2 + h3) / 3),
        "m3": ms(h3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--layer3", action="store_true", help="layer-3 mixes instead of cells")
    a = ap.parse_args()
    torch.set_num_threads(1)
    enc = open_encoder("ge2e", (1, 2, 3) if a.layer3 else (1, 2)).eval()
    views, prefix = (layer3_views, "ge2eL3") if a.layer3 else (cell_views, "ge2eC")
    save_views(lambda path, f: {f"{prefix}_{k}": v for k, v in views(enc, path, f).items()})


if __name__ == "__main__":
    main()
