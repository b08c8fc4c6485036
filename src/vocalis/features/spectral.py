"""Spectral features in pure torch: log-mel filterbank energies and MFCC.

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

The window, mel filters, DCT and power spectrum come from :mod:`vocalis.dsp`. The
matrices are buffers: ``.to(device)`` moves them, and CPU and GPU compute the same
float32 numbers up to FFT rounding.
"""

from __future__ import annotations

import torch

from vocalis import dsp
from vocalis.features.base import FEATURES, FeatureExtractor
from vocalis.features.config import FeatureConfig


class _MelBase(FeatureExtractor):
    def __init__(self, config: FeatureConfig, n_mels: int) -> None:
        super().__init__(config)
        window = dsp.make_window(config.window, config.win_length, config.n_fft)
        self.register_buffer("window", window, persistent=False)
        fb = dsp.mel_filterbank(
            config.sample_rate,
            config.n_fft,
            n_mels,
            config.f_min,
            config.f_max,
            config.mel_scale,
            config.mel_norm,
        )
        self.register_buffer("mel_fb_t", fb.T.contiguous(), persistent=False)  # (K, n_mels)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Centred frames, ``1 + lengths // hop_length`` (:mod:`vocalis.dsp`).

        Shape:
            (B,) samples -> (B,) int64 frames.
        """
        return dsp.centred_frame_lengths(lengths, self.config.hop_length)

    def mel_power(self, wav: torch.Tensor) -> torch.Tensor:
        """Mel power, frame-major. Shape: (B, T) -> (B, N, n_mels)."""
        power = dsp.power_frames(
            wav,
            self.window,
            self.config.n_fft,
            self.config.hop_length,
            dft_conv=self.export_friendly,
        )
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
        """Log mel energies of ``wav`` (B, T): (B, n_mels, N)."""
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
        dct_db = (10.0 * dsp.dct_matrix(config.n_mfcc, config.n_mels_mfcc)).T.contiguous()
        self.register_buffer("dct_db", dct_db, persistent=False)
        self.feature_dim = config.n_mfcc

    def compute(self, wav: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """MFCCs of ``wav`` (B, T): (B, n_mfcc, N)."""
        log10 = self.mel_power(wav).clamp_(min=self.config.log_floor).log10_()
        return torch.matmul(log10, self.dct_db).transpose(1, 2).contiguous()
