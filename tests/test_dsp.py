"""The shared DSP leaf: windows, DCT and power spectra against scipy and torch.stft."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vocalis import dsp


@pytest.mark.parametrize("kind", ["hann", "hamming"])
def test_windows_are_periodic_and_centred(kind: str):
    signal = pytest.importorskip("scipy.signal")
    w = dsp.make_window(kind, 400, 512)
    assert w.shape == (512,) and w[:56].abs().max() == 0 and w[456:].abs().max() == 0
    np.testing.assert_allclose(w[56:456].numpy(), signal.get_window(kind, 400), atol=1e-6)
    with pytest.raises(ValueError, match="expected one of hamming, hann, povey"):
        dsp.make_window("kaiser", 400, 512)


def test_dct_matches_scipy():
    fft = pytest.importorskip("scipy.fft")
    x = np.random.default_rng(0).normal(size=(3, 40))
    ours = torch.from_numpy(x).float() @ dsp.dct_matrix(13, 40).T
    np.testing.assert_allclose(ours.numpy(), fft.dct(x, type=2, norm="ortho")[:, :13], atol=1e-5)


@pytest.mark.parametrize("dft_conv", [False, True])
def test_power_frames_equal_torch_stft_and_the_frame_rule(dft_conv: bool):
    x = torch.randn(2, 3217, dtype=torch.float64)
    w = dsp.make_window("hamming", 400, 512).double()
    ours = dsp.power_frames(x, w, 512, 160, dft_conv=dft_conv)
    ref = torch.stft(x, 512, 160, window=w, center=True, pad_mode="constant", return_complex=True)
    torch.testing.assert_close(ours, ref.abs().square().transpose(1, 2), rtol=1e-6, atol=1e-6)
    for t in (0, 1, 159, 160, 161, 3217):
        n = dsp.power_frames(torch.zeros(1, max(t, 1)), w.float(), 512, 160).shape[1]
        assert dsp.centred_frame_lengths(torch.tensor([max(t, 1)]), 160).item() == n
