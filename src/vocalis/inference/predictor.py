"""Predict with a trained model: one file, a waveform, or many files in batches.

:class:`Predictor` rebuilds the checkpoint's pipeline (tier 0, features,
normalisation, model, labels; see :mod:`vocalis.inference.pipeline`) and
returns :class:`Prediction` objects. :func:`predict` is the function behind
``vocalis predict``: it takes files, folders or manifest CSVs and can write a
resumable CSV.

Example:
    >>> from vocalis.inference import Predictor
    >>> predictor = Predictor.from_checkpoint("runs/emodb")  # doctest: +SKIP
    >>> predictor.predict_file("clip.wav")  # doctest: +SKIP
    Prediction(path='clip.wav', label='angry', confidence=0.91, probs={...}, speech=0.83)

Speech presence: unless ``min_speech`` is ``None``, each recording's share of
speech (Silero VAD, :mod:`vocalis.inference.speech`) is measured after tier 0;
below ``min_speech`` the prediction's ``label`` and ``confidence`` are ``None``
and its :attr:`Prediction.answer` is ``"no speech detected"``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from vocalis.data.targets import decode_outputs
from vocalis.errors import VocalisError
from vocalis.inference.pipeline import Pipeline, load_pipeline
from vocalis.inference.speech import MIN_SPEECH, NO_SPEECH, check_min_speech, speech_share
from vocalis.io import PATH_TYPES

logger = logging.getLogger(__name__)


@dataclass
class Prediction:
    """The model's answer for one recording.

    Attributes:
        path: the file (or a name for an in-memory waveform).
        label: the most probable class; ``None`` when no speech was detected.
        confidence: its probability; ``None`` when no speech was detected.
        probs: probability of every class, in the model's class order (the model's
            output even without speech: not an answer then).
        duration_s: length of the audio after tier 0, in seconds.
        id: utterance id (a manifest's ``id`` column, else the file stem).
        speech: share in [0, 1] of the audio that VAD marks as speech; ``None`` when
            the speech check is off.
        heads: every head's answer of a multi-head model
            (:func:`vocalis.data.targets.decode_outputs`: class and probabilities,
            labels on, or regression values), else ``None``. ``label``, ``confidence``
            and ``probs`` are then the first head's (for a multi-label or regression
            first head, ``label`` is its answer as text and ``confidence`` is ``None``).
    """

    path: str
    label: str | None
    confidence: float | None
    probs: dict[str, float]
    duration_s: float | None = None
    id: str = ""
    speech: float | None = None
    heads: dict[str, Any] | None = None

    @property
    def speech_detected(self) -> bool | None:
        """Whether there was enough speech to classify (``None``: not checked)."""
        return None if self.speech is None else self.label is not None

    @property
    def answer(self) -> str:
        """What to tell a user: the label, or ``"no speech detected"``."""
        return NO_SPEECH if self.label is None else self.label

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for JSON); ``label`` and ``confidence`` are null without speech."""
        return {
            "id": self.id,
            "path": self.path,
            "label": self.label,
            "confidence": self.confidence,
            "answer": self.answer,
            "speech": self.speech,
            "speech_detected": self.speech_detected,
            "probs": dict(self.probs),
            "duration_s": self.duration_s,
            **({"heads": self.heads} if self.heads is not None else {}),
        }


@dataclass
class Failure:
    """A file that could not be predicted, with the one-line reason."""

    path: str
    error: str


@dataclass
class BatchPredictions:
    """What :meth:`Predictor.predict_many` returns: predictions and skipped files.

    Iterating, ``len`` and indexing go over the predictions.
    """

    predictions: list[Prediction] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def __iter__(self) -> Iterator[Prediction]:
        return iter(self.predictions)

    def __len__(self) -> int:
        return len(self.predictions)

    def __getitem__(self, index: int) -> Prediction:
        return self.predictions[index]


def _stem(path: str) -> str:
    name = str(path).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[0] if "." in name else name


