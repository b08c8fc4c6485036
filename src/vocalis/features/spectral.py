"""Spectral features in pure torch: power spectrogram, log-mel filterbank energies, MFCC.

Conventions (same as ``librosa.feature.melspectrogram`` / ``mfcc`` called with
``center=True, pad_mode="constant", power=2.0, htk=True, norm=None``):

* periodic window of ``win_length`` samples centred in ``n_fft``;
* triangular mel filters on the HTK mel scale (``2595 log10(1 + f / 700)``)
  peaking at 1 (``mel_norm="none"``, Kaldi/HTK style); ``mel_scale="slaney"`` and
  ``mel_norm="slaney"`` give librosa's defaults instead;
* ``fbank`` / ``mfbe``: natural log of the mel power, ``log(max(P, log_floor))``;
* ``mfcc``: orthonormal DCT-II of the mel power in dB, ``10 log10(max(P, log_floor))``,
  first ``n_mfcc`` coefficients (librosa's scaling, without its utterance-dependent
  ``top_db`` clipping). With the defaults this is Kaldi's "hires" MFCC: 40 cepstra
  from 40 bands.

The mel matrix, DCT matrix and window are buffers: ``.to(device)`` moves them, and
CPU and GPU compute the same float32 numbers up to FFT rounding.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vocalis.features.base import FEATURES, FeatureExtractor
from vocalis.features.config import FeatureConfig


def hz_to_mel(freq: torch.Tensor, scale: str = "htk") -> torch.Tensor:
    """Hertz to mel on the HTK or Slaney scale.

    Example:
        >>> round(float(hz_to_mel(torch.tensor(1000.0, dtype=torch.float64))), 3)
        999.986
    """
    if scale == "htk":
        return 2595.0 * torch.log10(1.0 + freq / 700.0)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    linear = freq / f_sp
    log = min_log_mel + torch.log(torch.clamp(freq, min=min_log_hz) / min_log_hz) / logstep
    return torch.where(freq >= min_log_hz, log, linear)


def mel_to_hz(mel: torch.Tensor, scale: str = "htk") -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    f_sp = 200.0 / 3
    min_log_hz, min_log_mel, logstep = 1000.0, 1000.0 / f_sp, math.log(6.4) / 27.0
    linear = mel * f_sp
    log = min_log_hz * torch.exp(logstep * (mel - min_log_mel))
    return torch.where(mel >= min_log_mel, log, linear)


def mel_filterbank(
    sample_rate: int,
    n_fft: int,
    n_mels: int,
    f_min: float,
    f_max: float,
    scale: str = "htk",
    norm: str = "none",
) -> torch.Tensor:
    """Triangular mel filters, as ``librosa.filters.mel`` builds them.

    Returns:
        float32 tensor of shape ``(n_mels, n_fft // 2 + 1)``.

    Example:
        >>> fb = mel_filterbank(16000, 512, 40, 20.0, 8000.0)
        >>> fb.shape, float(fb.max()) <= 1.0
        (torch.Size([40, 257]), True)
    """
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    lo, hi = (
        hz_to_mel(torch.tensor(float(f_min), dtype=torch.float64), scale),
        hz_to_mel(torch.tensor(float(f_max), dtype=torch.float64), scale),
    )
    edges = mel_to_hz(torch.linspace(float(lo), float(hi), n_mels + 2, dtype=torch.float64), scale)
    width = torch.diff(edges)
    ramps = edges[:, None] - freqs[None, :]
    lower = -ramps[:-2] / width[:-1, None]
    upper = ramps[2:] / width[1:, None]
    weights = torch.clamp(torch.minimum(lower, upper), min=0.0)
    if norm == "slaney":
        weights = weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.float()


def dct_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix (``scipy.fft.dct(type=2, norm="ortho")``).

    Returns:
        ``(n_out, n_in)``; ``dct_matrix(n, n)`` is orthogonal.

    Example:
        >>> d = dct_matrix(4, 4)
        >>> torch.allclose(d @ d.T, torch.eye(4), atol=1e-6)
        True
    """
    n = torch.arange(n_in, dtype=torch.float64)
    k = torch.arange(n_out, dtype=torch.float64)[:, None]
    basis = torch.cos(math.pi * k * (2 * n + 1) / (2 * n_in)) * math.sqrt(2.0 / n_in)
    basis[0] *= 1 / math.sqrt(2.0)
    return basis.float()


def make_window(config: FeatureConfig) -> torch.Tensor:
    """The analysis window, ``win_length`` long, centred in ``n_fft`` (zeros outside)."""
    if config.window == "hamming":
        win = torch.hamming_window(config.win_length, periodic=True, dtype=torch.float64)
    elif config.window == "hann":
        win = torch.hann_window(config.win_length, periodic=True, dtype=torch.float64)
    else:  # povey
        win = torch.hann_window(config.win_length, periodic=False, dtype=torch.float64) ** 0.85
    left = (config.n_fft - config.win_length) // 2
    return F.pad(win, (left, config.n_fft - config.win_length - left)).float()


def dft_basis(n_fft: int, window: torch.Tensor) -> torch.Tensor:
    """Windowed one-sided DFT kernels: K cosines then K negated sines.

    Args:
        n_fft: FFT size.
        window: (n_fft,) window, already centred and zero-padded to ``n_fft``.

    Shape:
        Returns (2K, 1, n_fft) with K = n_fft // 2 + 1, in the window's dtype.

    Example:
        >>> dft_basis(4, torch.ones(4)).shape
        torch.Size([6, 1, 4])
    """
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
    n = torch.arange(n_fft, dtype=torch.float64)[None, :]
    angle = 2.0 * math.pi * k * n / n_fft
    basis = torch.cat([torch.cos(angle), -torch.sin(angle)], dim=0)
    basis = basis * window.detach().to(torch.float64)[None, :]
    return basis.to(window.dtype)[:, None, :]


def power_frames(
    wav: torch.Tensor, window: torch.Tensor, config: FeatureConfig, *, dft_conv: bool = False
) -> torch.Tensor:
    """``|STFT|^2`` frame-major, centred frames with zero padding.

    Frame-major is the STFT's memory order: squaring the contiguous real view
    and adding its two halves, then the mel matmul, run on contiguous rows
    (several times faster on CPU than ``abs() ** 2`` or a reduction over the
    real/imaginary axis).

    With ``dft_conv=True`` the same numbers (to float rounding) come from one
    strided ``conv1d`` whose kernels are the windowed DFT cosines and sines: no
    complex tensors and no ``unfold``, so the graph exports to ONNX. It is the
    path :mod:`vocalis.inference.export` traces; training and serving use the FFT.

    Shape:
        wav (B, T) -> (B, num_frames(T), n_fft // 2 + 1).

    Example:
        >>> cfg = FeatureConfig()
        >>> x, w = torch.randn(2, 1600), make_window(cfg)
        >>> ref = power_frames(x, w, cfg)
        >>> bool(torch.allclose(power_frames(x, w, cfg, dft_conv=True), ref, rtol=1e-3, atol=1e-3))
        True
    """
    pad = config.n_fft // 2
    if dft_conv:
        bins = config.n_fft // 2 + 1
        out = F.conv1d(
            F.pad(wav, (pad, pad))[:, None, :],
            dft_basis(config.n_fft, window),
            stride=config.hop_length,
        )  # (B, 2K, N)
        return (out[:, :bins].square() + out[:, bins:].square()).transpose(1, 2)
    frames = F.pad(wav, (pad, pad)).unfold(-1, config.n_fft, config.hop_length)
    spec = torch.fft.rfft(frames * window)  # = torch.stft(center=False), frame-major
    squares = torch.view_as_real(spec).square_()  # in place: no new buffer
    return squares[..., 0] + squares[..., 1]


def power_spectrogram(
    wav: torch.Tensor, window: torch.Tensor, config: FeatureConfig
) -> torch.Tensor:
    """``|STFT|^2`` with centred frames and zero padding.

    Shape:
        wav (B, T) -> (B, n_fft // 2 + 1, num_frames(T)).

    Example:
        >>> cfg = FeatureConfig()
        >>> power_spectrogram(torch.randn(2, 1600), make_window(cfg), cfg).shape
        torch.Size([2, 257, 11])
    """
    return power_frames(wav, window, config).transpose(1, 2)


class _MelBase(FeatureExtractor):
    def __init__(self, config: FeatureConfig, n_mels: int) -> None:
        super().__init__(config)
        self.register_buffer("window", make_window(config), persistent=False)
        fb = mel_filterbank(
            config.sample_rate,
            config.n_fft,
            n_mels,
            config.f_min,
            config.f_max,
            config.mel_scale,
            config.mel_norm,
        )
        self.register_buffer("mel_fb_t", fb.T.contiguous(), persistent=False)  # (K, n_mels)

    def mel_power(self, wav: torch.Tensor) -> torch.Tensor:
        """Mel power, frame-major. Shape: (B, T) -> (B, N, n_mels)."""
        power = power_frames(wav, self.window, self.config, dft_conv=self.export_friendly)
        return torch.matmul(power, self.mel_fb_t)


@FEATURES.register("fbank")
@FEATURES.register("mfbe")
@FEATURES.register("mfbe_only")
class Fbank(_MelBase):
    """Log mel filterbank energies (``n_fbank`` bands, natural log).

    Example:
        >>> fb = Fbank(FeatureConfig(name="fbank"))
        >>> fb(torch.randn(2, 16000)).shape, fb.feature_dim, fb.frame_shift
        (torch.Size([2, 80, 101]), 80, 0.01)
    """

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__(config, config.n_fbank)
        self.feature_dim = config.n_fbank

    def compute(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        logmel = self.mel_power(wav).clamp_(min=self.config.log_floor).log_()
        return logmel.transpose(1, 2).contiguous()


@FEATURES.register("mfcc")
@FEATURES.register("mfcc_only")
class MFCC(_MelBase):
    """MFCC: orthonormal DCT-II of the dB mel power (``n_mfcc`` from ``n_mels_mfcc`` bands).

    Example:
        >>> m = MFCC(FeatureConfig(name="mfcc"))
        >>> m(torch.randn(16000)).shape, m.feature_dim
        (torch.Size([40, 101]), 40)
    """

    def __init__(self, config: FeatureConfig) -> None:
        super().__init__(config, config.n_mels_mfcc)
        # 10 * log10 folded into the (transposed) DCT: one elementwise op fewer
        dct_db = (10.0 * dct_matrix(config.n_mfcc, config.n_mels_mfcc)).T.contiguous()
        self.register_buffer("dct_db", dct_db, persistent=False)
        self.feature_dim = config.n_mfcc

    def compute(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        log10 = self.mel_power(wav).clamp_(min=self.config.log_floor).log10_()
        return torch.matmul(log10, self.dct_db).transpose(1, 2).contiguous()
