"""An STFT made of one strided ``conv1d`` with a fixed DFT basis, for ONNX export.

The TorchScript-based ONNX exporter cannot export ``torch.stft(...,
return_complex=True)`` (ONNX has no complex tensors). :func:`dft_stft` computes
the same numbers as a real convolution whose kernels are the windowed cosines
and sines of the DFT, returning the ``view_as_real`` layout ``(..., 2)``.
:func:`export_friendly_stft` swaps it in for ``torch.stft`` while a graph is
traced, so the feature extractors stay the single source of truth for training,
serving and export.

Shape legend: B batch, T samples, K = n_fft // 2 + 1 frequency bins, N frames.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor


def dft_basis(n_fft: int, window: Tensor | None = None) -> Tensor:
    """Windowed one-sided DFT kernels: K cosines then K negated sines.

    Args:
        n_fft: FFT size.
        window: (n_fft,) window (already centred and zero-padded); None = rectangular.

    Shape:
        Returns (2K, 1, n_fft) float32.

    Example:
        >>> dft_basis(4).shape
        torch.Size([6, 1, 4])
    """
    k = torch.arange(n_fft // 2 + 1, dtype=torch.float64)[:, None]
    n = torch.arange(n_fft, dtype=torch.float64)[None, :]
    angle = 2.0 * math.pi * k * n / n_fft
    basis = torch.cat([torch.cos(angle), -torch.sin(angle)], dim=0)
    if window is not None:
        basis = basis * window.detach().to(torch.float64)[None, :]
    return basis.float()[:, None, :]


def dft_stft(
    input: Tensor,
    n_fft: int,
    hop_length: int | None = None,
    win_length: int | None = None,
    window: Tensor | None = None,
    center: bool = True,
    pad_mode: str = "reflect",
    normalized: bool = False,
    onesided: bool | None = None,
    return_complex: bool | None = None,
) -> Tensor:
    """``torch.view_as_real(torch.stft(...))`` computed with a strided conv1d.

    Arguments mean what they mean for :func:`torch.stft` (one-sided only).

    Shape:
        input: (T,) or (B, T) -> (K, N, 2) or (B, K, N, 2), K = n_fft // 2 + 1.

    Example:
        >>> x = torch.randn(2, 1000)
        >>> w = torch.hann_window(400)
        >>> ref = torch.view_as_real(torch.stft(x, 512, 160, 400, w, return_complex=True))
        >>> torch.allclose(dft_stft(x, 512, 160, 400, w), ref, atol=1e-3)
        True
    """
    if onesided is False:
        raise NotImplementedError("dft_stft computes one-sided spectra only")
    hop = hop_length if hop_length is not None else n_fft // 4
    win = win_length if win_length is not None else n_fft
    if window is None:
        window = torch.ones(win, dtype=input.dtype, device=input.device)
    if window.shape[0] < n_fft:  # torch.stft centres a shorter window in n_fft
        left = (n_fft - window.shape[0]) // 2
        window = F.pad(window, (left, n_fft - window.shape[0] - left))
    single = input.dim() == 1
    x = input[None] if single else input
    if center:
        pad = n_fft // 2
        x = F.pad(x[:, None, :], (pad, pad), mode=pad_mode)[:, 0, :]
    basis = dft_basis(n_fft, window).to(device=x.device, dtype=x.dtype)
    out = F.conv1d(x[:, None, :], basis, stride=hop)  # (B, 2K, N)
    bins = n_fft // 2 + 1
    spec = torch.stack([out[:, :bins], out[:, bins:]], dim=-1)
    if normalized:
        spec = spec / math.sqrt(n_fft)
    return spec[0] if single else spec


def _view_as_real_passthrough(original):
    def view_as_real(x: Tensor) -> Tensor:
        return original(x) if x.is_complex() else x

    return view_as_real


@contextlib.contextmanager
def export_friendly_stft() -> Iterator[None]:
    """Within the block, ``torch.stft`` is :func:`dft_stft` (a real ``(..., 2)`` tensor)
    and ``torch.view_as_real`` passes real tensors through.

    Feature code written as ``torch.view_as_real(torch.stft(..., return_complex=True))``
    then traces to plain convolutions that every ONNX runtime executes.
    """
    stft, view_as_real = torch.stft, torch.view_as_real
    torch.stft = dft_stft  # type: ignore[assignment]
    torch.view_as_real = _view_as_real_passthrough(view_as_real)  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.stft = stft  # type: ignore[assignment]
        torch.view_as_real = view_as_real  # type: ignore[assignment]