def pad_batch(waves: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Zero-pad 1-D waveforms into a batch.

    Shape:
        waves: B tensors (T_i,) -> (B, max T_i), lengths (B,) int64.

    Example:
        >>> batch, lengths = pad_batch([torch.ones(3), torch.ones(1)])
        >>> batch.tolist(), lengths.tolist()
        ([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]], [3, 1])
    """
    lengths = torch.tensor([int(w.shape[0]) for w in waves], dtype=torch.long)
    batch = torch.zeros(len(waves), int(lengths.max()), dtype=torch.float32)
    for i, w in enumerate(waves):
        batch[i, : w.shape[0]] = w
    return batch, lengths


class Predictor:
    """A trained model's pipeline, ready to classify audio.

    Args:
        pipeline: see :func:`vocalis.inference.pipeline.load_pipeline`.
        device: where the features and the model run.
        min_speech: share of speech (Silero VAD) below which a recording is answered
            "no speech detected" instead of a class; ``None`` skips the check.

    Use :meth:`from_checkpoint` rather than the constructor.

    Raises:
        ConfigError: ``min_speech`` outside [0, 1].
    """

    def __init__(
        self, pipeline: Pipeline, device: str = "cpu", min_speech: float | None = MIN_SPEECH
    ) -> None:
        self.pipeline = pipeline
        self.device = torch.device(device)
        self.min_speech = check_min_speech(min_speech)
        self.graph = pipeline.waveform_to_probs(level=False).to(self.device)
        self.heads = pipeline.heads

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike | None = None,
        device: str = "cpu",
        min_speech: float | None = MIN_SPEECH,
    ) -> Predictor:
        """Load a checkpoint (None: the model bundled with Vocalis).

        Args:
            path: a run folder, ``RUN/model`` or a checkpoint file; None: the bundled model.
            device: torch device.
            min_speech: see :class:`Predictor` (``None``: no speech check).

        Raises:
            ModelError: missing, unreadable or inconsistent checkpoint, or no bundled model.
            ConfigError: ``min_speech`` outside [0, 1].
        """
        return cls(load_pipeline(path, device=device), device=device, min_speech=min_speech)

    # -- facts -----------------------------------------------------------------------
    @property
    def classes(self) -> tuple[str, ...]:
        """Class names, in the order of the probabilities."""
        return self.pipeline.classes

    @property
    def sample_rate(self) -> int:
        """Rate in Hz the model's features expect (tier 0 resamples to it)."""
        return self.pipeline.sample_rate

    def info(self) -> dict[str, Any]:
        """Model name, classes, features, sample rate, versions, heads (for ``/health``)."""
        from vocalis import __version__

        return {
            "model": self.pipeline.model_name,
            "classes": list(self.classes),
            "kind": self.pipeline.kind,
            "features": None if self.pipeline.features is None else self.pipeline.features.name,
            "sample_rate": self.sample_rate,
            "checkpoint": os.path.basename(self.pipeline.source),
            "checkpoint_vocalis_version": self.pipeline.meta.get("vocalis_version"),
            "version": __version__,
            **({"heads": self._head_info()} if self.heads else {}),
        }

    def _head_info(self) -> list[dict[str, Any]]:
        return [{"name": h.name, "kind": h.kind, "outputs": list(h.classes)} for h in self.heads]

    # -- tier 0 ------------------------------------------------------------------------
    def load(self, path: str | os.PathLike) -> Tensor:
        """Decode ``path`` and apply the checkpoint's tier 0. Shape: returns (T,)."""
        from vocalis.audio import run_tier0

        return run_tier0(path, self.pipeline.tier0)

    def prepare(self, wav: Tensor | np.ndarray, sample_rate: int, name: str = "waveform") -> Tensor:
        """Apply the checkpoint's tier 0 to decoded samples. Shape: (T,) or (T, C) -> (T',)."""
        from vocalis.audio.tier0 import tier0_waveform

        return tier0_waveform(wav, sample_rate, self.pipeline.tier0, source=name)

    # -- prediction --------------------------------------------------------------------
    @torch.inference_mode()
    def probabilities(self, waves: Sequence[Tensor]) -> Tensor:
        """Probabilities for tier-0 waveforms, run as one padded batch.

        Shape:
            waves: B tensors (T_i,) -> (B, C)
        """
        batch, lengths = pad_batch(waves)
        probs = self.graph(batch.to(self.device), lengths.to(self.device))
        return probs.float().cpu()

    def speech(self, wav: Tensor) -> float | None:
        """Share of a tier-0 waveform that VAD marks as speech (``None``: check off)."""
        if self.min_speech is None:
            return None
        return speech_share(wav, self.sample_rate, self.pipeline.tier0)

    def _make(
        self,
        path: str,
        probs: Tensor,
        wav: Tensor | None,
        uid: str = "",
        speech: float | None = None,
        duration_s: float | None = None,
    ) -> Prediction:
        values = [float(p) for p in probs.tolist()]
        speaks = speech is None or self.min_speech is None or speech >= self.min_speech
        heads = None
        if self.heads is not None:
            heads = decode_outputs(self.heads, values, standardized=False)
            values = values[: self.heads[0].size]
        best = int(np.argmax(values))
        label, confidence = self.classes[best], values[best]
        if self.heads is not None and self.heads[0].kind != "multiclass":
            label, confidence = head_answer(heads[self.heads[0].name]), None
        return Prediction(
            path=path,
            label=label if speaks else None,
            confidence=confidence if speaks else None,
            probs=dict(zip(self.classes, values, strict=False)),
            duration_s=wav.shape[0] / self.sample_rate if wav is not None else duration_s,
            id=uid or _stem(path),
            speech=speech,
            heads=heads,
        )

    def predict_waveform(
        self, wav: Tensor | np.ndarray, sample_rate: int, name: str = "<waveform>"
    ) -> Prediction:
        """Classify decoded samples (tier 0 is applied: resampling, denoising, VAD, level).

        Shape:
            wav: (T,) or (T, C) at ``sample_rate``.

        Raises:
            AudioError: empty, non-finite or too short audio.
        """
        x = self.prepare(wav, sample_rate, name)
        return self._make(name, self.probabilities([x])[0], x, speech=self.speech(x))

    def predict_file(self, path: str | os.PathLike) -> Prediction:
        """Classify one audio file (local path or fsspec URL).

        Raises:
            AudioError: the file is missing, undecodable, empty or too short.
        """
        x = self.load(path)
        return self._make(str(path), self.probabilities([x])[0], x, speech=self.speech(x))

    def predict_bytes(self, data: bytes, name: str = "<upload>") -> Prediction:
        """Classify an in-memory audio file (an upload)."""
        from vocalis.audio.io import decode_bytes

        samples, sr = decode_bytes(data, name)
        return self.predict_waveform(samples, sr, name)

    def iter_batches(
        self,
        paths: Iterable[str | os.PathLike],
        batch_size: int = 16,
        progress: bool = True,
        ids: Sequence[str] | None = None,
        failures: list[Failure] | None = None,
    ) -> Iterator[list[Prediction]]:
        """Predict files in padded batches, yielding predictions chunk by chunk.

        Files are read ``sort_window = 8 * batch_size`` at a time and batched by
        length within that window (less padding, same numbers); each chunk is
        yielded in input order. Unreadable files are skipped with a one-line
        warning and appended to ``failures``.

        Args:
            paths: audio files.
            batch_size: files per forward pass.
            progress: show a progress bar (tqdm, on stderr).
            ids: utterance ids aligned with ``paths`` (default: file stems).
            failures: list that collects :class:`Failure` records.
        """
        from tqdm.auto import tqdm

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        paths = [str(p) for p in paths]
        ids = list(ids) if ids is not None else [_stem(p) for p in paths]
        bar = tqdm(total=len(paths), disable=not progress, unit="file", desc="predict")
        items: list[tuple[str, str, Tensor, float | None]] = []
        try:
            for path, uid in zip(paths, ids, strict=False):
                try:
                    wav = self.load(path)
                    items.append((path, uid, wav, self.speech(wav)))
                except VocalisError as err:
                    logger.warning("skipped: %s", err)
                    if failures is not None:
                        failures.append(Failure(path, str(err)))
                bar.update(1)
                if len(items) == 8 * batch_size:
                    yield self._predict_items(items, batch_size)
                    items = []
            if items:
                yield self._predict_items(items, batch_size)
        finally:
            bar.close()

    def _predict_items(
        self, items: list[tuple[str, str, Tensor, float | None]], batch_size: int
    ) -> list[Prediction]:
        """Predict ``items`` in length-sorted batches; return them in input order."""
        order = sorted(range(len(items)), key=lambda i: items[i][2].shape[0])
        out: list[Prediction | None] = [None] * len(items)
        for b in range(0, len(order), batch_size):
            idx = order[b : b + batch_size]
            probs = self.probabilities([items[i][2] for i in idx])
            for i, p in zip(idx, probs, strict=True):
                path, uid, wav, speech = items[i]
                out[i] = self._make(path, p, wav, uid, speech)
        return [p for p in out if p is not None]

    def predict_cached(
        self,
        paths: Sequence[str | os.PathLike],
        cache: str | os.PathLike,
        batch_size: int = 16,
        progress: bool = True,
        ids: Sequence[str] | None = None,
    ) -> BatchPredictions:
        """Predict files from features kept in a feature cache (``vocalis eval --cache-dir``).

        The features are those of the checkpoint's own pipeline (tier 0 + extractor),
        computed once by :func:`~vocalis.features.pipeline.extract_many` into ``cache``
        (the cache training fills: a folder or an fsspec URL) and read from it on the
        next run; the normalisation and the model then run on padded batches of them.
        The speech check is not applied (no waveform is kept).

        Raises:
            ConfigError: the model is not a neural model on a feature extractor, or it
                normalises per speaker (score those with :meth:`predict_speakers`).
        """
        from vocalis.errors import ConfigError
        from vocalis.features import PipelineConfig
        from vocalis.features.pipeline import extract_many

        ckpt = self.pipeline.checkpoint
        if ckpt.kind != "neural" or ckpt.features is None or self.needs_speakers:
            why = "normalises per speaker" if self.needs_speakers else f"is a {ckpt.kind} model"
            raise ConfigError(
                f"--cache-dir: {ckpt.source or 'the checkpoint'} {why}, whose inputs the "
                "feature cache does not hold; drop --cache-dir"
            )
        paths = [str(p) for p in paths]
        ids = list(ids) if ids is not None else [_stem(p) for p in paths]
        pipe = PipelineConfig(tier0=ckpt.tier0, features=ckpt.features)
        found = extract_many(paths, pipe, cache=cache, workers=1, max_failures=1.0,
                             progress=progress)  # fmt: skip
        out = BatchPredictions(failures=[Failure(p, m) for p, m in found.failures])
        head = self.pipeline.features_to_probs()
        kept = [i for i, f in enumerate(found.features) if f is not None]
        shift = float(ckpt.features.frame_shift)
        for b in range(0, len(kept), batch_size):
            idx = kept[b : b + batch_size]
            feats = [torch.as_tensor(found.features[i]) for i in idx]
            lengths = torch.tensor([f.shape[-1] for f in feats])
            batch = torch.zeros(len(feats), feats[0].shape[0], int(lengths.max()))
            for j, f in enumerate(feats):
                batch[j, :, : f.shape[-1]] = f
            with torch.inference_mode():
                probs = head(batch.to(self.device), lengths.to(self.device)).float().cpu()
            for i, p, n in zip(idx, probs, lengths.tolist(), strict=True):
                seconds = n * shift
                out.predictions.append(self._make(paths[i], p, None, ids[i], duration_s=seconds))
        return out

    @property
    def needs_speakers(self) -> bool:
        """True when the model scores a speaker's clips together (see :meth:`predict_speakers`)."""
        from vocalis.inference.kinds import SpeakerModel

        return isinstance(self.graph, SpeakerModel) and bool(self.graph.needs_speakers)

    def predict_speakers(
        self,
        paths: Sequence[str | os.PathLike],
        speakers: Sequence[str],
        progress: bool = True,
        ids: Sequence[str] | None = None,
    ) -> BatchPredictions:
        """Predict files speaker by speaker: all clips of a speaker in one padded batch.

        For a model that standardises each speaker with its own statistics
        (:attr:`needs_speakers`); any other model predicts as :meth:`predict_many`.

        Args:
            paths: audio files.
            speakers: the speaker of each file.
            progress: show a progress bar.
            ids: utterance ids aligned with ``paths``.

        Returns:
            Predictions in input order (unreadable files skipped) and the failures.
        """
        if not self.needs_speakers:
            return self.predict_many(paths, progress=progress, ids=ids)
        paths = [str(p) for p in paths]
        ids = list(ids) if ids is not None else [_stem(p) for p in paths]
        out = BatchPredictions()
        loaded: dict[int, Tensor] = {}
        for i, path in enumerate(paths):
            try:
                loaded[i] = self.load(path)
            except VocalisError as err:
                logger.warning("skipped: %s", err)
                out.failures.append(Failure(path, str(err)))
        made: dict[int, Prediction] = {}
        for speaker in dict.fromkeys(str(s) for s in speakers):
            idx = [i for i in loaded if str(speakers[i]) == speaker]
            if not idx:
                continue
            batch, lengths = pad_batch([loaded[i] for i in idx])
            with torch.inference_mode():
                probs = self.graph.predict_speakers(
                    batch.to(self.device), lengths.to(self.device), [speaker] * len(idx)
                )
            for i, p in zip(idx, probs.float().cpu(), strict=True):
                made[i] = self._make(paths[i], p, loaded[i], ids[i], self.speech(loaded[i]))
        out.predictions.extend(made[i] for i in sorted(made))
        return out

    def predict_many(
        self,
        paths: Iterable[str | os.PathLike],
        batch_size: int = 16,
        progress: bool = True,
        ids: Sequence[str] | None = None,
    ) -> BatchPredictions:
        """Predict many files in padded batches.

        Args:
            paths: audio files.
            batch_size: files per forward pass.
            progress: show a progress bar.
            ids: utterance ids aligned with ``paths``.

        Returns:
            Predictions in input order (unreadable files skipped) and the failures.
        """
        out = BatchPredictions()
        for chunk in self.iter_batches(paths, batch_size, progress, ids, out.failures):
            out.predictions.extend(chunk)
        return out


