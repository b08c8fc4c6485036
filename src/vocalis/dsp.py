"""Signal-processing building blocks shared by the features and the encoders' front ends.

A leaf module (imports only torch): windows, mel scales and filterbanks, the DCT,
the windowed DFT basis and centred framing into power spectra. Spectral features
(:mod:`vocalis.features.spectral`) and the GE2E front end
(:mod:`vocalis.encoders.ge2e`) both build on it, so each formula has one copy.

Conventions (librosa's, with ``center=True, pad_mode="constant"``): frame ``k``
is centred on sample ``k * hop_length`` and the signal is zero-padded by
``n_fft // 2`` on both sides, so ``T`` samples give ``1 + T // hop_length``
frames (:func:`centred_frame_lengths`).

Example:
    >>> x = torch.randn(2, 1600)
    >>> power_frames(x, make_window("hann", 400, 512), 512, 160).shape
    torch.Size([2, 11, 257])
    >>> centred_frame_lengths(torch.tensor([1600, 159]), 160).tolist()
    [11, 1]
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Analysis windows :func:`make_window` builds.
WINDOWS = ("hamming", "hann", "povey")


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
    """Inverse of :func:`hz_to_mel`.

    Example:
        >>> round(float(mel_to_hz(hz_to_mel(torch.tensor(440.0)))), 2)
        440.0
    """
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

    Args:
        sample_rate: rate in Hz.
        n_fft: FFT size.
        n_mels: number of filters.
        f_min: lowest band edge in Hz.
        f_max: highest band edge in Hz.
        scale: ``htk`` or ``slaney`` mel scale.
        norm: ``none`` (triangles peak at 1) or ``slaney`` (unit area).

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


def make_window(kind: str, win_length: int, n_fft: int) -> torch.Tensor:
    """A periodic analysis window of ``win_length`` samples, centred in ``n_fft`` (zeros outside).

    Args:
        kind: ``hamming``, ``hann`` or ``povey`` (Kaldi's ``hann ** 0.85``, symmetric).
        win_length: window length in samples (at most ``n_fft``).
        n_fft: FFT size the window is padded to.

    Returns:
        float32 ``(n_fft,)``.

    Example:
        >>> w = make_window("hann", 4, 8)
        >>> w.tolist()
        [0.0, 0.0, 0.0, 0.5, 1.0, 0.5, 0.0, 0.0]
    """
    if kind == "hamming":
        win = torch.hamming_window(win_length, periodic=True, dtype=torch.float64)
    elif kind == "hann":
        win = torch.hann_window(win_length, periodic=True, dtype=torch.float64)
    elif kind == "povey":
        win = torch.hann_window(win_length, periodic=False, dtype=torch.float64) ** 0.85
    else:
        raise ValueError(f"make_window: got {kind!r}, expected one of {', '.join(WINDOWS)}")
    left = (n_fft - win_length) // 2
    return F.pad(win, (left, n_fft - win_length - left)).float()


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


def centred_frame_lengths(lengths: torch.Tensor | int, hop_length: int) -> torch.Tensor | int:
    """Frames of centred, zero-padded framing: ``1 + lengths // hop_length``.

    Args:
        lengths: samples, an ``int`` or an integer tensor.
        hop_length: frame shift in samples.

    Returns:
        An ``int`` for an ``int``, else int64 frames of the same shape.

    Shape:
        (B,) integer samples -> (B,) int64 frames.

    Example:
        >>> centred_frame_lengths(torch.tensor([0, 160, 16000]), 160)
        tensor([  1,   2, 101])
        >>> centred_frame_lengths(159, 160)
        1
    """
    if isinstance(lengths, torch.Tensor):
        return 1 + torch.div(lengths.long(), hop_length, rounding_mode="floor")
    return 1 + int(lengths) // hop_length


def power_frames(
    wav: torch.Tensor,
    window: torch.Tensor,
    n_fft: int,
    hop_length: int,
    *,
    dft_conv: bool = False,
) -> torch.Tensor:
    """``|STFT|^2`` frame-major, centred frames with zero padding.

    Frame-major is the STFT's memory order: squaring the contiguous real view
    and adding its two halves, then a mel matmul, run on contiguous rows
    (several times faster on CPU than ``abs() ** 2`` or a reduction over the
    real/imaginary axis).

    With ``dft_conv=True`` the same numbers (to float rounding) come from one
    strided ``conv1d`` whose kernels are the windowed DFT cosines and sines: no
    complex tensors and no ``unfold``, so the graph exports to ONNX. It is the
    path :mod:`vocalis.inference.export` traces; training and serving use the FFT.

    Args:
        wav: ``(B, T)`` zero-padded samples.
        window: ``(n_fft,)`` window (see :func:`make_window`).
        n_fft: FFT size.
        hop_length: frame shift in samples.
        dft_conv: use the DFT convolution instead of the FFT.

    Shape:
        wav (B, T) -> (B, 1 + T // hop_length, n_fft // 2 + 1).

    Example:
        >>> x, w = torch.randn(2, 1600), make_window("hamming", 400, 512)
        >>> ref = power_frames(x, w, 512, 160)
        >>> conv = power_frames(x, w, 512, 160, dft_conv=True)
        >>> bool(torch.allclose(conv, ref, rtol=1e-3, atol=1e-3))
        True
    """
    pad = n_fft // 2
    if dft_conv:
        bins = n_fft // 2 + 1
        out = F.conv1d(
            F.pad(wav, (pad, pad))[:, None, :], dft_basis(n_fft, window), stride=hop_length
        )  # (B, 2K, N)
        return (out[:, :bins].square() + out[:, bins:].square()).transpose(1, 2)
    frames = F.pad(wav, (pad, pad)).unfold(-1, n_fft, hop_length)
    spec = torch.fft.rfft(frames * window)  # = torch.stft(center=False), frame-major
    squares = torch.view_as_real(spec).square_()  # in place: no new buffer
    return squares[..., 0] + squares[..., 1]
