"""Round 10: richer pooling of the frozen GE2E layer 1-2 mix than mean and std.

The recipe's ``ssl`` model pools the layer mix with mean + std (``pooling: stats``), the
same statistics as the linear SVM of round 4; both sit at about 0.85 nested inner. This
writes other poolings of the same frames (the 0.5 / 0.5 mix the recipe starts from) at
speeds 1.0 / 0.9 / 1.1, for the simulation of ``ssl_head_protocol.py --name ge2eP_<kind>``:
``work/research/emodb_ge2eP_<kind>[_speed<f>].npy`` (N, D) in ``list_corpus`` order.

* ``stats``: mean, std (the control: equals ``ge2eMix0.5``);
* ``dstd<k>``: mean, std, and the std of the differences ``h[t + k] - h[t]`` (dynamics);
* ``skew``: mean, std and skewness per dimension;
* ``thirds``: the mean of each third of the utterance, and the std over all frames;
* ``minmax``: mean, std, and the 10th / 90th percentiles.

    python bench/research/extract_ge2e_pooling.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from extract_ge2e_mix import layer_frames, save_views

from vocalis.encoders.select import open_encoder


def poolings(h: torch.Tensor) -> dict[str, torch.Tensor]:
    """Pooled vectors of frames ``h`` (T, H) by kind."""
    mean, std = h.mean(0), h.std(0)
    out = {"stats": torch.cat([mean, std])}
    for k in (1, 5, 20):
        d = h[k:] - h[:-k] if len(h) > k + 1 else torch.zeros(2, h.shape[1])
        out[f"dstd{k}"] = torch.cat([mean, std, d.std(0)])
    z = (h - mean) / std.clamp_min(1e-5)
    out["skew"] = torch.cat([mean, std, z.pow(3).mean(0)])
    parts = torch.tensor_split(h, 3)
    out["thirds"] = torch.cat([p.mean(0) if len(p) else mean for p in parts] + [std])
    q = torch.quantile(h, torch.tensor([0.1, 0.9]), dim=0)
    out["minmax"] = torch.cat([mean, std, q[0], q[1]])
    return out


def main() -> None:
    torch.set_num_threads(1)
    enc = open_encoder("ge2e", (1, 2)).eval()

    def pooled(path: Path, speed: float) -> dict[str, torch.Tensor]:
        h1, h2 = layer_frames(enc, path, speed)
        return {f"ge2eP_{kind}": v for kind, v in poolings(0.5 * h1 + 0.5 * h2).items()}

    save_views(pooled)


if __name__ == "__main__":
    main()
