"""Batched YIN pitch (F0) and voicing in pure torch, on the 10 ms feature grid.

Algorithm (YIN, de Cheveigné & Kawahara 2002, as ``librosa.yin``): for each
frame of ``pitch_frame_length`` samples centred on ``k * hop_length`` (zero
padding, so frames line up with :mod:`vocalis.features.spectral`), the
difference function ``d(tau)`` (mean squared difference between the frame and
its copy shifted by ``tau``, from one FFT autocorrelation and running energies)
is turned into the cumulative mean normalised difference ``d'(tau)``, and
the period is the first local minimum of ``d'`` below ``pitch_threshold`` in
``[sr / pitch_fmax, sr / pitch_fmin]`` (else the global minimum), refined by
parabolic interpolation. A frame is **voiced** when that minimum is below
``voicing_threshold``, the energies of the two compared windows are within a
factor 3.3 (no onset or offset inside the frame), and the frame is no more
than ``silence_db`` below the loudest frame of its utterance. A 3-frame median
over voiced neighbours removes isolated octave jumps.

Outputs:

* :func:`estimate_pitch`: raw ``f0`` in Hz (0 on unvoiced frames) and ``voiced``.
* ``pitch`` extractor (2 features): ``[log F0, voicing]`` where log F0 (natural
  log of Hz) is linearly **interpolated** across unvoiced frames (held constant
  before the first and after the last voiced frame; an utterance without a
  voiced frame gets ``log(sqrt(pitch_fmin * pitch_fmax))``), and voicing is 1.0
  on voiced frames, 0.0 otherwise.
* ``pitch_only`` (1 feature) and the pitch part of ``mfbe_pitch`` / ``mfcc_pitch``:
  the interpolated log F0 alone.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from vocalis import dsp
from vocalis.features.base import FEATURES, FeatureExtractor
from vocalis.features.config import FeatureConfig


def _fast_size(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (FFT sizes pocketfft and cuFFT handle fastest)."""
    best = 1 << math.ceil(math.log2(n))
    p3 = 1
    while p3 < best:
        p35 = p3
        while p35 < best:
            size = p35
            while size < n:
                size *= 2
            best = min(best, size)
            p35 *= 5
        p3 *= 3
    return best