def head_answer(answer: dict[str, Any]) -> str:
    """One head's answer as text: the class, the labels on (``;``, or ``none``), ``col=value``.

    Example:
        >>> head_answer({"kind": "regression", "values": {"dur": 1.23456}})
        'dur=1.235'
        >>> head_answer({"kind": "multilabel", "labels": []})
        'none'
    """
    if answer["kind"] == "multiclass":
        return str(answer["label"])
    if answer["kind"] == "multilabel":
        return ";".join(answer["labels"]) or "none"
    return ",".join(f"{c}={v:.4g}" for c, v in answer["values"].items())


def predict(
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    checkpoint: str | os.PathLike | None = None,
    *,
    out: str | os.PathLike | None = None,
    batch_size: int = 16,
    device: str = "cpu",
    progress: bool = True,
    chunk_size: int = 64,
    predictor: Predictor | None = None,
    min_speech: float | None = MIN_SPEECH,
) -> BatchPredictions:
    """Predict audio files, folders of audio or manifest CSVs.

    Args:
        inputs: a file, a folder (searched recursively for audio), a manifest CSV
            (a ``path`` column, optional ``id``), or a list of these.
        checkpoint: model checkpoint; None = the model bundled with Vocalis.
        out: CSV to write (``id, path, label, confidence, p_<class>...``). When it
            exists, files already in it are skipped (resume) and new rows are
            appended atomically every ``chunk_size`` files.
        batch_size: files per forward pass.
        device: torch device.
        progress: show a progress bar.
        chunk_size: rows per atomic append to ``out``.
        predictor: reuse an already loaded predictor (``checkpoint`` and
            ``min_speech`` are then ignored).
        min_speech: share of speech below which a file is answered "no speech
            detected" (label ``None``); ``None`` skips the check (see :class:`Predictor`).

    Returns:
        The new predictions (rows already in ``out`` are not repeated) and failures.

    Raises:
        ModelError: no usable checkpoint.
        DataError: no audio found, or ``out`` has other columns than this model's.
    """
    from vocalis.inference.inputs import collect_inputs
    from vocalis.inference.writer import ResumableCSV, prediction_columns, prediction_row

    predictor = predictor or Predictor.from_checkpoint(
        checkpoint, device=device, min_speech=min_speech
    )
    if predictor.needs_speakers:
        return _predict_by_speaker(predictor, inputs, out, progress)
    items = collect_inputs(inputs)
    result = BatchPredictions()
    if out is None:
        for chunk in predictor.iter_batches(
            [p for p, _ in items], batch_size, progress, [i for _, i in items], result.failures
        ):
            result.predictions.extend(chunk)
        return result
    # keyed on (id, path): manifest rows that share a file, or files of one stem in
    # several folders, are all kept (issue 14 item 7)
    writer = ResumableCSV(
        out, prediction_columns(predictor.classes, predictor.heads), key=("id", "path")
    )
    todo = [(p, i) for p, i in items if (str(i), str(p)) not in writer.done]
    if len(todo) < len(items):
        logger.info(
            "%s: %d of %d files already predicted; resuming",
            out,
            len(items) - len(todo),
            len(items),
        )
    pending: list[Prediction] = []
    for chunk in predictor.iter_batches(
        [p for p, _ in todo], batch_size, progress, [i for _, i in todo], result.failures
    ):
        pending.extend(chunk)
        result.predictions.extend(chunk)
        if len(pending) >= chunk_size:
            writer.append([prediction_row(p, predictor.classes) for p in pending])
            pending = []
    if pending:
        writer.append([prediction_row(p, predictor.classes) for p in pending])
    return result


