"""The feature config (one frozen dataclass for every extractor) and the pipeline config.

Both import neither torch nor numpy, so a cache key or a checkpoint's config can
be built cheaply (the fully cached ``vocalis features`` run does).

Frames follow one convention for every feature so that features can be stacked
(``mfbe_pitch``) and lengths map exactly: frame ``k`` is centred on sample
``k * hop_length``; the signal is zero-padded by ``n_fft // 2`` on both sides
(``center=True``, constant padding, as ``librosa`` >= 0.10 does), so a signal of
``N`` samples has ``1 + N // hop_length`` frames. The extractor owns that rule
(``extractor.frame_lengths(lengths)``, or :func:`vocalis.features.frame_lengths`):
frame counts are never computed from a config alone.

Because the padding is zeros, a batch padded with zeros gives the same frames
for item ``i`` (up to its frame count) as item ``i`` alone.

Example:
    >>> cfg = FeatureConfig(name="fbank")
    >>> cfg.frame_shift
    0.01
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from vocalis.audio.config import Tier0Config
from vocalis.errors import ConfigError


@dataclass(frozen=True)
class FeatureConfig:
    """How features are computed from a waveform.

    Args:
        name: registry key of the extractor (``mfcc``, ``fbank``, ``mfbe``, ``pitch``,
            ``mfbe_pitch``, ``mfcc_pitch``, ``mfbe_only``, ``mfcc_only``, ``pitch_only``,
            ``encoder``, ``ge2e``, ``waveform``, ``ptm`` and ``ptm_<mode>``: every encoder
            layer stacked, alone or with a handcrafted mode).
        sample_rate: expected input rate in Hz (tier 0 resamples to it).
        n_fft: FFT size in samples (512 = 32 ms at 16 kHz).
        win_length: analysis window in samples (400 = 25 ms), centred in ``n_fft``.
        hop_length: frame shift in samples (160 = 10 ms).
        f_min: lowest mel band edge in Hz.
        f_max: highest mel band edge in Hz (at most ``sample_rate / 2``).
        window: ``hamming``, ``hann`` or ``povey`` (Kaldi: hann ** 0.85); periodic.
        mel_scale: ``htk`` (Kaldi, ``2595 log10(1 + f/700)``) or ``slaney`` (librosa default).
        mel_norm: ``none`` (triangles peak at 1, Kaldi/HTK) or ``slaney`` (unit area).
        n_mfcc: cepstra kept. MFCCs follow the Kaldi "hires" recipe: ``n_mfcc``
            cepstra from ``n_mels_mfcc`` bands (40 from 40: no truncation, an
            orthonormal decorrelating rotation of the log-mel energies).
        n_mels_mfcc: mel bands used for MFCC.
        n_fbank: mel bands of ``fbank`` / ``mfbe`` (log mel filterbank energies).
        log_floor: power below this is clamped before the log (``log(max(x, floor))``).
        pitch_fmin: lowest F0 searched, in Hz.
        pitch_fmax: highest F0 searched, in Hz.
        pitch_frame_length: pitch analysis frame in samples (must hold two periods
            of ``pitch_fmin``: 1024 = 64 ms at 16 kHz covers 50 Hz).
        pitch_threshold: YIN absolute threshold on the cumulative mean normalised
            difference (0.1 to 0.2 usual); the first dip below it is the period.
        voicing_threshold: a frame is voiced when its best YIN dip is below this.
        silence_db: frames whose RMS is this many dB below the loudest frame of the
            utterance are unvoiced.
        ge2e_layer: ``ge2e`` features are the outputs of this layer (1-3) of the
            pretrained GE2E speaker encoder (:mod:`vocalis.encoders.ge2e`).
        ge2e_weights: its checkpoint (``""``: ``$VOCALIS_GE2E_WEIGHTS``, then the
            layers 1-2 shipped with Vocalis, then the installed ``resemblyzer`` wheel);
            also the checkpoint of ``encoder`` features with ``encoder_source: ge2e``.
        encoder_source: the encoder of ``encoder`` features: ``ge2e``, or a folder
            written by ``save_pretrained`` / a model id in the Hugging Face cache
            (wav2vec 2.0, HuBERT, WavLM; :func:`vocalis.encoders.open_encoder`).
        encoder_revision: revision of a cached model id (``""``: ``main``).
        encoder_layers: the layers ``encoder`` features read, numbered as the encoder
            numbers them (GE2E 1-3; ``transformers`` 0 = the transformer's input to
            ``num_hidden_layers``); negative numbers count from the last (``-1``).
        encoder_layer_weights: ``[]`` averages the layers (one layer: itself);
            else one weight >= 0 per layer, for their weighted mean.
    """

    name: str = "fbank"
    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    f_min: float = 20.0
    f_max: float = 8000.0
    window: Literal["hamming", "hann", "povey"] = "hamming"
    mel_scale: Literal["htk", "slaney"] = "htk"
    mel_norm: Literal["none", "slaney"] = "none"
    n_mfcc: int = 40
    n_mels_mfcc: int = 40
    n_fbank: int = 80
    log_floor: float = 1e-10
    pitch_fmin: float = 50.0
    pitch_fmax: float = 550.0
    pitch_frame_length: int = 1024
    pitch_threshold: float = 0.15
    voicing_threshold: float = 0.45
    silence_db: float = 50.0
    ge2e_layer: int = 2
    ge2e_weights: str = ""
    encoder_source: str = "ge2e"
    encoder_revision: str = ""
    encoder_layers: tuple[int, ...] = (-1,)
    encoder_layer_weights: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        def bad(key: str, value: object, expected: str) -> ConfigError:
            return ConfigError(f"features.{key}: got {value!r}, expected {expected}")

        if self.sample_rate <= 0:
            raise bad("sample_rate", self.sample_rate, "a positive rate in Hz")
        if self.hop_length <= 0:
            raise bad("hop_length", self.hop_length, "a positive number of samples")
        if not 0 < self.win_length <= self.n_fft:
            raise bad("win_length", self.win_length, f"1..n_fft ({self.n_fft})")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            nyquist = self.sample_rate / 2
            raise bad("f_max", self.f_max, f"f_min < f_max <= sample_rate/2 ({nyquist})")
        if not 0 < self.n_mfcc <= self.n_mels_mfcc:
            raise bad("n_mfcc", self.n_mfcc, f"1..n_mels_mfcc ({self.n_mels_mfcc})")
        if self.n_fbank <= 0:
            raise bad("n_fbank", self.n_fbank, "a positive number of bands")
        if self.log_floor <= 0:
            raise bad("log_floor", self.log_floor, "a small positive number such as 1e-10")
        if not 0 < self.pitch_fmin < self.pitch_fmax < self.sample_rate / 2:
            raise bad("pitch_fmax", self.pitch_fmax, "pitch_fmin < pitch_fmax < sample_rate/2")
        if self.ge2e_layer not in (1, 2, 3):
            raise bad("ge2e_layer", self.ge2e_layer, "1, 2 or 3 (a GE2E LSTM layer)")
        if not self.encoder_source:
            raise bad("encoder_source", self.encoder_source, "ge2e, a folder or a model id")
        layers = list(self.encoder_layers)
        if not layers or len(set(layers)) != len(layers):
            raise bad("encoder_layers", layers, "distinct layer numbers such as [-1] or [6, 9]")
        w = list(self.encoder_layer_weights)
        if w and (len(w) != len(layers) or min(w) < 0 or sum(w) <= 0):
            raise bad(
                "encoder_layer_weights",
                w,
                f"one weight >= 0 per layer of {layers} with a positive sum, or [] to average",
            )
        need = 2 * int(self.sample_rate / self.pitch_fmin) + 2
        if self.pitch_frame_length < need:
            raise bad(
                "pitch_frame_length",
                self.pitch_frame_length,
                f">= {need} samples (two periods of pitch_fmin={self.pitch_fmin} Hz)",
            )

    @property
    def frame_shift(self) -> float:
        """Seconds between frames."""
        return self.hop_length / self.sample_rate


def _check_feature_name(name: str) -> None:
    from vocalis.features import BUILTIN_FEATURES

    if name in BUILTIN_FEATURES:
        return
    from vocalis.features import FEATURES  # imports torch, registers the built-ins

    FEATURES.get(name)  # user-registered: fine; unknown: ConfigError with a suggestion


@dataclass(frozen=True)
class PipelineConfig:
    """Everything between an audio file and its features.

    The whole recipe (tier-0 config + feature config): what checkpoints carry and
    what the feature cache is keyed on. Re-exported by :mod:`vocalis.features.pipeline`.

    Args:
        tier0: decoding, resampling, denoising and VAD.
        features: the feature extractor and its parameters.

    Raises:
        ConfigError: unknown feature name, or ``tier0.sample_rate`` differs from
            ``features.sample_rate``.

    Example:
        >>> from vocalis.config import from_dict, to_dict
        >>> cfg = from_dict(PipelineConfig, {"features": {"name": "mfcc", "n_mfcc": 20}})
        >>> cfg.features.n_mfcc, to_dict(cfg)["tier0"]["sample_rate"]
        (20, 16000)
    """

    tier0: Tier0Config = field(default_factory=Tier0Config)
    features: FeatureConfig = field(default_factory=FeatureConfig)

    def __post_init__(self) -> None:
        _check_feature_name(self.features.name)
        if self.tier0.sample_rate != self.features.sample_rate:
            raise ConfigError(
                f"tier0.sample_rate={self.tier0.sample_rate} but "
                f"features.sample_rate={self.features.sample_rate}; set both to the same rate"
            )


#: Handcrafted feature modes a speaker-verification model fuses with encoder layers.
HANDCRAFTED_MODES = ("mfbe_pitch", "mfcc_pitch", "mfbe_only", "mfcc_only", "pitch_only")

#: Stacks of every chosen encoder layer, alone (``ptm``) or with a handcrafted mode
#: (``ptm_mfbe_pitch``...), see :mod:`vocalis.features.ptm_stack`; they read the
#: ``encoder_*`` fields like ``encoder`` features do.
PTM_STACK_FEATURES = ("ptm", *(f"ptm_{m}" for m in HANDCRAFTED_MODES))


def stack_name(
    mode: int,
    handcrafted: str,
    npy_dir: str | None = None,
    *pt_paths: str | None,
) -> str:
    """The extractor a speaker-verification mode reads.

    Mode 1 (encoder layers only) ``ptm``, mode 2 (handcrafted only) ``handcrafted``
    itself, mode 3 (both) ``ptm_<handcrafted>``; precomputed inputs instead: ``npy``
    with a folder of ``.npy`` files, ``precomputed`` with ``.pt`` files. Recipes call it
    as the resolver ``${sv_features:${model.params.mode},${model.params.features},
    ${features.dir},${features.embedding_path},${features.feature_path}}``.

    Raises:
        ConfigError: a mode other than 1, 2, 3 or an unknown handcrafted mode.

    Example:
        >>> stack_name(3, "mfcc_pitch"), stack_name(2, "pitch_only"), stack_name(1, "mfbe_pitch")
        ('ptm_mfcc_pitch', 'pitch_only', 'ptm')
        >>> stack_name(3, "mfcc_pitch", "feats/"), stack_name(3, "mfcc_pitch", None, "e.pt")
        ('npy', 'precomputed')
    """
    if npy_dir:
        return "npy"
    if any(pt_paths):
        return "precomputed"
    if handcrafted not in HANDCRAFTED_MODES:
        raise ConfigError(
            f"model.params.features: got {handcrafted!r}, expected one of "
            f"{', '.join(HANDCRAFTED_MODES)}"
        )
    names = {1: "ptm", 2: handcrafted, 3: f"ptm_{handcrafted}"}
    try:
        return names[int(mode)]
    except (KeyError, ValueError):
        raise ConfigError(
            f"model.params.mode: got {mode!r}, expected 1 (PTM), 2 (handcrafted) or 3 (fused)"
        ) from None


#: Built-in extractors that run a pretrained encoder (their cache keys name its weights).
ENCODER_FEATURES = ("encoder", "ge2e", *PTM_STACK_FEATURES)

#: Fields only ``encoder`` features read. They join no other extractor's cache key,
#: so adding them left the keys (and cached entries) of every other feature as they were.
ENCODER_FIELDS = ("encoder_source", "encoder_revision", "encoder_layers", "encoder_layer_weights")


def cache_identity(pipeline: PipelineConfig) -> PipelineConfig | dict:
    """What a cache entry of ``pipeline`` depends on: the config, and model weights if any.

    For encoder features (``encoder``, ``ge2e``, and extractors whose
    :meth:`~vocalis.features.base.FeatureExtractor.weights_identity` is not None)
    the identity of the weights joins the key (a SHA-256, or repository@revision),
    so new weights under the same path never serve old entries. The ``encoder_*``
    fields join only the key of ``encoder`` features. Built-in extractors other
    than the encoder ones are keyed without importing torch.

    Example:
        >>> key = cache_identity(PipelineConfig())
        >>> "encoder_layers" in key["features"], key["features"]["name"]
        (False, 'fbank')
    """
    from vocalis.config import to_dict
    from vocalis.features import BUILTIN_FEATURES

    features = pipeline.features
    builtin = features.name in BUILTIN_FEATURES
    data = to_dict(pipeline)
    if builtin and features.name not in ("encoder", *PTM_STACK_FEATURES):
        for key in ENCODER_FIELDS:
            del data["features"][key]
    if builtin and features.name not in ENCODER_FEATURES:
        return data
    from vocalis.features import FEATURES  # imports torch, registers the built-ins

    identity = FEATURES.get(features.name).weights_identity(features)
    if identity is None:
        return pipeline
    return {"pipeline": data, "weights_identity": identity}
