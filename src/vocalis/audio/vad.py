"""Voice activity detection with Silero VAD (the model bundled in ``silero_vad``).

The model runs offline on CPU (no torchaudio needed). It is loaded lazily, once
per process, and calls are serialised by a lock because the model keeps a
recurrent state between frames. Signals at rates other than 8 or 16 kHz are
resampled to 16 kHz for detection and the segments are mapped back to the
input's sample indices.
"""

from __future__ import annotations

import math
import threading
import warnings
from typing import Any

import torch

from vocalis.audio.config import VADConfig
from vocalis.errors import ConfigError

_LOCK = threading.Lock()
_MODEL: Any = None


class NoSpeechWarning(UserWarning):
    """VAD found no speech; the signal was kept whole."""


def _model() -> Any:
    """The Silero VAD model, loaded on first use (thread-safe)."""
    global _MODEL
    if _MODEL is None:
        with _LOCK:
            if _MODEL is None:
                threads = torch.get_num_threads()
                try:
                    import silero_vad  # its import sets torch's thread count to 1
                finally:
                    torch.set_num_threads(threads)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit, importlib
                    try:
                        _MODEL = silero_vad.load_silero_vad()
                    except Exception:  # TorchScript unavailable: the bundled ONNX model
                        _MODEL = silero_vad.load_silero_vad(onnx=True)
    return _MODEL


def speech_segments(
    wav: torch.Tensor, sample_rate: int, config: VADConfig | None = None
) -> list[tuple[int, int]]:
    """Speech regions found by Silero VAD.

    Args:
        wav: mono signal (any level; Silero is trained on varied loudness).
        sample_rate: its rate in Hz (any; 8 and 16 kHz are used directly).
        config: detection settings.

    Returns:
        Sorted, non-overlapping ``(start, end)`` sample indices into ``wav``, end
        exclusive; an empty list when there is no speech.

    Shape:
        wav: (T,).

    Example:
        >>> speech_segments(torch.zeros(16000), 16000)
        []
    """
    from silero_vad import get_speech_timestamps

    from vocalis.audio.io import resample

    config = config or VADConfig()
    if wav.dim() != 1:
        raise ConfigError(f"speech_segments: expected a (T,) signal, got {tuple(wav.shape)}")
    length = wav.shape[0]
    rate = sample_rate if sample_rate in (8000, 16000) else 16000
    x = resample(wav.detach().float().cpu(), sample_rate, rate)
    if x.shape[0] < 512:  # shorter than one Silero frame
        return []
    model = _model()
    with _LOCK, torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stamps = get_speech_timestamps(
            x,
            model,
            threshold=config.threshold,
            neg_threshold=config.neg_threshold,
            sampling_rate=rate,
            min_speech_duration_ms=config.min_speech_ms,
            min_silence_duration_ms=config.min_silence_ms,
            speech_pad_ms=config.speech_pad_ms,
            max_speech_duration_s=config.max_speech_s or math.inf,
        )
    segments = []
    for stamp in stamps:
        start = min(length, (int(stamp["start"]) * sample_rate + rate // 2) // rate)
        end = min(length, (int(stamp["end"]) * sample_rate + rate // 2) // rate)
        if end > start:
            segments.append((start, end))
    return segments


def collect_segments(wav: torch.Tensor, segments: list[tuple[int, int]]) -> torch.Tensor:
    """Concatenate the given ``(start, end)`` regions of ``wav``.

    Shape:
        wav: (T,). Returns (sum of end - start,).

    Example:
        >>> collect_segments(torch.arange(10.0), [(1, 3), (7, 9)]).tolist()
        [1.0, 2.0, 7.0, 8.0]
    """
    if not segments:
        return wav[:0]
    return torch.cat([wav[start:end] for start, end in segments])


def apply_vad(
    wav: torch.Tensor,
    sample_rate: int,
    config: VADConfig | None = None,
    *,
    source: str | None = None,
) -> torch.Tensor:
    """Keep only the speech regions of ``wav``.

    When no speech is found the whole signal is returned and a
    :class:`NoSpeechWarning` names ``source``; the result is never empty.

    Args:
        wav: mono signal.
        sample_rate: its rate in Hz.
        config: detection settings.
        source: the file name, for the warning.

    Shape:
        wav: (T,). Returns (T',), 0 < T' <= T.

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings(record=True):
        ...     apply_vad(torch.zeros(8000), 16000).shape
        torch.Size([8000])
    """
    segments = speech_segments(wav, sample_rate, config)
    if not segments:
        threshold = (config or VADConfig()).threshold
        warnings.warn(
            f"{source or 'signal'}: no speech detected (vad threshold {threshold}); keeping "
            f"all {wav.shape[0] / sample_rate:.2f} s; lower vad_threshold or check the recording",
            NoSpeechWarning,
            stacklevel=2,
        )
        return wav
    return collect_segments(wav, segments)
