"""Rebuild a trained model's whole pipeline from its checkpoint.

A checkpoint (see :mod:`vocalis.checkpoint`) records the tier-0 settings, the
feature config, the feature normalisation and its statistics, the model and its
labels. :func:`load_pipeline` turns it back into modules; prediction, segments,
embeddings, export and the web service all start here, so nothing is configured
twice and every consumer computes exactly what training computed.

The part after tier 0 is one traceable module, :class:`WaveformToProbs`
(waveform + lengths -> probabilities): the :class:`~vocalis.inference.Predictor`
runs it eagerly and :mod:`vocalis.inference.export` traces it to TorchScript and
ONNX, so the exported graph is the served one.

Shape legend: B batch, T samples, F features, N frames, C classes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from vocalis.errors import ModelError

logger = logging.getLogger(__name__)

#: File name of the model shipped in ``vocalis/resources/models``.
BUNDLED_MODEL = "default_emotion.pt"

#: Below this peak amplitude a signal is digital silence and is not scaled
#: (the value :mod:`vocalis.audio.level` uses).
SILENCE_PEAK = 1e-8


def bundled_checkpoint() -> Path:
    """Path of the default emotion model shipped with this install.

    Raises:
        ModelError: this install has no bundled model.
    """
    try:
        res = resources.files("vocalis.resources") / "models" / BUNDLED_MODEL
        path = Path(str(res))
        if path.is_file():
            return path
    except (ModuleNotFoundError, FileNotFoundError, NotADirectoryError):
        pass
    raise ModelError(
        "no bundled model in this install; pass --checkpoint runs/<name>/checkpoints/best.pt "
        f"(vocalis/resources/models/{BUNDLED_MODEL} is missing)"
    )


def resolve_checkpoint(checkpoint: str | os.PathLike | None) -> str | os.PathLike:
    """The checkpoint file to load.

    None means the bundled model; a run folder means its ``checkpoints/best.pt``
    (or ``best.pt`` directly inside it); anything else is returned as is.

    Raises:
        ModelError: None and no bundled model, or a folder without ``best.pt``.
    """
    if checkpoint is None:
        return bundled_checkpoint()
    folder = Path(checkpoint)
    if "://" not in str(checkpoint) and folder.is_dir():
        for candidate in (folder / "checkpoints" / "best.pt", folder / "best.pt"):
            if candidate.is_file():
                return candidate
        raise ModelError(
            f"{checkpoint}: is a folder without checkpoints/best.pt; pass the checkpoint file "
            "(e.g. runs/<name>/checkpoints/last.pt)"
        )
    return checkpoint


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


class FeatureNorm(nn.Module):
    """The checkpoint's feature normalisation as a module of (features, lengths).

    Args:
        mode: ``global`` (training statistics), ``utterance`` (per-utterance CMVN),
            ``speaker`` (per-speaker statistics: at inference the speaker is unknown,
            so the statistics pooled over all training speakers are used) or ``none``.
        state: the checkpoint's ``normalization.state``.
        feature_dim: F, to size the global statistics.

    Shape:
        feats: (B, F, N), lengths: (B,) frames -> (B, F, N); padded frames stay zero.
    """

    def __init__(self, mode: str, state: dict[str, Any] | None, feature_dim: int) -> None:
        super().__init__()
        from vocalis.features.normalize import GlobalMVN

        self.mode = mode
        self.variance = bool((state or {}).get("variance", True))
        self.mvn: nn.Module | None = None
        if mode in ("global", "speaker"):
            if not state:
                raise ModelError(
                    f"checkpoint normalization.mode={mode!r} but normalization.state is empty; "
                    "the checkpoint is incomplete, save it again from the run"
                )
            stats = state.get("pooled", state) if mode == "speaker" else state
            tensors = {k: v for k, v in stats.items() if isinstance(v, Tensor)}
            if "sum" not in tensors:
                raise ModelError(
                    f"checkpoint normalization.state has keys {sorted(stats)}, expected the "
                    "GlobalMVN state (count, sum, sum_sq)"
                )
            eps = float(stats.get("eps", state.get("eps", 1e-5)))
            mvn = GlobalMVN(tensors["sum"].numel(), variance=self.variance, eps=eps)
            mvn.load_state_dict(tensors)
            if mvn.feature_dim != feature_dim:
                raise ModelError(
                    f"normalisation statistics have {mvn.feature_dim} features, the feature "
                    f"extractor gives {feature_dim}; the checkpoint is inconsistent"
                )
            self.mvn = mvn
        elif mode not in ("utterance", "none"):
            raise ModelError(
                f"checkpoint normalization.mode={mode!r}: expected global, utterance, speaker "
                "or none"
            )

    def forward(self, feats: Tensor, lengths: Tensor) -> Tensor:
        if self.mvn is not None:
            return self.mvn(feats, lengths)
        if self.mode == "utterance":
            from vocalis.features.normalize import cmvn

            return cmvn(feats, lengths, variance=self.variance)
        return feats


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

    def __init__(self, norm: FeatureNorm, model: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.norm = norm
        self.model = model
        self.num_classes = num_classes

    def forward(self, feats: Tensor, lengths: Tensor) -> Tensor:
        lengths = lengths.long()
        return first_head_probs(self.model, self.norm(feats, lengths), lengths, self.num_classes)


class WaveformToProbs(nn.Module):
    """Level normalisation + features + normalisation + model.

    The input is a mono waveform at the model's sample rate (tier 0 up to and
    including resampling; denoising and VAD are not part of this module).

    Shape:
        wav: (B, T), lengths: (B,) samples -> (B, C)
    """

    def __init__(self, level: LevelNorm, extractor: nn.Module, head: FeaturesToProbs) -> None:
        super().__init__()
        self.level = level
        self.extractor = extractor
        self.head = head
        self.hop_length = int(extractor.config.hop_length)

    def features(self, wav: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Level-normalised features and their frame counts: (B, F, N), (B,)."""
        lengths = lengths.long()
        wav = self.level(wav, lengths)
        feats = self.extractor(wav, lengths)
        frames = 1 + torch.div(lengths, self.hop_length, rounding_mode="floor")
        return feats, frames

    def forward(self, wav: Tensor, lengths: Tensor) -> Tensor:
        feats, frames = self.features(wav, lengths)
        return self.head(feats, frames)


