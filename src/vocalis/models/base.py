"""The model contract: :class:`SpeechClassifier` in, :class:`ModelOutput` out.

A model is a plain ``nn.Module`` that maps padded features (B, F, T) and their
integer lengths (B,) in frames to logits, an embedding and named extras. It
knows nothing of training loops, data or the command line.

To write a model, subclass :class:`SpeechClassifier`, set ``config_cls`` to a
frozen dataclass, build ``self.head`` (a :class:`~vocalis.models.heads.MultiHead`)
and implement :meth:`SpeechClassifier.encode`; see :mod:`vocalis.models.registry`
for registering it under a name.

Shape legend: B batch, F input features, T frames, E embedding size, C classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from vocalis.errors import ModelError
from vocalis.models.heads import MultiHead, head_probs
from vocalis.models.masking import check_lengths


@dataclass
class ModelOutput:
    """What every model's ``forward`` returns.

    Attributes:
        logits: (B, C) main classification logits; for several heads, the heads'
            logits concatenated along dim 1 in head order.
        embedding: (B, E) backbone embedding (``embed(kind="pt")``).
        extras: named extra outputs: ``probs`` (B, C), ``confidence`` (B,)
            (max probability of the first head), ``head_0``... (per-head logits),
            ``va`` (B, 2) valence-arousal regression, ...
    """

    logits: Tensor
    embedding: Tensor
    extras: dict[str, Tensor] = field(default_factory=dict)

    def probs(self) -> Tensor:
        """(B, C) probabilities of the output.

        ``extras["probs"]`` when the model gives them (temperature and head kinds
        included), else the softmax of the float32 logits.
        """
        p = self.extras.get("probs") if self.extras else None
        return torch.softmax(self.logits.float(), dim=-1) if p is None else p


class InputNorm(nn.Module):
    """Global per-feature mean-variance normalisation kept in the state dict.

    The trainer sets it from training-set statistics with :meth:`set`; until
    then it is the identity (mean 0, std 1).

    Shape:
        x: (B, F, T) -> (B, F, T)
    """

    def __init__(self, input_dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(input_dim))
        self.register_buffer("std", torch.ones(input_dim))

    def set(self, mean: Tensor, std: Tensor, eps: float = 1e-5) -> None:
        """Store per-feature statistics, (F,) each; std is floored at ``eps``."""
        mean = torch.as_tensor(mean, dtype=self.mean.dtype).reshape(-1)
        std = torch.as_tensor(std, dtype=self.std.dtype).reshape(-1)
        if mean.shape != self.mean.shape or std.shape != self.std.shape:
            raise ModelError(
                f"input_norm statistics have {mean.numel()} and {std.numel()} values, "
                f"expected {self.mean.numel()} (one per input feature)"
            )
        self.mean.copy_(mean)
        self.std.copy_(std.clamp(min=eps))

    def forward(self, x: Tensor) -> Tensor:
        """Standardise ``x`` (B, F, T) with the stored per-feature mean and std."""
        return (x - self.mean[:, None]) / self.std[:, None]


class SpeechClassifier(nn.Module):
    """Base class of every Vocalis model.

    Args:
        config: the model's frozen config dataclass (an instance of ``config_cls``).
        input_dim: feature dimension F the model is built for.
        num_classes: classes of the single head, or a list with one entry per head.
        feature_name: name of the features it was built for (for error messages).

    The arguments are kept as attributes of the same names, beside ``embedding_dim`` and
    ``head``. Subclasses implement :meth:`encode` and build ``self.head``; if
    ``config.input_norm`` is true an :class:`InputNorm` is applied first. With
    ``config.temperature`` the logits are divided by a stored temperature.
    """

    config_cls: ClassVar[type | None] = None

    def __init__(
        self,
        config: Any,
        input_dim: int,
        num_classes: int | list[int],
        feature_name: str | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.input_dim = int(input_dim)
        self.num_classes = num_classes
        self.feature_name = feature_name
        self.embedding_dim = 0
        self.head: MultiHead | None = None
        #: Skip building masks when no item is padded (fast path for fixed-size crops).
        #: Set to False before tracing or ONNX export so the graph keeps the masking
        #: path and stays correct for padded batches.
        self.skip_masks_when_unpadded = True
        self.input_norm: InputNorm | None = None
        if getattr(config, "input_norm", False):
            self.input_norm = InputNorm(self.input_dim)
        if getattr(config, "temperature", False):
            # One temperature (a 0-d buffer) for one head; one per head for several
            # (regression and multi-label heads keep 1: only softmax heads are scaled).
            n_heads = len(num_classes) if isinstance(num_classes, (list, tuple)) else 1
            shape = () if n_heads == 1 else (n_heads,)
            self.register_buffer("temperature", torch.ones(shape))

    @classmethod
    def check_resources(cls, config: Any) -> None:
        """Refuse, before any audio is read, a config whose outside inputs are unusable.

        Outside inputs are files the model reads but does not hold: pretrained weights,
        and the layers they have. :func:`vocalis.training.train` and cross-validation
        call it once, before the features and the folds, so a missing pretrained model
        is one line instead of one failure per fold. The default has nothing to check;
        a model with such inputs overrides it.

        Args:
            config: an instance of ``config_cls``.

        Raises:
            ConfigError: an input that is not there (the message says where it looked),
                or a setting it does not fit.
        """

    # -- input checks --------------------------------------------------------------
    def check_input(self, features: Tensor, lengths: Tensor | None) -> Tensor:
        """Validate shapes; return int64 lengths (all T when ``lengths`` is None).

        Raises:
            ModelError: wrong rank, wrong feature dimension or invalid lengths.
        """
        if features.dim() != 3:
            raise ModelError(
                f"model input must be (batch, features, frames), got shape "
                f"{tuple(features.shape)}: add a batch dimension with features.unsqueeze(0)"
            )
        b, f, t = features.shape
        if f != self.input_dim:
            built = f" (built for {self.feature_name})" if self.feature_name else ""
            raise ModelError(
                f"model expects F={self.input_dim} input features{built}, got {f}: "
                "use --features that match or retrain"
            )
        if lengths is None:
            return torch.full((b,), t, dtype=torch.long, device=features.device)
        check_lengths(lengths, b, t)
        return lengths.long()

    def set_input_norm(self, mean: Tensor, std: Tensor) -> None:
        """Set the built-in global mean-variance normalisation from training statistics."""
        if self.input_norm is None:
            raise ModelError(
                "this model was built with model.input_norm=false: set it to true to store "
                "feature statistics in the model"
            )
        self.input_norm.set(mean, std)

    # -- to implement ---------------------------------------------------------------
    def encode(self, features: Tensor, lengths: Tensor) -> Tensor:
        """Backbone embedding ("pt").

        Shape:
            features: (B, F, T), lengths: (B,) -> (B, E)
        """
        raise NotImplementedError

    # -- shared behaviour -----------------------------------------------------------
    def _prepare(self, features: Tensor, lengths: Tensor | None) -> tuple[Tensor, Tensor]:
        lengths = self.check_input(features, lengths)
        if self.input_norm is not None:
            features = self.input_norm(features)
        return features, lengths

    def _mask_lengths(self, lengths: Tensor, max_len: int) -> Tensor | None:
        """Lengths to mask with, or None on the no-padding fast path."""
        short = check_lengths(lengths, lengths.shape[0], max_len)
        if short is None and not self.skip_masks_when_unpadded:
            return lengths.long()
        return short

    def _head(self) -> MultiHead:
        if self.head is None:
            raise ModelError(f"{type(self).__name__} has no MultiHead in self.head")
        return self.head

    def classify(self, embedding: Tensor) -> ModelOutput:
        """Apply the head(s) to an embedding and fill the standard extras.

        With ``config.temperature`` the logits are divided by the stored
        temperature and the raw ones are kept in ``extras["uncalibrated_logits"]``.
        """
        head = self._head()
        out = head(embedding)
        logits, per_head, kinds = out.logits, out.per_head, head.kinds
        extras: dict[str, Tensor] = {}
        if getattr(self.config, "temperature", False):
            extras["uncalibrated_logits"] = logits
            t = self.temperature
            per_head = [
                (lg / (t if t.dim() == 0 else t[i])) if k == "multiclass" else lg
                for i, (lg, k) in enumerate(zip(per_head, kinds, strict=True))
            ]
            logits = per_head[0] if len(per_head) == 1 else torch.cat(per_head, dim=1)
        scale = self.config.cosine_scale if getattr(self.config, "head", "") == "cosine" else 1.0
        probs = head_probs(per_head, scale, kinds)
        extras["probs"] = probs
        extras["confidence"] = probs[:, : per_head[0].shape[1]].amax(dim=1)
        if len(per_head) > 1:
            for i, lg in enumerate(per_head):
                extras[f"head_{i}"] = lg
        return ModelOutput(logits=logits, embedding=embedding, extras=extras)

    def set_temperature(self, value: float, head: int | None = None) -> None:
        """Store a fitted calibration temperature (of one head, or of every head).

        See :func:`vocalis.models.calibration.calibrate_temperature`.

        Args:
            value: the temperature (> 0).
            head: the head it belongs to (several heads); ``None``: all of them.

        Raises:
            ModelError: the model was built without ``temperature: true``, or value <= 0.
        """
        if not getattr(self.config, "temperature", False):
            raise ModelError(
                "this model was built with model.temperature=false: set it to true to "
                "store a calibration temperature"
            )
        if not value > 0:
            raise ModelError(f"temperature must be > 0, got {value}")
        if head is None or self.temperature.dim() == 0:
            self.temperature.fill_(float(value))
        else:
            self.temperature[head] = float(value)

    def set_head_kinds(self, kinds: list[str]) -> None:
        """Set each head's kind (``multiclass``, ``multilabel``, ``regression``).

        The kinds decide what ``extras["probs"]`` holds per head (softmax, sigmoids or
        raw values) and which heads the temperature scales.
        """
        self._head().set_kinds(kinds)

    def forward(self, features: Tensor, lengths: Tensor | None = None) -> ModelOutput:
        """Classify a padded batch.

        Args:
            features: padded features.
            lengths: valid frames per item (integers); None = no padding.

        Shape:
            features: (B, F, T), lengths: (B,) -> logits (B, C), embedding (B, E)
        """
        features, lengths = self._prepare(features, lengths)
        return self.classify(self.encode(features, lengths))

    def embed(
        self,
        features: Tensor,
        lengths: Tensor | None = None,
        kind: Literal["pt", "ft", "st"] = "pt",
        pooling: Literal["mean", "sum"] = "mean",
    ) -> Tensor:
        """Utterance embeddings.

        Args:
            features: padded features.
            lengths: valid frames per item.
            kind: ``pt`` backbone embedding, ``ft`` first dense layer of the head(s)
                before its activation (merged across heads by ``pooling``), ``st``
                shared dense layer.
            pooling: ``mean`` or ``sum`` across heads for ``ft``.

        Shape:
            features: (B, F, T), lengths: (B,) -> (B, E')

        Raises:
            ModelError: the model has no layer of that kind, or an unknown kind.
        """
        if kind not in ("pt", "ft", "st"):
            raise ModelError(f"embedding kind={kind!r}: expected 'pt', 'ft' or 'st'")
        features, lengths = self._prepare(features, lengths)
        emb = self.encode(features, lengths)
        if kind == "pt":
            return emb
        if kind == "st":
            return self._head().st(emb)
        return self._head().ft(emb, pooling)

    def start_epoch(self, epoch: int) -> None:
        """Called by the trainer before each 0-based training epoch (and on resume).

        Models that change with the epoch (an encoder unfrozen after K epochs)
        override it; the default does nothing.
        """

    def set_gradient_checkpointing(self, enabled: bool = True) -> None:
        """Recompute activations in the backward pass (``train.gradient_checkpointing``).

        Models with a pretrained encoder (``ssl``) override it; the default refuses.

        Raises:
            ConfigError: this model does not support it.
        """
        if enabled:
            from vocalis.errors import ConfigError

            raise ConfigError(
                f"train.gradient_checkpointing: model {type(self).__name__} has no encoder "
                "to checkpoint (model=ssl has); set train.gradient_checkpointing=false"
            )

    def parameter_tiers(self) -> dict[str, list[nn.Parameter]]:
        """Parameters by learning-rate tier (``frozen``, ``encoder``, ``head``).

        ``train.lr_tiers`` scales each tier's learning rate; models without a
        pretrained part put everything in ``head`` (the default).
        """
        return {"head": list(self.parameters())}

    def num_parameters(self, trainable_only: bool = False) -> int:
        """Number of (trainable) parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
