"""Utterance-level functionals: one fixed-size vector per utterance.

Three families, found by name in :data:`FUNCTIONALS`:

* ``compare_2016`` and ``egemaps_v02``: the openSMILE feature sets (6373 and 88
  features) through the ``opensmile`` package, imported only when used;
* ``lld_stats``: Vocalis's own statistics over frame-level descriptors
  (any :mod:`vocalis.features` extractor, MFCC by default) and their deltas:
  mean, standard deviation, skewness, kurtosis, 1/25/50/75/99th percentiles,
  inter-quartile range and linear slope per descriptor, in pure torch;
* ``encoder_stats``: mean and standard deviation over frames of chosen layers of
  any pretrained encoder (:mod:`vocalis.encoders`: GE2E, or a wav2vec 2.0 /
  HuBERT / WavLM folder or cached model id), ``2 * H`` values per layer;
* ``ge2e_stats``: its preset for the GE2E speaker encoder (weights from the
  ``resemblyzer`` wheel, layers 1-2 shipped with Vocalis), 512 values per layer.

Functionals are what classic paralinguistics classifiers (SVM, logistic
regression, see :mod:`vocalis.ensemble`) consume.

Example:
    >>> import torch
    >>> cfg = FunctionalsConfig(name="lld_stats")
    >>> compute_functionals(torch.randn(8000), 16000, cfg).shape
    torch.Size([880])
    >>> functionals_dim(cfg)
    880
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from vocalis.errors import AudioError, ConfigError
from vocalis.registry import Registry

if TYPE_CHECKING:
    from vocalis.features.pretrained import EncoderChoice

#: Names of the statistics of ``lld_stats``, in output order (per descriptor).
STATISTICS: tuple[str, ...] = (
    "mean",
    "std",
    "skew",
    "kurtosis",
    "p01",
    "p25",
    "p50",
    "p75",
    "p99",
    "iqr",
    "slope",
)

#: openSMILE feature-set names by registry key, and their sizes.
OPENSMILE_SETS: dict[str, tuple[str, int]] = {
    "compare_2016": ("ComParE_2016", 6373),
    "egemaps_v02": ("eGeMAPSv02", 88),
}

FunctionalsFn = Callable[[torch.Tensor, int, "FunctionalsConfig"], torch.Tensor]
FUNCTIONALS: Registry[FunctionalsFn] = Registry("functionals")


@dataclass(frozen=True)
class FunctionalsConfig:
    """Which utterance-level functionals to compute.

    Args:
        name: registry key (``compare_2016``, ``egemaps_v02``, ``lld_stats``,
            ``encoder_stats``, ``ge2e_stats``).
        lld: frame-level extractor of ``lld_stats`` (a :data:`vocalis.features.FEATURES`
            name: ``mfcc``, ``fbank``, ``mfcc_pitch``, ...).
        deltas: also compute the statistics of the first-order deltas (``lld_stats``).
        delta_window: half-width ``N`` of the delta regression, in frames.
        sample_rate: rate the waveform must have, in Hz.
        layers: encoder layers whose outputs ``encoder_stats`` / ``ge2e_stats``
            summarise, numbered as the encoder numbers them (GE2E: its LSTM layers
            1-3, the middle one carries the most emotion, bench/research/README.md;
            ``transformers``: 0 = the transformer's input to ``num_hidden_layers``;
            negative numbers, for ``encoder_stats``, count from the last).
        weights: GE2E checkpoint (``""``: ``$VOCALIS_GE2E_WEIGHTS`` or the weights
            shipped with Vocalis / inside the ``resemblyzer`` wheel).
        encoder: the encoder of ``encoder_stats``: ``ge2e``, or a ``save_pretrained``
            folder / Hugging Face cache model id (:func:`vocalis.encoders.open_encoder`).
        revision: revision of a cached model id (``""``: ``main``).
    """

    name: str = "compare_2016"
    lld: str = "mfcc"
    deltas: bool = True
    delta_window: int = 2
    sample_rate: int = 16000
    layers: tuple[int, ...] = (2,)
    weights: str = ""
    encoder: str = "ge2e"
    revision: str = ""

    def __post_init__(self) -> None:
        if not self.layers or len(set(self.layers)) != len(self.layers):
            raise ConfigError(
                f"functionals.layers: got {list(self.layers)}, expected distinct layer "
                "numbers (e.g. [2])"
            )
        if self.name != "encoder_stats" and any(k not in (1, 2, 3) for k in self.layers):
            raise ConfigError(
                f"functionals.layers: got {list(self.layers)}, expected distinct GE2E "
                "layers among 1, 2, 3 (e.g. [2])"
            )
        if not self.encoder:
            raise ConfigError("functionals.encoder: got '', expected ge2e, a folder or a model id")
        if self.delta_window < 1:
            raise ConfigError(
                f"functionals.delta_window: got {self.delta_window}, expected >= 1 frames"
            )
        if self.sample_rate <= 0:
            raise ConfigError(
                f"functionals.sample_rate: got {self.sample_rate}, expected a positive rate in Hz"
            )


# --------------------------------------------------------------------------- statistics


def deltas(frames: torch.Tensor, window: int = 2) -> torch.Tensor:
    """Regression deltas along time, edges replicated (HTK / Kaldi formula).

    ``d[t] = sum_n n (x[t+n] - x[t-n]) / (2 sum_n n^2)`` for ``n = 1..window``.

    Args:
        frames: ``(F, T)`` descriptors.
        window: half-width ``N`` in frames.

    Returns:
        ``(F, T)`` deltas.

    Shape:
        (F, T) -> (F, T); F descriptors, T frames.

    Example:
        >>> deltas(torch.arange(6.0).view(1, 6))
        tensor([[0.5000, 0.8000, 1.0000, 1.0000, 0.8000, 0.5000]])
    """
    if frames.shape[-1] == 0:
        return frames.clone()
    padded = torch.nn.functional.pad(frames.unsqueeze(0), (window, window), mode="replicate")[0]
    t = frames.shape[-1]
    num = sum(
        n * (padded[:, window + n : window + n + t] - padded[:, window - n : window - n + t])
        for n in range(1, window + 1)
    )
    return num / (2 * sum(n * n for n in range(1, window + 1)))


def frame_statistics(frames: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The :data:`STATISTICS` of every descriptor over the valid frames.

    Statistics are grouped by statistic: the output is ``(S, F)`` flattened, so
    element ``s * F + f`` is statistic ``STATISTICS[s]`` of descriptor ``f``. The
    slope is per frame (least squares against the frame index); moments of a
    constant descriptor are 0. Frames past ``lengths[b]`` are ignored, so a
    padded batch gives the same rows as each item alone.

    Args:
        frames: ``(F, T)`` or zero-padded ``(B, F, T)`` descriptors.
        lengths: ``(B,)`` valid frames per item (all ``T`` when None); each >= 1.

    Returns:
        ``(S * F,)`` or ``(B, S * F)`` with ``S = len(STATISTICS)``.

    Shape:
        (B, F, T), (B,) -> (B, S * F); B batch, F descriptors, T frames, S statistics.

    Raises:
        AudioError: an item has no valid frame.

    Example:
        >>> x = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]])
        >>> stats = dict(zip(STATISTICS, frame_statistics(x).tolist()))
        >>> stats["mean"], stats["p50"], stats["slope"], round(stats["std"], 4)
        (3.0, 3.0, 1.0, 1.4142)
    """
    if frames.dim() == 2:
        one = None if lengths is None else lengths.view(1)
        return frame_statistics(frames.unsqueeze(0), one)[0]
    b, _, t = frames.shape
    if lengths is None:
        lengths = torch.full((b,), t, dtype=torch.long)
    rows = []
    q = torch.tensor([0.01, 0.25, 0.5, 0.75, 0.99], dtype=frames.dtype)
    for i in range(b):
        n = int(lengths[i])
        if n < 1:
            raise AudioError(
                f"functionals: item {i} has {n} valid frames, expected >= 1; drop empty audio"
            )
        x = frames[i, :, :n]
        mean = x.mean(1)
        c = x - mean[:, None]
        var = (c**2).mean(1)
        std = var.sqrt()
        safe = torch.where(std > 1e-8, std, torch.ones_like(std))
        skew = torch.where(std > 1e-8, (c**3).mean(1) / safe**3, torch.zeros_like(std))
        kurt = torch.where(std > 1e-8, (c**4).mean(1) / safe**4 - 3.0, torch.zeros_like(std))
        pct = torch.quantile(x, q.to(x.device), dim=1)  # (5, F)
        idx = torch.arange(n, dtype=x.dtype, device=x.device)
        idx = idx - idx.mean()
        denom = (idx**2).sum()
        slope = (c * idx).sum(1) / denom if n > 1 else torch.zeros_like(mean)
        rows.append(torch.cat([mean, std, skew, kurt, pct.reshape(-1), pct[3] - pct[1], slope]))
    return torch.stack(rows)


