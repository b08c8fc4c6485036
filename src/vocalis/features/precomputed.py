"""Precomputed inputs: per-utterance ``.npy`` files, or ``.pt`` files keyed by utterance id.

Two ways to train on inputs computed elsewhere instead of on audio:

- ``features=npy features.dir=DIR``: ``DIR/<id>.npy`` holds the (C, T) features of
  the manifest row with that ``id`` (C features, T frames);
- ``vocalis train ... --embedding-path embedding.pt --feature-path feature.pt`` (the
  seed's format): each file maps utterance ids to tensors, optionally with the
  speaker of each id. Embeddings are pretrained-model (PTM) outputs: (L, T, H)
  layers x frames x hidden, (T, H) one layer, or (H,) one vector per utterance;
  features are handcrafted (C, T). With both, each utterance's input is the stacked
  ``(L*H + C, T)`` on the features' frames (PTM frames taken at the nearest earlier
  time; an utterance vector is repeated on every frame), the layout of
  :mod:`vocalis.features.ptm_stack` that :mod:`vocalis.models.sv_fusion` reads.

Accepted ``.pt`` layouts (``torch.save`` of plain containers, loaded with
``weights_only=True``): ``{id: tensor}``; ``{"embeddings" | "features" | "data":
{id: tensor}, "speakers" | "labels": {id: speaker}}``; or ``{id: {"embedding" |
"features" | "x": tensor, "speaker" | "label": str}}``. Without a manifest
(``dataset.manifest`` empty) the rows come from the ids and speakers of the files.

The extractors ``npy`` and ``precomputed`` only name these inputs in configs and
checkpoints; they cannot compute anything from audio, so such a model scores
precomputed inputs only (:func:`read_inputs`).

Shape legend: C features, T frames, L layers, H hidden size.

Example:
    >>> import torch
    >>> emb = {"a": torch.zeros(3, 4, 2)}  # 3 layers, 4 frames, hidden 2
    >>> stack_inputs(emb["a"], torch.ones(5, 8)).shape  # 5 handcrafted features, 8 frames
    torch.Size([11, 8])
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vocalis.errors import ConfigError, DataError
from vocalis.features.base import FEATURES, FeatureExtractor
from vocalis.features.config import FeatureConfig

#: Keys of a ``.pt`` file that hold the tensors / the speakers.
TENSOR_KEYS = ("embeddings", "features", "data")
SPEAKER_KEYS = ("speakers", "labels")
ITEM_TENSOR_KEYS = ("embedding", "features", "x")
ITEM_SPEAKER_KEYS = ("speaker", "label")


@dataclass
class Precomputed:
    """The tensors of one ``.pt`` file and the speakers it names.

    Attributes:
        path: the file.
        tensors: utterance id -> tensor.
        speakers: utterance id -> speaker ({} when the file names none).
    """

    path: str
    tensors: dict[str, torch.Tensor]
    speakers: dict[str, str]


def load_pt(path: str | os.PathLike) -> Precomputed:
    """Read a ``.pt`` file of tensors keyed by utterance id (layouts: module docstring).

    Raises:
        DataError: missing or unreadable file, or a layout none of the accepted ones.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(
            f"precomputed inputs {path} do not exist; give a .pt file written by "
            "torch.save({'embeddings': {id: tensor}, 'speakers': {id: spk}})"
        )
    try:
        data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and torch errors alike
        raise DataError(
            f"{path}: not a readable torch file ({type(err).__name__}: {err})"
        ) from None
    if not isinstance(data, dict) or not data:
        raise DataError(f"{path}: expected a dict keyed by utterance id, got {type(data).__name__}")
    speakers: dict[str, str] = {}
    block = next((data[k] for k in TENSOR_KEYS if isinstance(data.get(k), dict)), None)
    if block is not None:
        spk = next((data[k] for k in SPEAKER_KEYS if isinstance(data.get(k), dict)), {})
        speakers = {str(k): str(v) for k, v in spk.items()}
        data = block
    tensors: dict[str, torch.Tensor] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            t = next((value[k] for k in ITEM_TENSOR_KEYS if k in value), None)
            s = next((value[k] for k in ITEM_SPEAKER_KEYS if k in value), None)
            if s is not None:
                speakers[str(key)] = str(s)
            value = t
        if not isinstance(value, torch.Tensor):
            raise DataError(
                f"{path}: entry {key!r} is a {type(value).__name__}, expected a tensor (or a dict "
                f"with one of {', '.join(ITEM_TENSOR_KEYS)})"
            )
        tensors[str(key)] = value.detach().float()
    return Precomputed(str(path), tensors, speakers)


def _ptm_frames(emb: torch.Tensor, where: str) -> torch.Tensor:
    """An embedding as (L*H, T') frames (an utterance vector: T' = 1)."""
    if emb.dim() == 1:
        return emb[:, None]
    if emb.dim() == 2:
        return emb.t()
    if emb.dim() == 3:
        layers, frames, hidden = emb.shape
        return emb.permute(0, 2, 1).reshape(layers * hidden, frames)
    raise DataError(f"{where}: embedding of shape {tuple(emb.shape)}; expected (H,), (T, H) or "
                    "(L, T, H)")  # fmt: skip