def cmnd(
    frames: torch.Tensor, tau_max: int, energy_csum: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cumulative mean normalised difference of YIN, for lags ``0..tau_max + 1``.

    The difference function uses the whole frame with a window that shrinks
    with the lag, ``d(tau) = mean_{j < L - tau} (x_j - x_{j + tau})^2`` (per-sample
    mean so that lags compare fairly), computed from one autocorrelation
    (``irfft(|rfft(x)|^2)``) and running energies.

    Also returns the energy balance ``min(E_0, E_tau) / max(E_0, E_tau)`` of the
    two compared windows: near 1 for a stationary periodic signal, near 0 at an
    onset or offset (where ``d'`` dips spuriously).

    Args:
        frames: analysis frames.
        tau_max: largest lag.
        energy_csum: optional float64 ``(..., L + 1)`` running sums of ``frames ** 2``
            (any constant offset per frame is fine), e.g. frames of the signal's
            cumulative energy; computed from ``frames`` when absent.

    Shape:
        frames (..., L) -> both (..., tau_max + 2); needs ``L > tau_max + 1``.
    """
    length = frames.shape[-1]
    n = _fast_size(length + tau_max + 2)
    spec = torch.view_as_real(torch.fft.rfft(frames, n))
    re, im = spec[..., 0], spec[..., 1]
    power = torch.addcmul(re * re, im, im)
    acf = torch.fft.irfft(power, n)[..., : tau_max + 2]
    csum = energy_csum
    if csum is None:
        csum = F.pad(torch.cumsum(frames.double() ** 2, -1), (1, 0))
    lag = torch.arange(tau_max + 2, device=frames.device)
    energy0 = (csum[..., length - lag] - csum[..., :1]).to(frames.dtype)
    energy_tau = (csum[..., length : length + 1] - csum[..., : tau_max + 2]).to(frames.dtype)
    count = (length - lag).to(frames.dtype)
    diff = torch.clamp(energy0 + energy_tau - 2 * acf, min=0.0) / count
    running = torch.cumsum(diff[..., 1:], -1)
    norm = diff[..., 1:] * lag[1:].to(frames.dtype) / torch.clamp(running, min=1e-12)
    out = torch.cat([torch.ones_like(diff[..., :1]), norm], -1)
    # silent frames (all-zero running sum) count as aperiodic
    out = torch.where(running[..., -1:] > 1e-12, out, torch.ones_like(out))
    lo = torch.minimum(energy0, energy_tau)
    hi = torch.maximum(energy0, energy_tau).clamp(min=1e-20)
    return out, lo / hi


def _median3(f0: torch.Tensor, voiced: torch.Tensor) -> torch.Tensor:
    """Median of each voiced frame with its voiced neighbours (3-frame window)."""
    nan = torch.full_like(f0[..., :1], float("nan"))
    vals = torch.where(voiced, f0, torch.full_like(f0, float("nan")))
    padded = torch.cat([nan, vals, nan], -1)
    win = padded.unfold(-1, 3, 1)
    med = torch.nanmedian(win, dim=-1).values
    return torch.where(voiced, med, torch.zeros_like(f0))


def estimate_pitch(
    wav: torch.Tensor, config: FeatureConfig, lengths: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """F0 in Hz and voicing per frame.

    Args:
        wav: ``(T,)`` or zero-padded ``(B, T)`` waveform at ``config.sample_rate``.
        config: uses ``pitch_*``, ``voicing_threshold``, ``silence_db``, ``hop_length``.
        lengths: optional ``(B,)`` valid samples; frames past ``1 + lengths // hop_length``
            are unvoiced, so each item matches its unpadded result exactly.

    Returns:
        ``(f0, voiced)``: float F0 in Hz (0.0 where unvoiced) and a bool mask, each
        ``(N,)`` or ``(B, N)`` with ``N = 1 + T // hop_length`` (centred frames).

    Example:
        >>> t = torch.arange(16000) / 16000
        >>> f0, voiced = estimate_pitch(torch.sin(2 * math.pi * 200 * t), FeatureConfig())
        >>> bool(voiced[5:-5].all()), round(float(f0[50]))
        (True, 200)
    """
    single = wav.dim() == 1
    batch = wav.unsqueeze(0) if single else wav
    sr = config.sample_rate
    tau_min = max(2, math.floor(sr / config.pitch_fmax))
    tau_max = math.ceil(sr / config.pitch_fmin)
    length, hop = config.pitch_frame_length, config.hop_length
    n_frames = dsp.centred_frame_lengths(batch.shape[-1], hop)
    padded = F.pad(batch, (length // 2, length - length // 2))
    frames = padded.unfold(-1, length, hop)[:, :n_frames]
    energy = F.pad(torch.cumsum(padded.double() ** 2, -1), (1, 0))
    d, balance = cmnd(frames, tau_max, energy.unfold(-1, length + 1, hop)[:, :n_frames])
    search = d[..., tau_min : tau_max + 1]
    prev = d[..., tau_min - 1 : tau_max]
    nxt = d[..., tau_min + 1 : tau_max + 2]
    trough = (search <= prev) & (search < nxt)
    cand = trough & (search < config.pitch_threshold)
    has = cand.any(-1)
    first = cand.int().argmax(-1)
    best = torch.where(has, first, search.argmin(-1))
    tau = best + tau_min
    val = torch.gather(d, -1, tau[..., None])[..., 0]
    left = torch.gather(d, -1, (tau - 1)[..., None])[..., 0]
    right = torch.gather(d, -1, (tau + 1)[..., None])[..., 0]
    curv = left - 2 * val + right
    vertex = 0.5 * (left - right) / curv.clamp(min=1e-12)
    shift = torch.where(curv > 0, vertex, torch.zeros_like(val))
    period = tau.to(d.dtype) + shift.clamp(-1.0, 1.0)
    f0 = sr / period

    framed_energy = energy.unfold(-1, length + 1, hop)[:, :n_frames]
    power = ((framed_energy[..., -1] - framed_energy[..., 0]) / length).to(frames.dtype)
    loud = power.amax(-1, keepdim=True)
    floor = loud * 10.0 ** (-config.silence_db / 10.0)
    audible = (power > floor) & (power > 1e-10)
    steady = torch.gather(balance, -1, tau[..., None])[..., 0] > 0.3
    voiced = (val < config.voicing_threshold) & audible & steady
    voiced &= (f0 >= config.pitch_fmin * 0.97) & (f0 <= config.pitch_fmax * 1.03)
    if lengths is not None:
        n = dsp.centred_frame_lengths(lengths.to(voiced.device), hop)
        frame = torch.arange(voiced.shape[-1], device=voiced.device)
        voiced &= frame[None, :] < n.reshape(-1, 1)
    f0 = _median3(f0, voiced)
    if single:
        return f0[0], voiced[0]
    return f0, voiced


def interpolate_log_f0(f0: torch.Tensor, voiced: torch.Tensor, fallback_hz: float) -> torch.Tensor:
    """Natural-log F0 with unvoiced frames linearly interpolated between voiced ones.

    Before the first / after the last voiced frame the nearest voiced value is
    held; an item with no voiced frame is filled with ``log(fallback_hz)``.

    Shape:
        f0, voiced (B, N) -> (B, N).

    Example:
        >>> f0 = torch.tensor([[0.0, 100.0, 0.0, 400.0, 0.0]])
        >>> interpolate_log_f0(f0, f0 > 0, 200.0).exp().round()
        tensor([[100., 100., 200., 400., 400.]])
    """
    n = f0.shape[-1]
    idx = torch.arange(n, device=f0.device).expand_as(f0)
    logf = torch.log(torch.where(voiced, f0, torch.ones_like(f0)))
    prev_i = torch.cummax(torch.where(voiced, idx, torch.full_like(idx, -1)), -1).values
    backwards = torch.flip(torch.where(voiced, idx, torch.full_like(idx, n)), [-1])
    next_i = torch.flip(torch.cummin(backwards, -1).values, [-1])
    has_prev, has_next = prev_i >= 0, next_i < n
    p = torch.gather(logf, -1, prev_i.clamp(min=0))
    q = torch.gather(logf, -1, next_i.clamp(max=n - 1))
    span = (next_i - prev_i).clamp(min=1).to(f0.dtype)
    w = (idx - prev_i).to(f0.dtype) / span
    both = p + w * (q - p)
    out = torch.where(has_prev & has_next, both, torch.where(has_prev, p, q))
    none = ~(has_prev | has_next)
    return torch.where(none, torch.full_like(out, math.log(fallback_hz)), out)


class _PitchBase(FeatureExtractor):
    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Centred frames, as :func:`estimate_pitch` frames: ``1 + lengths // hop_length``.

        Shape:
            (B,) samples -> (B,) int64 frames.
        """
        return dsp.centred_frame_lengths(lengths, self.config.hop_length)

    def log_f0_and_voicing(
        self, wav: torch.Tensor, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        f0, voiced = estimate_pitch(wav, self.config, lengths)
        fallback = math.sqrt(self.config.pitch_fmin * self.config.pitch_fmax)
        return interpolate_log_f0(f0, voiced, fallback), voiced.to(wav.dtype)


@FEATURES.register("pitch")
class Pitch(_PitchBase):
    """``[log F0 (interpolated), voicing (0/1)]`` per frame.

    Example:
        >>> p = Pitch(FeatureConfig(name="pitch"))
        >>> p(torch.randn(2, 3200)).shape, p.feature_dim
        (torch.Size([2, 2, 21]), 2)
    """

    feature_dim = 2

    def compute(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Log-F0 and voicing of ``wav`` (B, T): (B, 2, N)."""
        logf, voicing = self.log_f0_and_voicing(wav, lengths)
        return torch.stack([logf, voicing], 1)


@FEATURES.register("pitch_only")
class PitchOnly(_PitchBase):
    """Interpolated log F0 alone (1 feature).

    Example:
        >>> PitchOnly(FeatureConfig(name="pitch_only"))(torch.randn(800)).shape
        torch.Size([1, 6])
    """

    feature_dim = 1

    def compute(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Log-F0 of ``wav`` (B, T): (B, 1, N)."""
        return self.log_f0_and_voicing(wav, lengths)[0][:, None, :]