# --------------------------------------------------------------------------- extractors


def _check(wav: torch.Tensor, sample_rate: int, config: FunctionalsConfig) -> torch.Tensor:
    if sample_rate != config.sample_rate:
        raise AudioError(
            f"functionals '{config.name}': got audio at {sample_rate} Hz, expected "
            f"{config.sample_rate} Hz; resample first (vocalis.audio.resample)"
        )
    wav = torch.as_tensor(wav)
    if wav.dim() != 1 or wav.numel() == 0:
        raise AudioError(
            f"functionals '{config.name}': got waveform of shape {tuple(wav.shape)}, "
            "expected a non-empty mono (T,) signal"
        )
    return wav.float()


@FUNCTIONALS.register("lld_stats")
def lld_stats(wav: torch.Tensor, sample_rate: int, config: FunctionalsConfig) -> torch.Tensor:
    """Statistics of a frame-level extractor and its deltas (see :func:`frame_statistics`).

    Shape:
        (T,) -> (D,) with ``D = S * F * (2 if deltas else 1)``.
    """
    from vocalis.features.base import extract
    from vocalis.features.config import FeatureConfig

    wav = _check(wav, sample_rate, config)
    frames = extract(wav, FeatureConfig(name=config.lld, sample_rate=sample_rate))
    parts = [frame_statistics(frames)]
    if config.deltas:
        parts.append(frame_statistics(deltas(frames, config.delta_window)))
    return torch.cat(parts)