def stack_inputs(emb: torch.Tensor | None, feats: torch.Tensor | None) -> torch.Tensor:
    """One utterance's model input from its PTM embedding and / or handcrafted features.

    Shape:
        emb: (H,), (T', H) or (L, T', H); feats: (C, T) -> (L*H + C, T), or (L*H, T')
        without features, or (C, T) without an embedding.
    """
    if emb is None and feats is None:
        raise DataError("no precomputed input for this utterance")
    if feats is None:
        return _ptm_frames(emb, "embedding")  # type: ignore[arg-type]
    if feats.dim() != 2:
        raise DataError(f"features of shape {tuple(feats.shape)}; expected (C, T)")
    if emb is None:
        return feats
    ptm = _ptm_frames(emb, "embedding")
    t, tp = feats.shape[1], ptm.shape[1]
    index = torch.clamp((torch.arange(t) * tp) // max(t, 1), max=tp - 1)
    return torch.cat([ptm[:, index], feats], dim=0)


def read_inputs(
    ids: list[str],
    *,
    dir: str | None = None,
    embedding_path: str | None = None,
    feature_path: str | None = None,
) -> tuple[list[torch.Tensor | None], list[tuple[str, str]]]:
    """The precomputed input of every utterance id, and the ids that have none.

    Args:
        ids: utterance ids (manifest ``id`` column).
        dir: folder of ``<id>.npy`` (C, T) files.
        embedding_path: ``.pt`` of PTM embeddings keyed by id.
        feature_path: ``.pt`` of handcrafted (C, T) features keyed by id.

    Returns:
        ``(inputs, failures)``: one (F, T) float tensor per id (``None`` when missing)
        and ``(id, message)`` for the missing ones.

    Raises:
        ConfigError: no source given, or ``dir`` together with a ``.pt`` file.
        DataError: an unreadable file.
    """
    import numpy as np

    if dir and (embedding_path or feature_path):
        raise ConfigError("features.dir and the .pt inputs (embedding_path / feature_path) "
                          "both give the inputs; keep one")  # fmt: skip
    out: list[torch.Tensor | None] = []
    failures: list[tuple[str, str]] = []
    if dir:
        root = Path(dir)
        if not root.is_dir():
            raise DataError(f"features.dir={dir} is not a folder of <id>.npy files")
        for rid in ids:
            f = root / f"{rid}.npy"
            if not f.is_file():
                out.append(None)
                failures.append((rid, f"{rid}: no {f}"))
                continue
            arr = np.load(f)
            if arr.ndim != 2:
                raise DataError(f"{f}: shape {arr.shape}; expected (C, T) features x frames")
            out.append(torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)))
        return out, failures
    if not (embedding_path or feature_path):
        raise ConfigError("precomputed inputs need features.dir, features.embedding_path or "
                          "features.feature_path")  # fmt: skip
    emb = load_pt(embedding_path).tensors if embedding_path else None
    feats = load_pt(feature_path).tensors if feature_path else None
    for rid in ids:
        e = None if emb is None else emb.get(rid)
        x = None if feats is None else feats.get(rid)
        if (emb is not None and e is None) or (feats is not None and x is None):
            where = embedding_path if emb is not None and e is None else feature_path
            out.append(None)
            failures.append((rid, f"{rid}: not in {where}"))
            continue
        out.append(stack_inputs(e, x))
    return out, failures


def rows_from_pt(*paths: str | None) -> list[dict[str, Any]]:
    """Manifest rows (``path``, ``id``, ``speaker``, ``label`` = speaker) from ``.pt`` files.

    For training without a manifest: the ids present in every given file, with the
    speakers the files name.

    Raises:
        DataError: the files name no speakers, or share no id.
    """
    loaded = [load_pt(p) for p in paths if p]
    speakers: dict[str, str] = {}
    for pc in loaded:
        speakers.update(pc.speakers)
    ids = set.intersection(*(set(pc.tensors) for pc in loaded)) if loaded else set()
    if not speakers:
        names = ", ".join(str(p) for p in paths if p)
        raise DataError(
            f"{names}: no speaker labels ('speakers': {{id: speaker}}); give a manifest "
            "(dataset.manifest) with the speakers"
        )
    rows = [
        {"path": f"precomputed:{rid}", "id": rid, "speaker": speakers[rid], "label": speakers[rid]}
        for rid in sorted(ids)
        if rid in speakers
    ]
    if not rows:
        raise DataError("the precomputed files share no utterance id with speaker labels")
    return rows


class PrecomputedInputs(FeatureExtractor):
    """Names inputs read from files (``npy`` / ``precomputed``); never computes from audio.

    Raises:
        ConfigError: always, when built: there is nothing to compute.
    """

    def __init__(self, config: FeatureConfig) -> None:
        raise ConfigError(
            f"features '{config.name}' are read from files (features.dir, embedding_path, "
            "feature_path), not computed from audio: this model takes precomputed inputs "
            "only (vocalis.features.precomputed.read_inputs); train on audio features "
            "(e.g. features=mfbe_pitch) to score audio files"
        )


FEATURES.register("npy")(PrecomputedInputs)
FEATURES.register("precomputed")(PrecomputedInputs)
