"""The ``neural`` model kind: features + normalisation + a :mod:`vocalis.models` classifier.

:func:`build_neural` is registered in :data:`vocalis.inference.MODEL_KINDS` under
``"neural"``. It rebuilds the checkpoint's feature extractor, its
:class:`~vocalis.features.normalize.FeatureNormalizer` and the model, and returns
one traceable module, :class:`WaveformToProbs`: the
:class:`~vocalis.inference.Predictor` runs it eagerly and
:mod:`vocalis.inference.export` traces it, so the exported graph is the served one.

Shape legend: B batch, T samples, F features, N frames, C classes.
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
    """Normalisation + model: features to probabilities.

    Shape:
        feats: (B, F, N), lengths: (B,) frames -> (B, C)
    """

    def __init__(self, norm: FeatureNormalizer, model: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.norm = norm
        self.model = model
        self.num_classes = num_classes

    def forward(self, feats: Tensor, lengths: Tensor) -> Tensor:
        """Class probabilities (B, K) of features ``feats`` (B, F, N), frame ``lengths`` (B,)."""
        lengths = lengths.long()
        return first_head_probs(self.model, self.norm(feats, lengths), lengths, self.num_classes)


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

    Raises:
        ModelError: the stored config does not build the model, or the weights do not fit it.
    """
    from vocalis.models import build_model

    spec, source = ckpt.model, ckpt.source or "checkpoint"
    try:
        model = build_model(
            spec.name,
            spec.config,
            int(spec.input_dim or 0),
            spec.num_classes,
            feature_name=ckpt.features.name if ckpt.features is not None else None,
        )
    except ConfigError as err:
        raise ModelError(
            f"{source}: its stored config does not build model '{spec.name}' ({err}); the "
            "checkpoint comes from another model or an incompatible Vocalis version: retrain it"
        ) from None
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
    head = FeaturesToProbs(norm, model, len(ckpt.classes))
    return WaveformToProbs(extractor, head).eval()
