"""The ``neural`` model kind: features + normalisation + a :mod:`vocalis.models` classifier.

:func:`build_neural` is registered in :data:`vocalis.inference.MODEL_KINDS` under
``"neural"``. It rebuilds the checkpoint's feature extractor, its
:class:`~vocalis.features.normalize.FeatureNormalizer` and the model, and returns
one traceable module, :class:`WaveformToProbs`: the
:class:`~vocalis.inference.Predictor` runs it eagerly and
:mod:`vocalis.inference.export` traces it, so the exported graph is the served one.

A multi-head checkpoint (``model.heads``) gives every head's outputs side by side,
(B, D) with ``D = sum(head.size)``: probabilities of class heads, regression values
in the column's units (the checkpoint's scaler is part of the graph, so exported
models give them too); :func:`vocalis.data.targets.decode_outputs` reads them.

Shape legend: B batch, T samples, F features, N frames, C classes (D outputs).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from vocalis.checkpoint import Checkpoint
from vocalis.errors import ConfigError, ModelError
from vocalis.features.normalize import FeatureNormalizer
from vocalis.inference.kinds import MODEL_KINDS


def first_head_probs(model: nn.Module, feats: Tensor, lengths: Tensor, num_classes: int) -> Tensor:
    """Class probabilities of the model's first head (temperature included).

    Shape:
        feats: (B, F, N), lengths: (B,) -> (B, C)
    """
    out = model(feats, lengths)
    probs = out.extras.get("probs") if out.extras else None
    if probs is None:
        probs = torch.softmax(out.logits[:, :num_classes], dim=1)
    return probs[:, :num_classes]


class FeaturesToProbs(nn.Module):
    """Normalisation + model: features to probabilities (every head's outputs).

    Args:
        norm: the feature normalisation.
        model: the classifier.
        num_classes: classes of the first head (what a single-head model returns).
        heads: the checkpoint's heads (:class:`~vocalis.data.targets.HeadSpec`) of a
            multi-head model; its output is then all heads' outputs, regression values
            back in their units.

    Shape:
        feats: (B, F, N), lengths: (B,) frames -> (B, C) (multi-head: (B, D))
    """

    def __init__(
        self, norm: FeatureNormalizer, model: nn.Module, num_classes: int, heads: list | None = None
    ) -> None:
        super().__init__()
        self.norm = norm
        self.model = model
        self.num_classes = num_classes
        self.heads = heads
        scale: list[float] = []
        shift: list[float] = []
        for h in heads or []:
            regression = h.kind == "regression"
            scale += list(h.std) if regression else [1.0] * h.size
            shift += list(h.mean) if regression else [0.0] * h.size
        self.register_buffer("out_scale", torch.tensor(scale), persistent=False)
        self.register_buffer("out_shift", torch.tensor(shift), persistent=False)

    def forward(self, feats: Tensor, lengths: Tensor) -> Tensor:
        """Probabilities (B, K) (or all heads' outputs) of ``feats`` (B, F, N), ``lengths`` (B,)."""
        lengths = lengths.long()
        feats = self.norm(feats, lengths)
        if self.heads is None:
            return first_head_probs(self.model, feats, lengths, self.num_classes)
        extras = self.model(feats, lengths).extras
        out = extras["probs"]
        if out.shape[1] < self.out_scale.shape[0]:  # a tier-1 valence/arousal head
            out = torch.cat([out, extras["va"].to(out.dtype)], dim=1)
        return out * self.out_scale + self.out_shift


class WaveformToProbs(nn.Module):
    """Features + normalisation + model, on tier-0 waveforms.

    The input is a mono, level-normalised waveform at the model's sample rate
    (tier 0 has run; denoising and VAD are not part of this module).

    Shape:
        wav: (B, T), lengths: (B,) samples -> (B, C)
    """

    def __init__(self, extractor: nn.Module, head: FeaturesToProbs) -> None:
        super().__init__()
        self.extractor = extractor
        self.head = head

    def features(self, wav: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Features and their frame counts: (B, F, N), (B,)."""
        lengths = lengths.long()
        return self.extractor(wav, lengths), self.extractor.frame_lengths(lengths)

    def forward(self, wav: Tensor, lengths: Tensor) -> Tensor:
        """Class probabilities (B, K) of padded ``wav`` (B, T) with ``lengths`` (B,) in samples."""
        feats, frames = self.features(wav, lengths)
        return self.head(feats, frames)

    def embed(
        self, wav: Tensor, lengths: Tensor, kind: str = "pt", pooling: str = "mean"
    ) -> Tensor:
        """Utterance embeddings (see :meth:`vocalis.models.SpeechClassifier.embed`).

        Shape:
            wav: (B, T), lengths: (B,) samples -> (B, E)

        Raises:
            ModelError: the model has no layer of that kind.
        """
        feats, frames = self.features(wav, lengths)
        feats = self.head.norm(feats, frames)
        return self.head.model.embed(feats, frames, kind=kind, pooling=pooling)


def model_from_checkpoint(ckpt: Checkpoint) -> nn.Module:
    """The checkpoint's classifier with its weights loaded (in eval mode).

    A checkpoint of ``train.members`` copies (``model.members`` > 1) gives their
    :class:`~vocalis.models.members.MemberAverage`.

    Raises:
        ModelError: the stored config does not build the model, or the weights do not fit it.
    """
    from vocalis.models import build_model

    spec, source = ckpt.model, ckpt.source or "checkpoint"
    try:
        models = [
            build_model(
                spec.name,
                spec.config,
                int(spec.input_dim or 0),
                spec.num_classes,
                feature_name=ckpt.features.name if ckpt.features is not None else None,
            )
            for _ in range(spec.members)
        ]
    except ConfigError as err:
        raise ModelError(
            f"{source}: its stored config does not build model '{spec.name}' ({err}); the "
            "checkpoint comes from another model or an incompatible Vocalis version: retrain it"
        ) from None
    model: nn.Module = models[0]
    if spec.members > 1:  # train.members: the seeds' probabilities averaged
        from vocalis.models.members import MemberAverage

        model = MemberAverage(models)
    heads = checkpoint_heads(ckpt)
    if heads is not None:  # beyond the model's heads: its valence/arousal head (extras["va"])
        model.set_head_kinds([h.kind for h in heads][: len(model.head.sizes)])
    try:
        model.load_state_dict(ckpt.model_state)
    except RuntimeError as err:
        lines = str(err).strip().splitlines()
        detail = lines[1].strip() if len(lines) > 1 else lines[0]
        raise ModelError(
            f"{source}: its weights do not fit model '{spec.name}' ({detail}); the checkpoint "
            "comes from another model or an incompatible Vocalis version: retrain it"
        ) from None
    return model.eval()


def checkpoint_heads(ckpt: Checkpoint) -> list | None:
    """The :class:`~vocalis.data.targets.HeadSpec` list of a multi-head checkpoint, or ``None``."""
    from vocalis.data.targets import heads_from_data

    return heads_from_data(ckpt.model.heads) if ckpt.model.heads else None


@MODEL_KINDS.register("neural")
def build_neural(ckpt: Checkpoint) -> WaveformToProbs:
    """Rebuild extractor, normalisation and model of a ``neural`` checkpoint.

    Raises:
        ModelError: no feature config, inconsistent sample rates or feature sizes,
            or weights that do not fit the model.
    """
    from vocalis.features import build_extractor

    source = ckpt.source or "checkpoint"
    feats = ckpt.features
    if feats is None:
        raise ModelError(f"{source}: a neural checkpoint needs pipeline.features; retrain it")
    if ckpt.tier0.sample_rate != feats.sample_rate:
        raise ModelError(
            f"{source}: tier0.sample_rate={ckpt.tier0.sample_rate} but features.sample_rate="
            f"{feats.sample_rate}; the checkpoint is inconsistent"
        )
    extractor = build_extractor(feats).eval()
    if int(ckpt.model.input_dim or 0) != extractor.feature_dim:
        raise ModelError(
            f"{source}: model input_dim={ckpt.model.input_dim} but features '{feats.name}' give "
            f"{extractor.feature_dim}; the checkpoint is inconsistent"
        )
    model = model_from_checkpoint(ckpt)
    norm = FeatureNormalizer.from_state(ckpt.normalization.to_dict(), extractor.feature_dim)
    heads = checkpoint_heads(ckpt)
    head = FeaturesToProbs(norm, model, len(ckpt.classes), heads)
    return WaveformToProbs(extractor, head).eval()
