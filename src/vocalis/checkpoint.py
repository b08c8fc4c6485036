"""The checkpoint format: one typed, versioned spec of a model's whole pipeline.

:func:`save_checkpoint` is the only writer and :func:`load_checkpoint` the only
reader; training evaluation, ``eval``, ``predict``, ``embed``, ``export`` and
``serve`` all read a :class:`Checkpoint` and rebuild it with
:func:`vocalis.inference.load_pipeline`.

On disk a checkpoint is a ``torch.save`` dict (loaded with ``weights_only=True``):

- ``format`` = ``"vocalis-checkpoint"``, ``format_version`` (2), ``vocalis_version``;
- ``model``: ``{"kind", "name", "config", "input_dim", "num_classes", "heads"}`` (and
  ``members``, the seeds of a ``train.members`` ensemble, when more than one). ``kind`` picks
  the builder in :data:`vocalis.inference.MODEL_KINDS`: ``"neural"`` (a
  :func:`vocalis.models.build_model` classifier on the ``features``) or
  ``"ensemble"`` (fitted parameters as tensors, see :mod:`vocalis.ensemble`);
  ``heads`` (optional) lists the heads of a multi-head model
  (:meth:`vocalis.data.targets.HeadSpec.to_dict`: kind, columns, classes, scaler,
  thresholds), ``num_classes`` then being their sizes;
- ``model_state``: the state dict (tensors);
- ``pipeline``: ``{"tier0": Tier0Config dict, "features": FeatureConfig dict | None}``;
- ``normalization``: ``{"mode": "global"|"utterance"|"speaker"|"none", "state": dict|None}``
  (see :class:`vocalis.features.normalize.FeatureNormalizer`);
- ``labels``: :meth:`vocalis.data.LabelEncoder.to_dict` output;
- ``config``: the resolved experiment config (plain dict);
- run facts and, in run checkpoints only, the training state (``epoch``, ``step``,
  ``metrics``; ``optimizer``, ``scheduler``, ``scaler``, ``rng``, ``best``, ...).

A run folder's ``model.pt`` is the slim copy of its best checkpoint
(:meth:`Checkpoint.slim`, :func:`slim_checkpoint`): it predicts everywhere but
cannot resume training.

Format history: 1 had no ``model.kind`` (neural only); 2 adds it.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from vocalis import __version__
from vocalis.errors import ModelError
from vocalis.io import atomic_open, read_bytes

if TYPE_CHECKING:
    from vocalis.audio import Tier0Config
    from vocalis.data import LabelEncoder
    from vocalis.features import FeatureConfig

FORMAT = "vocalis-checkpoint"
FORMAT_VERSION = 2

#: File name of the slim deployable checkpoint in every run folder.
MODEL_FILE = "model.pt"

#: Top-level keys every checkpoint has.
REQUIRED_KEYS = ("model", "model_state", "pipeline", "normalization", "labels")

#: Keys a run checkpoint adds for resuming; :meth:`Checkpoint.slim` drops them.
TRAINING_KEYS = (
    "optimizer",
    "scheduler",
    "scaler",
    "rng",
    "best",
    "history",
    "best_val",
    "epoch_step",
    "epoch_lr",
    "partial",
    "finished",
    "early_stopping",
)

_MARKER_KEYS = ("format", "format_version", "vocalis_version")


@dataclass(frozen=True)
class ModelSpec:
    """What to build: the ``model`` entry of a checkpoint.

    Attributes:
        kind: the builder in :data:`vocalis.inference.MODEL_KINDS` (``neural``, ``ensemble``).
        name: the model's registry name (``tier1``, ``ecapa``; an ensemble's name).
        config: the model's resolved config (plain data).
        input_dim: features per frame the model takes (``None`` when not applicable).
        num_classes: classes of the first head (or a list, one per head).
        heads: the heads of a multi-head model as plain data (see
            :class:`vocalis.data.targets.HeadSpec`), or ``None`` for one class head.
        members: copies of the model whose probabilities are averaged
            (``train.members``; :class:`vocalis.models.members.MemberAverage`, the
            weights under ``members.<k>.``); 1: one model (not stored).
    """

    kind: str
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    input_dim: int | None = None
    num_classes: Any = None
    heads: list[dict[str, Any]] | None = None
    members: int = 1

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as stored (``members`` only when there are several)."""
        data = dataclasses.asdict(self)
        if self.members == 1:
            del data["members"]
        return data

    @classmethod
    def from_dict(cls, data: Any, source: str) -> ModelSpec:
        """Read the ``model`` entry.

        Raises:
            ModelError: not a mapping, or no ``kind`` / ``name``.
        """
        if not isinstance(data, Mapping) or not data.get("name") or not data.get("kind"):
            raise ModelError(
                f"{source}: checkpoint 'model' entry needs 'kind' and 'name' (got "
                f"{sorted(data) if isinstance(data, Mapping) else type(data).__name__})"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(f"{source}: checkpoint 'model' entry has unknown key(s) {unknown}")
        dim = data.get("input_dim")
        return cls(
            kind=str(data["kind"]),
            name=str(data["name"]),
            config=dict(data.get("config") or {}),
            input_dim=None if dim is None else int(dim),
            num_classes=data.get("num_classes"),
            heads=None if data.get("heads") is None else [dict(h) for h in data["heads"]],
            members=_members(data.get("members", 1), source),
        )


def _members(value: Any, source: str) -> int:
    """``model.members`` of a checkpoint, checked.

    Raises:
        ModelError: not a whole number >= 1.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(f"{source}: checkpoint 'model.members' is {value!r}, expected an int >= 1")
    return value


@dataclass(frozen=True)
class NormSpec:
    """The feature normalisation: a mode and its fitted statistics.

    Attributes:
        mode: ``global``, ``utterance``, ``speaker`` or ``none``.
        state: :meth:`vocalis.features.normalize.FeatureNormalizer.state` ``["state"]``.
    """

    mode: str = "none"
    state: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as stored."""
        return {"mode": self.mode, "state": self.state}


@dataclass(frozen=True)
class Checkpoint:
    """A model's whole pipeline, as stored (format 2).

    Attributes:
        model: what to build (:class:`ModelSpec`).
        model_state: the weights (or an ensemble's fitted parameters) as tensors.
        labels: the classes of the first head, in output order.
        tier0: the tier-0 config (decoding, resampling, denoise, VAD, level).
        features: the feature extractor config (``None`` when the model computes its own).
        normalization: the feature normalisation and its statistics.
        config: the resolved experiment config (plain data; empty when unknown).
        training: run facts (``epoch``, ``step``, ``metrics``) and, in run checkpoints,
            the training state for resuming (:data:`TRAINING_KEYS`).
        vocalis_version: the Vocalis that wrote it.
        format_version: the format it was written in.
        source: where it was read from (empty for one built in memory).
    """

    model: ModelSpec
    model_state: dict[str, torch.Tensor]
    labels: LabelEncoder
    tier0: Tier0Config
    features: FeatureConfig | None = None
    normalization: NormSpec = field(default_factory=NormSpec)
    config: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    vocalis_version: str = __version__
    format_version: int = FORMAT_VERSION
    source: str = ""

    @property
    def kind(self) -> str:
        """The model kind (``neural``, ``ensemble``)."""
        return self.model.kind

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names of the first head, in output order."""
        return tuple(str(c) for c in self.labels.classes)

    @property
    def sample_rate(self) -> int:
        """The rate in Hz tier 0 resamples to."""
        return int(self.tier0.sample_rate)

    def slim(self) -> Checkpoint:
        """This checkpoint without its training state (keeps ``epoch``, ``step``, ``metrics``)."""
        kept = {k: v for k, v in self.training.items() if k not in TRAINING_KEYS}
        return dataclasses.replace(self, training=kept)

    def to_payload(self) -> dict[str, Any]:
        """The dict :func:`save_checkpoint` stores (format marker included)."""
        from vocalis.config import to_dict

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "vocalis_version": __version__,
            "model": self.model.to_dict(),
            "model_state": dict(self.model_state),
            "pipeline": {
                "tier0": to_dict(self.tier0),
                "features": None if self.features is None else to_dict(self.features),
            },
            "normalization": self.normalization.to_dict(),
            "labels": self.labels.to_dict(),
            "config": dict(self.config),
            **self.training,
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any], source: str = "") -> Checkpoint:
        """Build from a stored (or to-be-stored) dict; format markers are read if present.

        Raises:
            ModelError: a required key is missing or malformed.
            ConfigError: a tier-0 or feature config this Vocalis does not understand.
        """
        from vocalis.audio import Tier0Config
        from vocalis.config import from_dict
        from vocalis.data import LabelEncoder
        from vocalis.features import FeatureConfig

        where = source or "checkpoint"
        missing = [k for k in REQUIRED_KEYS if k not in data]
        if missing:
            raise ModelError(f"{where}: checkpoint lacks {', '.join(missing)}")
        pipe = data["pipeline"] or {}
        norm = data["normalization"] or {}
        feats = pipe.get("features")
        known = set(REQUIRED_KEYS) | {"config"} | set(_MARKER_KEYS)
        return cls(
            model=ModelSpec.from_dict(data["model"], where),
            model_state=dict(data["model_state"]),
            labels=LabelEncoder.from_dict(data["labels"]),
            tier0=from_dict(Tier0Config, pipe.get("tier0") or {}, where="pipeline.tier0"),
            features=None
            if feats is None
            else from_dict(FeatureConfig, feats, where="pipeline.features"),
            normalization=NormSpec(str(norm.get("mode", "none")), norm.get("state")),
            config=dict(data.get("config") or {}),
            training={k: v for k, v in data.items() if k not in known},
            vocalis_version=str(data.get("vocalis_version", __version__)),
            format_version=int(data.get("format_version", FORMAT_VERSION)),
            source=source,
        )


def save_checkpoint(path: str | os.PathLike, payload: Checkpoint | Mapping[str, Any]) -> None:
    """Write a checkpoint atomically to ``path``.

    Args:
        path: the file to write.
        payload: a :class:`Checkpoint`, or its stored dict (see the module docstring;
            the format marker is added here).

    Raises:
        ModelError: the payload lacks a required key or ``model.kind``.
    """
    ckpt = payload
    if not isinstance(ckpt, Checkpoint):
        ckpt = Checkpoint.from_payload(payload, str(path))
    with atomic_open(path, "wb") as fh:
        torch.save(ckpt.to_payload(), fh)


def link_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> bool:
    """Make ``dst`` the very file ``src`` is (a hard link), replacing ``dst`` atomically.

    The trainer calls it for ``last.pt`` after an epoch that was also the best:
    both checkpoints then hold the same bytes once on disk instead of twice (a
    1024-channel ECAPA with its Adam state is about 250 MB each). The next
    :func:`save_checkpoint` of either file writes a new file and renames it into
    place, which breaks the link and leaves the other file as it was. The
    reader sees an ordinary checkpoint: nothing in the format changes.

    Returns:
        True when linked; False where hard links are not available (URLs,
        another file system, a file system without links): the caller writes a copy.
    """
    from vocalis.io import is_url

    if is_url(src) or is_url(dst):
        return False
    from vocalis.io import _TAG

    target = os.fspath(dst)
    tmp = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}.{_TAG}.link.part")
    try:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.link(os.fspath(src), tmp)
        os.replace(tmp, target)
    except OSError:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        return False
    return True


def _unreadable(path: str | os.PathLike, raw: bytes, err: Exception) -> str:
    r"""The one-line reason ``torch.load`` refused ``raw``: truncated, corrupt or foreign.

    Example:
        >>> _unreadable("m.pt", b"PK\x03\x04" + bytes(100), RuntimeError("x"))[:42]
        'm.pt: truncated or corrupt checkpoint (104'
        >>> _unreadable("m.pt", b"hello", ValueError("x"))[:58]
        'm.pt: not a checkpoint (5 bytes that are not a torch file)'
    """
    import zipfile

    if raw[:4] == b"PK\x03\x04" or raw[:1] == b"\x80":  # torch's zip format, or legacy pickle
        state = "cut short" if not zipfile.is_zipfile(io.BytesIO(raw)) else "damaged"
        return (
            f"{path}: truncated or corrupt checkpoint ({len(raw)} bytes, {state}: "
            f"{type(err).__name__}); copy or write it again (an interrupted copy or a full "
            "disk leaves such files)"
        )
    return (
        f"{path}: not a checkpoint ({len(raw)} bytes that are not a torch file); pass a "
        "model.pt or a checkpoints/*.pt of a run folder"
    )


def load_checkpoint(path: str | os.PathLike, map_location: str = "cpu") -> Checkpoint:
    """Read and validate a checkpoint written by :func:`save_checkpoint`.

    Raises:
        ModelError: the file is missing, not a Vocalis checkpoint, from an older or
            newer format version, or lacks a required key.
    """
    try:
        raw = read_bytes(path)
    except (FileNotFoundError, IsADirectoryError):
        raise ModelError(f"{path}: checkpoint not found") from None
    try:
        data = torch.load(io.BytesIO(raw), map_location=map_location, weights_only=True)
    except Exception as err:
        raise ModelError(_unreadable(path, raw, err)) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelError(f"{path}: not a Vocalis checkpoint (no format marker)")
    version = int(data.get("format_version", 0))
    if version > FORMAT_VERSION:
        raise ModelError(
            f"{path}: checkpoint format {version} is newer than this Vocalis "
            f"({__version__}, format {FORMAT_VERSION}); upgrade vocalis"
        )
    if version < FORMAT_VERSION:
        raise ModelError(
            f"{path}: checkpoint format {version} (Vocalis {data.get('vocalis_version', '?')}) "
            f"is older than this Vocalis reads (format {FORMAT_VERSION}); retrain the model, "
            "or convert it with scripts/convert_checkpoint_v1.py from the Vocalis source tree"
        )
    return Checkpoint.from_payload(data, str(path))


def slim_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> Checkpoint:
    """Write ``src`` without its training state to ``dst`` (a model to ship).

    The result loads everywhere a run checkpoint does (prediction, export, the
    service) but cannot resume training. Returns the written checkpoint.
    """
    slim = load_checkpoint(src).slim()
    save_checkpoint(dst, slim)
    return slim