def _predict_by_speaker(
    predictor: Predictor,
    inputs: str | os.PathLike | Sequence[str | os.PathLike],
    out: str | os.PathLike | None,
    progress: bool,
) -> BatchPredictions:
    """:func:`predict` for a model that needs speakers: manifests with a speaker column only.

    Every clip is scored with its speaker's other clips (rows already in ``out``
    are not appended again).

    Raises:
        DataError: an input that is not a manifest CSV with a ``speaker`` column.
    """
    from vocalis.data import read_manifest
    from vocalis.errors import DataError
    from vocalis.inference.writer import ResumableCSV, prediction_columns, prediction_row

    files = [inputs] if isinstance(inputs, PATH_TYPES) else list(inputs)
    paths: list[str] = []
    speakers: list[str] = []
    ids: list[str] = []
    for f in files:
        rows = read_manifest(f) if str(f).lower().endswith(".csv") else None
        if rows is None or "speaker" not in rows.columns:
            raise DataError(
                f"{f}: this model standardises each speaker with its own statistics (e.g. a "
                "speaker_norm ensemble), so it predicts manifest CSVs with a speaker column, "
                "not single files or folders; or use a model without per-speaker statistics "
                "(the online recipe, configs/recipes/emodb_functionals_online.yaml)"
            )
        paths += rows.paths
        speakers += rows.speakers
        ids += [str(i) for i in rows.ids]
    result = predictor.predict_speakers(paths, speakers, progress, ids)
    if out is not None:
        writer = ResumableCSV(
            out, prediction_columns(predictor.classes, predictor.heads), key="path"
        )
        new = [p for p in result.predictions if p.path not in writer.done]
        if new:
            writer.append([prediction_row(p, predictor.classes) for p in new])
    return result


__all__ = ["BatchPredictions", "Failure", "Prediction", "Predictor", "pad_batch", "predict"]