@FUNCTIONALS.register("encoder_stats")
def encoder_stats(wav: torch.Tensor, sample_rate: int, config: FunctionalsConfig) -> torch.Tensor:
    """Mean and std over frames of the encoder layers ``config.layers``, per layer.

    The encoder (``config.encoder``) is loaded once per choice, frozen, on the CPU
    (:func:`~vocalis.features.pretrained.frozen_encoder`). The std is the
    unbiased one (0 for a single frame).

    Shape:
        (T,) -> (2 * H * len(layers),): for each layer, H means then H stds.

    Raises:
        AudioError: audio at another rate than the encoder's.
        ConfigError: the encoder is not found or has no such layer.
    """
    from vocalis.features.pretrained import frozen_encoder

    wav = _check(wav, sample_rate, config)
    encoder = frozen_encoder(_encoder_choice(config))
    if sample_rate != encoder.sample_rate:
        raise AudioError(
            f"functionals '{config.name}': got {sample_rate} Hz, the encoder needs "
            f"{encoder.sample_rate} Hz; set functionals.sample_rate={encoder.sample_rate}"
        )
    positions = [encoder.layer_index(k) for k in config.layers]
    with torch.no_grad():
        out = encoder(wav[None])
    n = int(out.lengths[0])
    parts = []
    for p in positions:
        h = out.hidden_states[p][0, :n]
        parts += [h.mean(0), h.std(0) if len(h) > 1 else torch.zeros_like(h[0])]
    return torch.cat(parts)


@FUNCTIONALS.register("ge2e_stats")
def ge2e_stats(wav: torch.Tensor, sample_rate: int, config: FunctionalsConfig) -> torch.Tensor:
    """:func:`encoder_stats` of the GE2E encoder (checkpoint ``config.weights``).

    Shape:
        (T,) -> (512 * len(layers),): for each layer, 256 means then 256 stds.
    """
    return encoder_stats(wav, sample_rate, config)


#: Fields only ``encoder_stats`` reads; they join no other functionals' cache key
#: (so the keys of the existing sets, ``ge2e_stats`` included, did not change).
_ENCODER_FIELDS = ("encoder", "revision")


def _encoder_choice(config: FunctionalsConfig) -> EncoderChoice:
    """The encoder of ``encoder_stats`` (``ge2e_stats``: GE2E) and its layers."""
    from vocalis.features.pretrained import EncoderChoice

    source = "ge2e" if config.name == "ge2e_stats" else config.encoder
    revision = "" if config.name == "ge2e_stats" else config.revision
    return EncoderChoice(source, tuple(config.layers), weights=config.weights, revision=revision)


def functionals_key(config: FunctionalsConfig) -> dict:
    """What a cached functionals vector depends on: the config, and the model weights.

    For ``encoder_stats`` and ``ge2e_stats`` the encoder's weights identity
    replaces ``weights`` (a SHA-256 or repository@revision).

    Example:
        >>> functionals_key(FunctionalsConfig("lld_stats"))["name"]
        'lld_stats'
    """
    key = asdict(config)
    if config.name != "encoder_stats":
        for field in _ENCODER_FIELDS:
            del key[field]
    if config.name in ("encoder_stats", "ge2e_stats"):
        key["weights"] = _encoder_choice(config).identity()
    return key


