"""Rebuild a trained model's whole pipeline from its checkpoint.

A checkpoint (see :mod:`vocalis.checkpoint`) records the tier-0 settings, the
feature config, the feature normalisation and its statistics, the model and its
labels. :func:`load_pipeline` turns it back into modules; prediction, segments,
embeddings, export and the web service all start here, so nothing is configured
twice and every consumer computes exactly what training computed.

The part after tier 0 is one traceable module (waveform + lengths ->
probabilities) that the builder of the checkpoint's model kind makes
(:data:`vocalis.inference.MODEL_KINDS`; ``neural``:
:class:`~vocalis.inference.neural.WaveformToProbs`): the
:class:`~vocalis.inference.Predictor` runs it eagerly and
:mod:`vocalis.inference.export` traces it to TorchScript and ONNX, so the
exported graph is the served one.

Shape legend: B batch, T samples, F features, N frames, C classes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from vocalis.errors import ModelError
from vocalis.inference.locate import resolve_checkpoint

if TYPE_CHECKING:
    from vocalis.checkpoint import Checkpoint
    from vocalis.inference.neural import WaveformToProbs

logger = logging.getLogger(__name__)

#: Below this peak amplitude a signal is digital silence and is not scaled
#: (the value :mod:`vocalis.audio.level` uses).
SILENCE_PEAK = 1e-8


class LevelNorm(nn.Module):
    """Per-item level normalisation of a padded batch, as tier 0's last step.

    Mirrors :func:`vocalis.audio.level.normalize` over the valid samples of each
    item: ``peak`` scales the max abs sample to 1, ``rms`` scales the RMS to
    ``target_rms_db`` dBFS, ``none`` does nothing; digital silence is not scaled.

    Shape:
        wav: (B, T), lengths: (B,) -> (B, T)

    Example:
        >>> norm = LevelNorm("peak")
        >>> norm(torch.tensor([[0.25, -0.5, 0.0], [0.1, 9.0, 0.0]]), torch.tensor([3, 1])).tolist()
        [[0.5, -1.0, 0.0], [1.0, 90.0, 0.0]]
    """

    def __init__(self, method: str = "peak", target_rms_db: float = -20.0) -> None:
        super().__init__()
        if method not in ("peak", "rms", "none"):
            raise ModelError(f"level normalisation {method!r}: expected peak, rms or none")
        self.method = method
        self.target = float(10.0 ** (target_rms_db / 20.0))

    def forward(self, wav: Tensor, lengths: Tensor) -> Tensor:
        """Level-normalise each item of ``wav`` (B, T) over its first ``lengths`` samples."""
        if self.method == "none":
            return wav
        mask = (torch.arange(wav.shape[1], device=wav.device)[None, :] < lengths[:, None]).to(
            wav.dtype
        )
        valid = wav * mask
        peak = valid.abs().amax(dim=1, keepdim=True)
        silent = peak < SILENCE_PEAK
        if self.method == "peak":
            level = peak
        else:
            n = lengths.to(wav.dtype).clamp(min=1)[:, None]
            level = (valid.double().pow(2).sum(dim=1, keepdim=True) / n).sqrt().to(wav.dtype)
            level = level / self.target
        scale = torch.where(silent, torch.ones_like(level), 1.0 / torch.where(silent, 1.0, level))
        return wav * scale


class Levelled(nn.Module):
    """Tier 0's level normalisation in front of a (waveform, lengths) -> probs module.

    Shape:
        wav: (B, T), lengths: (B,) samples -> (B, C)
    """

    def __init__(self, level: LevelNorm, graph: nn.Module) -> None:
        super().__init__()
        self.level = level
        self.graph = graph

    def forward(self, wav: Tensor, lengths: Tensor) -> Tensor:
        """Class probabilities (B, K) of padded ``wav`` (B, T) with ``lengths`` (B,) in samples."""
        lengths = lengths.long()
        return self.graph(self.level(wav, lengths), lengths)


@dataclass
class Pipeline:
    """A checkpoint rebuilt: tier 0 and the (waveform, lengths) -> probs module.

    Attributes:
        checkpoint: the :class:`~vocalis.checkpoint.Checkpoint` it was built from.
        graph: the module :data:`~vocalis.inference.MODEL_KINDS` built for the
            checkpoint's kind (after tier 0), in eval mode.
        source: where the checkpoint came from.
    """

    checkpoint: Checkpoint
    graph: nn.Module
    source: str

    @property
    def tier0(self) -> Any:
        """The :class:`vocalis.audio.Tier0Config`."""
        return self.checkpoint.tier0

    @property
    def features(self) -> Any:
        """The :class:`vocalis.features.FeatureConfig` (None for a model without one)."""
        return self.checkpoint.features

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names of the first head, in output order."""
        return self.checkpoint.classes

    @property
    def heads(self) -> list | None:
        """The :class:`~vocalis.data.targets.HeadSpec` list of a multi-head model, else ``None``.

        The graph then returns every head's outputs side by side (see
        :mod:`vocalis.inference.neural`).
        """
        from vocalis.data.targets import heads_from_data

        return heads_from_data(self.checkpoint.model.heads) if self.checkpoint.model.heads else None

    @property
    def kind(self) -> str:
        """The model kind (``neural``, ``ensemble``)."""
        return self.checkpoint.kind

    @property
    def model_name(self) -> str:
        """Registry name of the model."""
        return self.checkpoint.model.name

    @property
    def sample_rate(self) -> int:
        """The rate in Hz the model expects (tier 0 resamples to it)."""
        return self.checkpoint.sample_rate

    @property
    def meta(self) -> dict[str, Any]:
        """``vocalis_version``, ``format_version`` and ``epoch`` when recorded."""
        ckpt = self.checkpoint
        meta = {"vocalis_version": ckpt.vocalis_version, "format_version": ckpt.format_version}
        if "epoch" in ckpt.training:
            meta["epoch"] = ckpt.training["epoch"]
        return meta

    @property
    def neural(self) -> WaveformToProbs:
        """The neural graph (extractor, normalisation, model).

        Raises:
            ModelError: the model is not of kind ``neural`` (it has no feature front end).
        """
        from vocalis.inference.neural import WaveformToProbs

        if not isinstance(self.graph, WaveformToProbs):
            raise ModelError(
                f"{self.source}: a {self.kind!r} model has no feature extractor or neural "
                "layers; this needs a neural checkpoint"
            )
        return self.graph

    @property
    def extractor(self) -> nn.Module:
        """The feature extractor of a neural model."""
        return self.neural.extractor

    @property
    def norm(self) -> nn.Module:
        """The :class:`~vocalis.features.normalize.FeatureNormalizer` of a neural model."""
        return self.neural.head.norm

    @property
    def model(self) -> nn.Module:
        """The classifier of a neural model."""
        return self.neural.head.model

    def features_to_probs(self) -> nn.Module:
        """The (features, frame lengths) -> probabilities module of a neural model."""
        return self.neural.head

    def waveform_to_probs(self, level: bool = False) -> nn.Module:
        """The (waveform, lengths) -> probabilities module.

        Args:
            level: put tier 0's level normalisation in front (True for exported
                graphs fed with raw audio; False when tier 0 already ran).
        """
        if not level:
            return self.graph
        norm = LevelNorm(self.tier0.normalize, float(self.tier0.target_rms_db))
        return Levelled(norm, self.graph).eval()


def load_pipeline(checkpoint: str | os.PathLike | None = None, device: str = "cpu") -> Pipeline:
    """Read a checkpoint and rebuild its pipeline with the builder of its model kind.

    Args:
        checkpoint: anything :func:`resolve_checkpoint` takes (None = the bundled model).
        device: torch device for the module.

    Raises:
        ModelError: no bundled model, an unreadable, old or inconsistent checkpoint.
        ConfigError: a config or model kind the installed Vocalis does not know.
    """
    from vocalis.checkpoint import load_checkpoint
    from vocalis.inference.kinds import kind_builder

    path = resolve_checkpoint(checkpoint)
    ckpt = load_checkpoint(path)
    if ckpt.normalization.mode == "speaker":
        logger.debug("%s: speaker normalisation uses pooled statistics at inference", path)
    graph = kind_builder(ckpt.kind)(ckpt).to(device).eval()
    return Pipeline(checkpoint=ckpt, graph=graph, source=str(path))
