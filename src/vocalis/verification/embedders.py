"""Speaker embeddings for verification: any checkpoint that embeds, or the GE2E d-vector.

:func:`load_embedder` takes a *spec*:

- ``ge2e``: the pretrained GE2E speaker encoder (:mod:`vocalis.encoders.ge2e`), used
  zero-shot as ``resemblyzer`` does: 1.6 s partial utterances every 0.77 s (the last
  one kept when it covers at least 75 % of a window), each embedded and
  L2-normalised, averaged and L2-normalised again (256-d). Tier 0 resamples to
  16 kHz and leaves the level alone (the encoder raises it to -30 dBFS itself);
- a checkpoint (run folder, ``RUN/model``, file; see
  :func:`vocalis.inference.resolve_checkpoint`) whose model implements
  :class:`vocalis.inference.kinds.Embedder`: the ``sv`` embedding of models that
  have one (speaker-verification models such as ``sv_fusion``), else the backbone's
  ``pt`` embedding (any neural classifier, e.g. one trained with the speaker as its label);
- a *verifier folder* written by ``vocalis sv calibrate --checkpoint ge2e --out DIR``:
  ``DIR/verification.json`` names the embedder and holds its calibrated threshold.

Embeddings of files are cached per clip in a :class:`~vocalis.features.cache.FeatureCache`
(the feature cache's store, local folder or URL), keyed on each file's content hash and
the embedder's identity (its weights, the embedding kind and tier 0), written atomically.

Example:
    >>> import torch
    >>> emb = load_embedder("ge2e")  # doctest: +SKIP
    >>> emb.embed(torch.randn(2, 32000), torch.tensor([32000, 16000])).shape  # doctest: +SKIP
    torch.Size([2, 256])
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from vocalis.errors import ModelError, VocalisError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from vocalis.audio import Tier0Config
    from vocalis.features.cache import FeatureCache

logger = logging.getLogger(__name__)

__all__ = [
    "GE2E_SPEC",
    "VERIFIER_FILE",
    "GE2EDVector",
    "SpeakerEmbedder",
    "load_embedder",
]

#: The spec of the pretrained zero-shot anchor.
GE2E_SPEC = "ge2e"

#: File of a verifier folder (an embedder without a checkpoint, and its threshold).
VERIFIER_FILE = "verification.json"

_PARTIAL_FRAMES = 160  # 1.6 s of 10 ms frames
_PARTIAL_STEP = 77  # round(16000 / 1.3 / 160): 1.3 partials per second
_MIN_COVERAGE = 0.75


class GE2EDVector(nn.Module):
    """The GE2E speaker embedding of whole utterances (``resemblyzer``'s scheme).

    Implements :class:`vocalis.inference.kinds.Embedder`: ``embed(waveform,
    lengths, kind, pooling)``; ``kind`` and ``pooling`` are accepted and ignored
    (there is one embedding).

    Args:
        encoder: a 3-layer :class:`~vocalis.encoders.ge2e.GE2EEncoder` (real
            weights from ``GE2EEncoder.from_pretrained()``).

    Shape:
        waveform (B, T) 16 kHz, lengths (B,) samples -> (B, 256), unit length.

    Example:
        >>> from vocalis.encoders.ge2e import GE2EEncoder
        >>> model = GE2EDVector(GE2EEncoder()).eval()  # random weights
        >>> wav = torch.randn(2, 40000)
        >>> out = model.embed(wav, torch.tensor([40000, 20000]))
        >>> alone = model.embed(wav[1:, :20000], torch.tensor([20000]))
        >>> out.shape, bool(torch.allclose(out[1], alone[0], atol=1e-5))
        (torch.Size([2, 256]), True)
    """

    sample_rate = 16000

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    @staticmethod
    def partial_starts(n_frames: int) -> list[int]:
        """First frame of each 160-frame partial of an utterance of ``n_frames`` frames.

        Example:
            >>> GE2EDVector.partial_starts(100), GE2EDVector.partial_starts(400)
            ([0], [0, 77, 154, 231])
        """
        starts = list(range(0, max(1, n_frames - _PARTIAL_FRAMES + _PARTIAL_STEP), _PARTIAL_STEP))
        if len(starts) > 1 and (n_frames - starts[-1]) / _PARTIAL_FRAMES < _MIN_COVERAGE:
            starts.pop()
        return starts

    def embed(
        self, waveform: torch.Tensor, lengths: torch.Tensor, kind: str = "sv", pooling: str = "mean"
    ) -> torch.Tensor:
        """``(B, 256)`` d-vectors of ``waveform`` (B, T) with ``lengths`` (B,) samples."""
        from vocalis.encoders.ge2e import ge2e_mel_batch

        lengths = lengths.long()
        mel = ge2e_mel_batch(waveform.float(), lengths)  # (B, N, 40), levels per valid samples
        frames = self.encoder.frame_lengths(lengths)
        windows, owner = [], []
        for b in range(mel.shape[0]):
            n = int(frames[b])
            valid = mel[b, :n]
            for s in self.partial_starts(n):
                win = valid[s : s + _PARTIAL_FRAMES]
                if win.shape[0] < _PARTIAL_FRAMES:  # resemblyzer pads the audio with zeros
                    win = torch.nn.functional.pad(win, (0, 0, 0, _PARTIAL_FRAMES - win.shape[0]))
                windows.append(win)
                owner.append(b)
        parts = self.encoder.embed(torch.stack(windows))  # (P, 256), unit length
        index = torch.tensor(owner, device=parts.device)
        sums = torch.zeros(mel.shape[0], parts.shape[1], device=parts.device, dtype=parts.dtype)
        sums.index_add_(0, index, parts)
        return sums / sums.norm(dim=1, keepdim=True).clamp_min(1e-12)


@dataclass
class SpeakerEmbedder:
    """An embedder for verification: tier 0 + a module that embeds, and where it came from.

    Attributes:
        spec: what :func:`load_embedder` was given.
        module: implements :class:`vocalis.inference.kinds.Embedder`.
        tier0: the tier-0 config audio goes through before :meth:`embed`.
        kind: the embedding kind passed to the module (``sv``, ``pt``; ``ge2e``).
        identity: hash of the weights, kind and tier 0 (cache keys).
        checkpoint: the checkpoint file (``None`` for ``ge2e``).
        folder: the verifier folder it was read from, when it was.
        verification: the calibrated threshold record, when one is stored.
        device: torch device.
        name: the model's registry name (``ge2e`` for the anchor).
        train_speakers: the speakers the model was trained on, when it records them
            (:func:`~vocalis.verification.trials.recorded_speakers`), and where from.
    """

    spec: str
    module: nn.Module
    tier0: Tier0Config
    kind: str
    identity: str
    checkpoint: str | None = None
    folder: str | None = None
    verification: dict[str, Any] | None = None
    device: str = "cpu"
    name: str = field(default="")
    train_speakers: tuple[frozenset[str], str] | None = None

    @property
    def sample_rate(self) -> int:
        """The rate in Hz the module takes."""
        return int(self.tier0.sample_rate)

    def embed(self, waveform: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Embeddings of a tier-0 batch.

        Shape:
            waveform (B, T), lengths (B,) samples -> (B, E) float32 on the CPU.
        """
        with torch.inference_mode():
            out = self.module.embed(
                waveform.to(self.device), lengths.to(self.device), kind=self.kind, pooling="mean"
            )
        return out.float().cpu()

    def load(self, path: str) -> torch.Tensor:
        """Tier 0 of one audio file (``(T,)``; raises ``AudioError`` when unreadable)."""
        from vocalis.audio import run_tier0

        return run_tier0(path, self.tier0)

    def embed_files(
        self,
        paths: Sequence[str],
        cache: FeatureCache | None = None,
        batch_size: int = 16,
        progress: bool = False,
    ) -> tuple[np.ndarray, list[str]]:
        """Embed every file (cached ones are read from ``cache``).

        Args:
            paths: audio files.
            cache: per-clip cache (entries under ``{"embedder": identity}``; updated, its
                content-hash index saved), or None.
            batch_size: clips per forward pass.
            progress: show a progress bar.

        Returns:
            ``(embeddings, failed)``: ``(U, E)`` float32 in ``paths`` order (rows of
            unreadable files are nan) and the unreadable paths.
        """
        from tqdm.auto import tqdm

        from vocalis.features.cache import CacheKey
        from vocalis.inference.predictor import pad_batch

        out: list[np.ndarray | None] = [None] * len(paths)
        keys: list[CacheKey | OSError | None] = [None] * len(paths)
        if cache is not None:  # an unreadable file gets an OSError: embedded (and failed) below
            keys = list(cache.keys(paths, {"embedder": self.identity}))
        failed: list[str] = []
        todo: list[int] = []
        for i, key in enumerate(keys):
            hit = cache.get(key) if cache is not None and isinstance(key, CacheKey) else None
            if hit is not None:
                out[i] = hit.numpy()
                continue
            todo.append(i)
        bar = tqdm(total=len(todo), disable=not progress, unit="file", desc="embed")
        pending: list[tuple[int, torch.Tensor]] = []

        def flush() -> None:
            wav, lengths = pad_batch([w for _, w in pending])
            emb = self.embed(wav, lengths).numpy()
            for (i, _), vec in zip(pending, emb, strict=True):
                out[i] = vec
                key = keys[i]
                if cache is not None and isinstance(key, CacheKey):
                    cache.put(key, np.ascontiguousarray(vec, dtype=np.float32))
            pending.clear()

        for i in todo:
            try:
                pending.append((i, self.load(paths[i])))
            except VocalisError as err:
                logger.warning("skipped: %s", err)
                failed.append(paths[i])
            bar.update(1)
            if len(pending) == batch_size:
                flush()
        if pending:
            flush()
        bar.close()
        if cache is not None:
            cache.save_index()
        dims = {v.shape[0] for v in out if v is not None}
        dim = dims.pop() if dims else 0
        matrix = np.full((len(paths), dim), np.nan, dtype=np.float32)
        for i, v in enumerate(out):
            if v is not None:
                matrix[i] = v
        return matrix, failed


def _identity(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _ge2e(device: str) -> tuple[nn.Module, str]:
    from vocalis.encoders.ge2e import GE2EEncoder

    encoder = GE2EEncoder.from_pretrained()  # raises a one-line ConfigError without weights
    return GE2EDVector(encoder).to(device).eval(), encoder.identity


def load_embedder(
    spec: str | os.PathLike, *, kind: str | None = None, device: str = "cpu"
) -> SpeakerEmbedder:
    """The embedder ``spec`` names (see the module docstring).

    Args:
        spec: ``ge2e``, a checkpoint (run folder, ``RUN/model``, file) or a verifier folder.
        kind: embedding kind to ask a checkpoint's model for (default: ``sv`` when
            the model has it, else ``pt``).
        device: torch device.

    Returns:
        The embedder, with the calibrated threshold record when one is stored.

    Raises:
        ModelError: an unreadable checkpoint, a model that gives no embeddings, or a
            broken verifier folder.
        ConfigError: no GE2E weights installed.
    """
    from vocalis.audio import Tier0Config
    from vocalis.config import to_dict

    text = str(spec)
    if text.lower() == GE2E_SPEC:
        module, weights = _ge2e(device)
        tier0 = Tier0Config(sample_rate=16000, normalize="none")
        ident = _identity("ge2e-dvector-partials-v1", weights, to_dict(tier0))
        return SpeakerEmbedder(GE2E_SPEC, module, tier0, "ge2e", ident, device=device, name="ge2e")
    folder = Path(text)
    if folder.is_dir() and (folder / VERIFIER_FILE).is_file():
        from vocalis.checkpoint import MODEL_FILE

        if not (folder / MODEL_FILE).is_file():
            return _from_verifier_folder(folder, kind, device)
    return _from_checkpoint(text, kind, device)


def _from_verifier_folder(folder: Path, kind: str | None, device: str) -> SpeakerEmbedder:
    path = folder / VERIFIER_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        inner, record = str(data["embedder"]), data.get("verification")
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ModelError(
            f"{path}: not a verifier record ({type(err).__name__}: {err}); write it again "
            "with `vocalis sv calibrate --checkpoint ge2e --trials dev.tsv --out DIR`"
        ) from None
    if Path(inner).resolve() == folder.resolve():
        raise ModelError(f"{path}: names its own folder as the embedder")
    emb = load_embedder(inner, kind=kind, device=device)
    emb.folder, emb.verification = str(folder), record if isinstance(record, dict) else None
    return emb


def _from_checkpoint(spec: str, kind: str | None, device: str) -> SpeakerEmbedder:
    from vocalis.config import to_dict
    from vocalis.inference.embed import embedder_of
    from vocalis.inference.pipeline import load_pipeline

    pipe = load_pipeline(spec, device=device)
    ckpt = pipe.checkpoint
    module = None
    if kind is None:  # a speaker-verification model's sv embedding, else the backbone's pt
        try:
            module, kind = embedder_of(pipe.graph, pipe.sample_rate, "sv", "mean", device), "sv"
        except ModelError:
            kind = "pt"
    if module is None:
        try:
            module = embedder_of(pipe.graph, pipe.sample_rate, kind, "mean", device)
        except ModelError as err:
            raise ModelError(
                f"{pipe.source}: {err}; verification needs a model that embeds"
            ) from None
    weights = hashlib.sha256()
    for name, tensor in sorted(ckpt.model_state.items()):
        weights.update(name.encode())
        weights.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    ident = _identity(kind, weights.hexdigest(), to_dict(ckpt.tier0), ckpt.model.to_dict())
    from vocalis.verification.trials import recorded_speakers

    extras = ckpt.training.get("extras") or {}
    record = extras.get("verification") if isinstance(extras, dict) else None
    seen = recorded_speakers(ckpt, spec)
    return SpeakerEmbedder(
        spec,
        module,
        ckpt.tier0,
        kind,
        ident,
        checkpoint=pipe.source,
        verification=record if isinstance(record, dict) else None,
        device=device,
        name=ckpt.model.name,
        train_speakers=None if seen is None else (frozenset(seen[0]), seen[1]),
    )
