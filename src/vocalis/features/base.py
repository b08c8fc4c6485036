"""The extractor base class and the ``FEATURES`` registry.

Every extractor is an :class:`torch.nn.Module` built from a
:class:`~vocalis.features.config.FeatureConfig`, registered under a name, that
maps a waveform batch ``(B, T)`` (or a single ``(T,)``) to ``(B, F, N)`` (or
``(F, N)``), where ``F = feature_dim`` and ``N = frame_lengths(T)``: each
extractor owns its frame-count rule (:meth:`FeatureExtractor.frame_lengths`).
Register your own with ``@FEATURES.register("name")``.
"""

from __future__ import annotations

import torch
from torch import nn

from vocalis.errors import ConfigError, ModelError
from vocalis.features.config import FeatureConfig
from vocalis.registry import Registry

#: Registered extractor classes, by name (also the CLI's ``--features`` choices).
FEATURES: Registry[type[FeatureExtractor]] = Registry("feature")


class FeatureExtractor(nn.Module):
    """Base class of the frame-level feature extractors.

    Subclasses set ``feature_dim``, implement :meth:`compute` and
    :meth:`frame_lengths` (their frame-count rule).

    Args:
        config: the feature config; ``config.sample_rate`` is the expected input rate.
    """

    feature_dim: int = 0

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__()
        self.config = config
        #: Compute spectra with ops every ONNX runtime has (a DFT ``conv1d``
        #: instead of the FFT); set by the exporter, off for training and serving.
        self.export_friendly = False

    @property
    def frame_shift(self) -> float:
        """Seconds between frames."""
        return self.config.frame_shift

    @classmethod
    def weights_identity(cls, config: FeatureConfig) -> str | None:
        """What model weights the extractor of ``config`` reads, for cache keys.

        See :func:`~vocalis.features.config.cache_identity`; None when it reads none.
        """
        return None

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Frames this extractor gives for signal lengths in samples.

        Shape:
            (B,) integer samples -> (B,) int64 frames.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must define frame_lengths(lengths) (its frame-count rule)"
        )

    def compute(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Features of a zero-padded batch. Shape: (B, T), lengths (B,) -> (B, F, N).

        ``lengths`` (samples) lets features that look across frames (pitch
        smoothing and interpolation) ignore the padding; spectral features
        do not need it.
        """
        raise NotImplementedError

    def forward(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Extract features.

        Args:
            wav: waveform ``(T,)`` or zero-padded batch ``(B, T)`` at ``config.sample_rate``.
            lengths: optional ``(B,)`` valid samples per item; frames past
                ``frame_lengths(lengths)[i]`` are set to zero. Give it for padded
                batches: pitch then matches each item computed alone exactly.

        Returns:
            ``(F, N)`` for a single waveform, ``(B, F, N)`` for a batch,
            with ``N = frame_lengths(T)``.
        """
        single = wav.dim() == 1
        if wav.dim() not in (1, 2):
            raise ModelError(
                f"features: expected a waveform (T,) or batch (B, T), got shape "
                f"{tuple(wav.shape)}; pass one signal or a zero-padded batch"
            )
        batch = wav.unsqueeze(0) if single else wav
        if not batch.is_floating_point():
            batch = batch.float()
        if lengths is not None:
            lengths = torch.as_tensor(lengths, device=batch.device).reshape(-1)
        feats = self.compute(batch, lengths)
        if lengths is not None:
            n = self.frame_lengths(lengths.to(feats.device))
            mask = torch.arange(feats.shape[-1], device=feats.device)[None, :] < n[:, None]
            feats = feats * mask[:, None, :].to(feats.dtype)
        return feats[0] if single else feats

    def extra_repr(self) -> str:
        """The feature size and frame shift, shown by ``repr``."""
        return f"feature_dim={self.feature_dim}, frame_shift={self.frame_shift}"


_MODULES: dict[tuple[FeatureConfig, str, torch.dtype], FeatureExtractor] = {}


def build_extractor(config: FeatureConfig) -> FeatureExtractor:
    """Instantiate the extractor named ``config.name``.

    Raises:
        ConfigError: unknown name (the message lists the registered ones).
    """
    import vocalis.features.combos  # noqa: F401  (registers the built-ins; see features/__init__)

    cls = FEATURES.get(config.name)
    return cls(config)


def cached_extractor(
    config: FeatureConfig,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> FeatureExtractor:
    """The extractor for ``config`` on ``device`` (CPU by default) in ``dtype``, built once."""
    device = torch.device("cpu") if device is None else device
    key = (config, device, dtype)
    module = _MODULES.get(key)
    if module is None:
        module = build_extractor(config).to(device=device, dtype=dtype)
        if len(_MODULES) > 32:
            _MODULES.clear()
        _MODULES[key] = module
    return module


def extract(
    wav: torch.Tensor, config: FeatureConfig, lengths: torch.Tensor | None = None
) -> torch.Tensor:
    """Compute the features named ``config.name`` (functional form of the extractors).

    The extractor (mel filterbank, DCT, windows) is built once per config, device
    and dtype and reused. No ``no_grad`` is imposed: gradients flow to ``wav``
    when it requires them (spectral features; pitch is piecewise constant).

    Args:
        wav: ``(T,)`` or zero-padded ``(B, T)`` float waveform at ``config.sample_rate``.
        config: the feature config.
        lengths: optional ``(B,)`` valid samples; padded frames are zeroed.

    Returns:
        ``(F, N)`` or ``(B, F, N)`` with ``N`` frames (:func:`frame_lengths` of ``T``).

    Shape:
        wav (B, T) -> (B, F, N); B batch, T samples, F features, N frames.

    Example:
        >>> extract(torch.zeros(1600), FeatureConfig(name="mfcc")).shape
        torch.Size([40, 11])
        >>> extract(torch.zeros(2, 320), FeatureConfig(name="mfbe_pitch")).shape
        torch.Size([2, 81, 3])
    """
    if not wav.is_floating_point():
        wav = wav.float()
    # forward() directly: no module hooks to run, and no autograd context here, so
    # gradients flow when ``wav`` requires them and nothing is recorded otherwise
    return cached_extractor(config, wav.device, wav.dtype).forward(wav, lengths)


def frame_lengths(lengths: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """Frames the extractor of ``config`` gives for signal lengths in samples.

    Functional form of :meth:`FeatureExtractor.frame_lengths` (the extractor is
    built once per config, as in :func:`extract`).

    Shape:
        lengths: (B,) integer samples. Returns (B,) int64 frames.

    Example:
        >>> frame_lengths(torch.tensor([0, 160, 16000]), FeatureConfig())
        tensor([  1,   2, 101])
    """
    return cached_extractor(config).frame_lengths(torch.as_tensor(lengths))


def feature_dim(config: FeatureConfig) -> int:
    """Number of features per frame for ``config``.

    Example:
        >>> feature_dim(FeatureConfig(name="mfcc_pitch"))
        41
    """
    return cached_extractor(config).feature_dim


def check_sample_rate(sample_rate: int, config: FeatureConfig, where: str = "") -> None:
    """Raise ``ConfigError`` when audio at ``sample_rate`` does not fit ``config``."""
    if sample_rate != config.sample_rate:
        raise ConfigError(
            f"{where or 'features'}: audio is at {sample_rate} Hz but features.sample_rate is "
            f"{config.sample_rate}; set tier0.sample_rate to {config.sample_rate}"
        )


__all__ = [
    "FEATURES",
    "FeatureExtractor",
    "build_extractor",
    "cached_extractor",
    "check_sample_rate",
    "extract",
    "feature_dim",
    "frame_lengths",
]