@dataclass
class Pipeline:
    """Everything a checkpoint rebuilds.

    Attributes:
        tier0: the tier-0 config (a :class:`vocalis.audio.Tier0Config`).
        features: the :class:`vocalis.features.FeatureConfig`.
        extractor: the feature module.
        norm: the feature normalisation.
        model: the classifier, in eval mode.
        classes: class names of the first head, in output order.
        model_name: registry name of the model.
        source: where the checkpoint came from.
        meta: ``vocalis_version``, ``format_version``, ``epoch``, ``best`` when recorded.
    """

    tier0: Any
    features: Any
    extractor: nn.Module
    norm: FeatureNorm
    model: nn.Module
    classes: tuple[str, ...]
    model_name: str
    source: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def sample_rate(self) -> int:
        return int(self.features.sample_rate)

    def features_to_probs(self) -> FeaturesToProbs:
        """The (features, frame lengths) -> probabilities module."""
        return FeaturesToProbs(self.norm, self.model, len(self.classes)).eval()

    def waveform_to_probs(self, level: bool = False) -> WaveformToProbs:
        """The (waveform, lengths) -> probabilities module.

        Args:
            level: include tier 0's level normalisation (True for exported graphs
                fed with raw audio; False when tier 0 already ran).
        """
        method = self.tier0.normalize if level else "none"
        norm = LevelNorm(method, float(getattr(self.tier0, "target_rms_db", -20.0)))
        return WaveformToProbs(norm, self.extractor, self.features_to_probs()).eval()


def _load_state(model: nn.Module, state: dict[str, Tensor], source: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        detail = first[1].strip() if len(first) > 1 else first[0]
        raise ModelError(
            f"{source}: model weights do not fit the model config ({detail}); the checkpoint "
            "is inconsistent or from another Vocalis version"
        ) from None


def load_pipeline(checkpoint: str | os.PathLike | None = None, device: str = "cpu") -> Pipeline:
    """Read a checkpoint and rebuild tier 0, features, normalisation, model and labels.

    Args:
        checkpoint: path or URL of a Vocalis checkpoint; None = the bundled model.
        device: torch device for the extractor and model.

    Raises:
        ModelError: no bundled model, an unreadable or inconsistent checkpoint.
        ConfigError: a config the installed Vocalis does not understand.
    """
    from vocalis.audio import Tier0Config
    from vocalis.checkpoint import load_checkpoint
    from vocalis.config import from_dict
    from vocalis.data import LabelEncoder
    from vocalis.features import FeatureConfig, build_extractor
    from vocalis.models import build_model

    path = resolve_checkpoint(checkpoint)
    source = str(path)
    ckpt = load_checkpoint(path)
    pipe = ckpt["pipeline"] or {}
    tier0 = from_dict(Tier0Config, pipe.get("tier0") or {}, where="pipeline.tier0")
    feats = from_dict(FeatureConfig, pipe.get("features") or {}, where="pipeline.features")
    if tier0.sample_rate != feats.sample_rate:
        raise ModelError(
            f"{source}: tier0.sample_rate={tier0.sample_rate} but features.sample_rate="
            f"{feats.sample_rate}; the checkpoint is inconsistent"
        )
    extractor = build_extractor(feats).to(device).eval()
    spec = ckpt["model"]
    labels = LabelEncoder.from_dict(ckpt["labels"])
    classes = tuple(str(c) for c in labels.classes)
    model = build_model(
        spec["name"],
        spec.get("config") or {},
        int(spec["input_dim"]),
        spec["num_classes"],
        feature_name=feats.name,
    )
    _load_state(model, ckpt["model_state"], source)
    model = model.to(device).eval()
    if int(spec["input_dim"]) != extractor.feature_dim:
        raise ModelError(
            f"{source}: model input_dim={spec['input_dim']} but features '{feats.name}' give "
            f"{extractor.feature_dim}; the checkpoint is inconsistent"
        )
    norm_spec = ckpt["normalization"] or {}
    mode = str(norm_spec.get("mode", "none"))
    if mode == "speaker":
        logger.debug("%s: speaker normalisation uses pooled statistics at inference", source)
    norm = FeatureNorm(mode, norm_spec.get("state"), extractor.feature_dim).to(device).eval()
    meta = {k: ckpt[k] for k in ("vocalis_version", "format_version", "epoch") if k in ckpt}
    return Pipeline(
        tier0=tier0,
        features=feats,
        extractor=extractor,
        norm=norm,
        model=model,
        classes=classes,
        model_name=str(spec["name"]),
        source=source,
        meta=meta,
    )
