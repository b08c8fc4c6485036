"""Utterance embeddings from a trained model, saved as one ``.npz``.

Three kinds for a neural model (see :meth:`vocalis.models.SpeechClassifier.embed`):
``pt`` the backbone's pooled embedding, ``ft`` the first dense layer of the
head(s) before any activation or normalisation (the linear map's output, merged
across heads by ``pooling``: ``mean`` or ``sum``), ``st`` the dense layer shared by
all heads (only models trained with ``shared_dim > 0`` have one). A functionals
ensemble gives ``pt`` (its members' functionals) and ``ft`` (the same as its
linear members read them, see :meth:`vocalis.ensemble.model.EnsembleModel.embed`).

The file holds ``ids`` (N,), ``paths`` (N,), ``embeddings`` (N, E) float32 and,
when the manifest has labels, ``labels`` (N,); plus ``kind``, ``pooling``,
``model`` and ``failed`` (paths that could not be read).

Example:
    >>> result = embed("runs/x", manifest="test.csv", kind="pt", out="emb.npz")  # doctest: +SKIP
    >>> result.embeddings.shape  # doctest: +SKIP
    (107, 192)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from vocalis.errors import ConfigError, DataError, ModelError, VocalisError
from vocalis.io import PATH_TYPES

if TYPE_CHECKING:
    from vocalis.inference.kinds import Embedder

logger = logging.getLogger(__name__)

KINDS = ("pt", "ft", "st")
POOLINGS = ("mean", "sum")


@dataclass
class Embeddings:
    """Embeddings of a set of recordings.

    Attributes:
        ids: utterance ids, (N,).
        paths: audio paths, (N,).
        embeddings: (N, E) float32.
        labels: (N,) labels when the manifest had them, else None.
        failed: paths skipped because they could not be read.
    """

    ids: list[str]
    paths: list[str]
    embeddings: np.ndarray
    labels: list[str] | None = None
    failed: list[str] = field(default_factory=list)


def embedder_of(
    graph: torch.nn.Module, sample_rate: int, kind: str, pooling: str, device: str
) -> Embedder:
    """The model's embedder; fails fast (before reading any audio) when it lacks ``kind``.

    Embeds half a second of silence once, so a kind the model lacks is found before
    any audio is read (used by ``vocalis embed`` and by speaker verification).

    Args:
        graph: a checkpoint's built module (:attr:`vocalis.inference.Pipeline.graph`).
        sample_rate: the rate in Hz the module takes.
        kind: the embedding kind to probe.
        pooling: the pooling to probe.
        device: where the module runs.

    Returns:
        ``graph``, typed as an :class:`~vocalis.inference.kinds.Embedder`.

    Raises:
        ModelError: the model gives no embeddings, or none of that kind.
    """
    from vocalis.inference.kinds import Embedder

    if not isinstance(graph, Embedder):
        raise ModelError(f"a {type(graph).__name__} model gives no embeddings")
    probe = torch.zeros(1, sample_rate // 2, device=device)
    try:
        with torch.inference_mode():
            graph.embed(
                probe, torch.tensor([probe.shape[1]], device=device), kind=kind, pooling=pooling
            )
    except VocalisError:
        raise
    except (ValueError, KeyError, AttributeError) as err:
        raise ModelError(f"embed(kind={kind!r}, pooling={pooling!r}) failed: {err}") from None
    return graph


def embed(
    checkpoint: str | os.PathLike | None,
    manifest: str | os.PathLike | Any = None,
    inputs: Sequence[str | os.PathLike] | None = None,
    *,
    kind: str = "pt",
    pooling: str = "mean",
    out: str | os.PathLike | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    progress: bool = True,
) -> Embeddings:
    """Compute embeddings of every recording of a manifest (or of files and folders).

    Args:
        checkpoint: model checkpoint; None = the bundled model.
        manifest: manifest CSV (``path``, optional ``id`` and ``label``) or a
            :class:`~vocalis.data.Manifest`.
        inputs: audio files or folders, instead of (or besides) ``manifest``.
        kind: ``pt``, ``ft`` or ``st`` (see the module docstring).
        pooling: ``mean`` or ``sum`` across heads for ``ft``.
        out: ``.npz`` file to write.
        batch_size: recordings per forward pass.
        device: torch device.
        progress: show a progress bar.

    Returns:
        The embeddings (unreadable files skipped with a one-line warning each).

    Raises:
        ConfigError: unknown kind or pooling.
        ModelError: the model has no layer of that kind (``st`` without a shared layer).
        DataError: nothing to embed.
    """
    from tqdm.auto import tqdm

    from vocalis.audio import run_tier0
    from vocalis.inference.inputs import collect_inputs
    from vocalis.inference.pipeline import load_pipeline
    from vocalis.inference.predictor import pad_batch

    if kind not in KINDS:
        raise ConfigError(f"--type {kind!r}: expected one of {', '.join(KINDS)}")
    if pooling not in POOLINGS:
        raise ConfigError(f"--pooling {pooling!r}: expected one of {', '.join(POOLINGS)}")
    pipe = load_pipeline(checkpoint, device=device)
    embedder = embedder_of(pipe.graph, pipe.sample_rate, kind, pooling, device)
    items: list[tuple[str, str]] = []
    labels: dict[str, str] = {}
    if manifest is not None and not isinstance(manifest, PATH_TYPES):  # a Manifest
        items += list(zip(manifest.paths, manifest.column("id"), strict=True))
        if manifest.has("label"):
            labels = dict(zip(manifest.paths, manifest.labels(), strict=True))
    elif manifest is not None:
        from vocalis.inference.inputs import manifest_items

        items += manifest_items(manifest)
        labels = _manifest_labels(manifest)
    if inputs:
        items += collect_inputs(list(inputs))
    if not items:
        raise DataError("nothing to embed: give --manifest or audio files")
    ids, paths, vectors, failed = [], [], [], []
    bar = tqdm(total=len(items), disable=not progress, unit="file", desc="embed")

    def flush(batch: list[tuple[str, str, torch.Tensor]]) -> None:
        wav, lengths = pad_batch([w for _, _, w in batch])
        with torch.inference_mode():  # tier 0 already levelled the audio
            emb = embedder.embed(wav.to(device), lengths.to(device), kind=kind, pooling=pooling)
        vectors.append(emb.float().cpu().numpy())
        ids.extend(i for _, i, _ in batch)
        paths.extend(p for p, _, _ in batch)

    pending: list[tuple[str, str, torch.Tensor]] = []
    for path, uid in items:
        try:
            pending.append((path, uid, run_tier0(path, pipe.tier0)))
        except VocalisError as err:
            logger.warning("skipped: %s", err)
            failed.append(path)
        bar.update(1)
        if len(pending) == batch_size:
            flush(pending)
            pending = []
    if pending:
        flush(pending)
    bar.close()
    if not vectors:
        raise DataError(f"none of the {len(items)} recordings could be read")
    matrix = np.concatenate(vectors, axis=0).astype(np.float32)
    found = [labels.get(p, "") for p in paths] if labels else None
    result = Embeddings(ids, paths, matrix, found, failed)
    if out is not None:
        save_embeddings(out, result, kind=kind, pooling=pooling, model=pipe.model_name)
    return result


def _manifest_labels(manifest: str | os.PathLike) -> dict[str, str]:
    """``{path: label}`` when the manifest has a label column, else ``{}``."""
    from vocalis.data import read_manifest

    try:
        m = read_manifest(manifest)
    except DataError:
        return {}
    return dict(zip(m.paths, m.labels(), strict=False)) if m.has("label") else {}


def save_embeddings(
    path: str | os.PathLike, result: Embeddings, *, kind: str, pooling: str, model: str
) -> None:
    """Write ``result`` as a compressed ``.npz`` (atomically)."""
    from vocalis.io import write_npz

    arrays = {
        "ids": np.array(result.ids, dtype=str),
        "paths": np.array(result.paths, dtype=str),
        "embeddings": result.embeddings,
        "kind": np.array(kind),
        "pooling": np.array(pooling),
        "model": np.array(model),
        "failed": np.array(result.failed, dtype=str),
    }
    if result.labels is not None:
        arrays["labels"] = np.array(result.labels, dtype=str)
    write_npz(path, arrays, compressed=True)
