"""Decoding and resampling (soundfile + soxr). PROVISIONAL: the audio helper owns and extends this."""

from __future__ import annotations

import os

import numpy as np
import torch

from vocalis.errors import AudioError

TARGET_SAMPLE_RATE = 16000


def load_audio(path: str | os.PathLike, sample_rate: int = TARGET_SAMPLE_RATE) -> torch.Tensor:
    """Decode ``path`` to a mono float32 waveform at ``sample_rate``.

    Returns:
        Tensor of shape (T,).
    """
    import soundfile as sf
    import soxr

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as err:
        raise AudioError(f"{path}: cannot decode audio ({err})") from None
    wav = data.mean(axis=1)
    if sr != sample_rate:
        wav = soxr.resample(wav, sr, sample_rate)
    return torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))