def _opensmile(key: str) -> FunctionalsFn:
    feature_set, _ = OPENSMILE_SETS[key]

    def fn(wav: torch.Tensor, sample_rate: int, config: FunctionalsConfig) -> torch.Tensor:
        wav = _check(wav, sample_rate, config)
        smile = _smile(feature_set)
        row = smile.process_signal(wav.numpy().astype(np.float32), sample_rate).to_numpy()[0]
        return torch.from_numpy(row.astype(np.float32))

    fn.__doc__ = f"openSMILE {feature_set} functionals (needs the ``opensmile`` package)."
    fn.__name__ = key
    return fn


_SMILES: dict[str, object] = {}


def _smile(feature_set: str):
    smile = _SMILES.get(feature_set)
    if smile is None:
        try:
            import opensmile
        except ImportError:
            raise ConfigError(
                f"functionals '{feature_set}': the 'opensmile' package is not installed; "
                "pip install opensmile, or use name=lld_stats"
            ) from None
        smile = opensmile.Smile(
            feature_set=getattr(opensmile.FeatureSet, feature_set),
            feature_level=opensmile.FeatureLevel.Functionals,
        )
        _SMILES[feature_set] = smile
    return smile


for _key in OPENSMILE_SETS:
    FUNCTIONALS.register(_key, _opensmile(_key))


def compute_functionals(
    wav: torch.Tensor, sample_rate: int, config: FunctionalsConfig
) -> torch.Tensor:
    """The functionals named ``config.name`` of one utterance.

    Args:
        wav: ``(T,)`` mono waveform at ``config.sample_rate``.
        sample_rate: its rate in Hz.
        config: which functionals.

    Returns:
        ``(D,)`` float32 vector, ``D = functionals_dim(config)``.

    Shape:
        (T,) -> (D,); T samples, D functionals.

    Raises:
        ConfigError: unknown name, or ``opensmile`` missing for an openSMILE set.
        AudioError: wrong sample rate or empty audio.

    Example:
        >>> cfg = FunctionalsConfig("lld_stats", deltas=False)
        >>> compute_functionals(torch.randn(4000), 16000, cfg).shape
        torch.Size([440])
    """
    return FUNCTIONALS.get(config.name)(wav, sample_rate, config)


def functionals_dim(config: FunctionalsConfig) -> int:
    """Size ``D`` of the vector :func:`compute_functionals` returns.

    Example:
        >>> functionals_dim(FunctionalsConfig("egemaps_v02"))
        88
        >>> functionals_dim(FunctionalsConfig("lld_stats", lld="fbank"))
        1760
    """
    if config.name in OPENSMILE_SETS:
        return OPENSMILE_SETS[config.name][1]
    if config.name == "ge2e_stats":
        return 512 * len(config.layers)
    if config.name == "encoder_stats":
        from vocalis.features.pretrained import frozen_encoder

        return 2 * frozen_encoder(_encoder_choice(config)).hidden_size * len(config.layers)
    FUNCTIONALS.get(config.name)  # raises on unknown names
    from vocalis.features.base import feature_dim
    from vocalis.features.config import FeatureConfig

    f = feature_dim(FeatureConfig(name=config.lld, sample_rate=config.sample_rate))
    return len(STATISTICS) * f * (2 if config.deltas else 1)


def functionals_names(config: FunctionalsConfig) -> list[str]:
    """Column names for ``lld_stats`` (``<lld>[_delta]_<stat>_<index>``).

    Example:
        >>> functionals_names(FunctionalsConfig("lld_stats", deltas=False))[:2]
        ['mfcc_mean_0', 'mfcc_mean_1']
    """
    if config.name != "lld_stats":
        raise ConfigError(
            f"functionals_names: got name={config.name!r}, only 'lld_stats' is supported; "
            "openSMILE sets name their columns in opensmile.Smile.feature_names"
        )
    f = functionals_dim(
        FunctionalsConfig("lld_stats", lld=config.lld, deltas=False, sample_rate=config.sample_rate)
    ) // len(STATISTICS)
    prefixes = [config.lld] + ([f"{config.lld}_delta"] if config.deltas else [])
    return [f"{p}_{s}_{j}" for p in prefixes for s in STATISTICS for j in range(f)]
