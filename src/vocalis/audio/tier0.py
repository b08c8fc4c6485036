"""The tier-0 pipeline: what happens to a recording before features are computed.

Order: decode -> mono -> resample -> denoise -> VAD -> normalise. The same
:class:`Tier0Config` is used for training, evaluation and serving (it is saved
in checkpoints and is part of the feature-cache key), so a model always sees
audio prepared the same way. The config is defined in the torch-free
:mod:`vocalis.audio.config` and re-exported here.

Example:
    >>> import torch
    >>> cfg = Tier0Config(sample_rate=8000)
    >>> tier0_waveform(torch.ones(16000) * 0.1, 16000, cfg).shape
    torch.Size([8000])
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from vocalis.audio.config import Tier0Config
from vocalis.audio.denoise import denoise
from vocalis.audio.io import check_sample_range, decode, resample, sample_peak, to_mono
from vocalis.audio.level import normalize
from vocalis.audio.vad import NoSpeechWarning, apply_vad, collect_segments, speech_segments
from vocalis.errors import AudioError

__all__ = [
    "Tier0Config",
    "Tier0Step",
    "fix_length",
    "iter_tier0",
    "pick_channel",
    "run_tier0",
    "tier0_waveform",
]


@dataclass
class Tier0Step:
    """One step of :func:`iter_tier0`: its output and what it did.

    Attributes:
        name: ``mono``, ``resample``, ``denoise``, ``vad``, ``clip`` or ``normalize``.
        wav: the signal after the step, shape (T,).
        sample_rate: its rate in Hz.
        seconds: wall time the step took.
        info: step details (``segments`` and ``kept`` for VAD, ``method`` ...).
    """

    name: str
    wav: torch.Tensor
    sample_rate: int
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)


def _check_signal(wav: torch.Tensor, sample_rate: int, name: str) -> None:
    if wav.numel() == 0:
        raise AudioError(f"{name}: contains no audio samples; remove it from the manifest")
    peak = sample_peak(wav)
    if not math.isfinite(peak):
        raise AudioError(f"{name}: contains NaN or inf samples; re-export the recording")
    check_sample_range(peak, name)
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise AudioError(f"{name}: sample rate {sample_rate!r} is not an integer")


def pick_channel(wav: torch.Tensor, channel: int, source: str = "signal") -> torch.Tensor:
    """Channel ``channel`` of a (T, C) signal (a (T,) signal is channel 0).

    Shape:
        wav: (T, C) or (T,). Returns (T,).

    Raises:
        AudioError: the signal has no such channel.

    Example:
        >>> pick_channel(torch.tensor([[1.0, 0.0], [0.5, 0.2]]), 1).tolist()
        [0.0, 0.20000000298023224]
    """
    x = wav[:, None] if wav.dim() == 1 else wav
    if channel >= x.shape[1]:
        raise AudioError(
            f"{source}: has {x.shape[1]} channel(s), tier0.channel={channel} asks for channel "
            f"{channel} (0-based); pick one below {x.shape[1]} or mix with tier0.channel=null"
        )
    return x[:, channel].contiguous()


def fix_length(
    wav: torch.Tensor, samples: int, crop: str = "start", pad: str = "zeros"
) -> torch.Tensor:
    """Crop or pad a waveform to exactly ``samples`` (tier 0's ``clip_seconds``).

    Args:
        wav: the waveform.
        samples: the length wanted.
        crop: ``start`` keeps the first ``samples``, ``center`` the middle ones.
        pad: ``zeros`` appends silence, ``repeat`` repeats the signal.

    Shape:
        wav: (T,). Returns (samples,).

    Example:
        >>> x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
        >>> fix_length(x, 3).tolist(), fix_length(x, 3, crop="center").tolist()
        ([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
        >>> fix_length(x[:2], 5).tolist(), fix_length(x[:2], 5, pad="repeat").tolist()
        ([1.0, 2.0, 0.0, 0.0, 0.0], [1.0, 2.0, 1.0, 2.0, 1.0])
    """
    n = wav.shape[0]
    if n >= samples:
        start = (n - samples) // 2 if crop == "center" else 0
        return wav[start : start + samples].contiguous()
    if pad == "repeat":
        return wav.repeat(-(-samples // n))[:samples].contiguous()
    return torch.nn.functional.pad(wav, (0, samples - n))


def iter_tier0(
    wav: torch.Tensor | np.ndarray,
    sample_rate: int,
    config: Tier0Config | None = None,
    *,
    source: str | None = None,
) -> Iterator[Tier0Step]:
    """Run tier 0 step by step on a decoded signal, yielding each step's result.

    Used by :func:`tier0_waveform` and by ``vocalis tier0`` to report per-step
    statistics; the last step's ``wav`` is the tier-0 output.

    Args:
        wav: decoded samples.
        sample_rate: their rate in Hz.
        config: tier-0 settings.
        source: file name for error and warning messages.

    Shape:
        wav: (T,) or (T, C). Each step's ``wav`` is (T',).

    Raises:
        AudioError: empty, non-finite, out-of-range (:func:`~vocalis.audio.io.check_sample_range`)
            or too short signal, or a denoiser that cannot run.
    """
    config = config or Tier0Config()
    name = source or "signal"
    x = torch.as_tensor(wav, dtype=torch.float32)
    _check_signal(x, sample_rate, name)
    sr = int(sample_rate)

    t = time.perf_counter()
    x = to_mono(x) if config.channel is None else pick_channel(x, config.channel, name)
    yield Tier0Step("mono", x, sr, time.perf_counter() - t, {"channel": config.channel})

    t = time.perf_counter()
    x = resample(x, sr, config.sample_rate)
    info = {"from": sr, "to": config.sample_rate}
    sr = config.sample_rate
    yield Tier0Step("resample", x, sr, time.perf_counter() - t, info)

    min_len = round(config.min_duration_s * sr)
    if x.shape[0] < max(min_len, 1):
        raise AudioError(
            f"{name}: {x.shape[0] / sr:.3f} s of audio, shorter than min_duration_s="
            f"{config.min_duration_s}; drop it from the manifest or lower min_duration_s"
        )

    t = time.perf_counter()
    x = denoise(x, sr, config.denoise)
    yield Tier0Step("denoise", x, sr, time.perf_counter() - t, {"method": config.denoise})

    if config.vad:
        t = time.perf_counter()
        before = x.shape[0]
        segments = speech_segments(x, sr, config.vad_config())
        kept = sum(end - start for start, end in segments)
        info = {"segments": segments, "kept": kept / before, "fallback": None}
        if not segments:
            x = apply_vad(x, sr, config.vad_config(), source=name)  # warns, keeps all
            info["fallback"] = "no speech detected"
        elif kept < max(min_len, 1):
            warnings.warn(
                f"{name}: VAD kept {kept / sr:.3f} s, less than min_duration_s="
                f"{config.min_duration_s}; keeping all {before / sr:.2f} s",
                NoSpeechWarning,
                stacklevel=2,
            )
            info["fallback"] = "speech shorter than min_duration_s"
        else:
            x = collect_segments(x, segments)
        if info["fallback"]:
            info["kept"] = 1.0
        yield Tier0Step("vad", x, sr, time.perf_counter() - t, info)

    if config.clip_samples is not None:
        t = time.perf_counter()
        before = x.shape[0]
        x = fix_length(x, config.clip_samples, config.clip_crop, config.clip_pad)
        info = {"from": before, "to": x.shape[0], "crop": config.clip_crop, "pad": config.clip_pad}
        yield Tier0Step("clip", x, sr, time.perf_counter() - t, info)

    t = time.perf_counter()
    x = normalize(x, config.normalize, target_rms_db=config.target_rms_db)
    yield Tier0Step(
        "normalize", x.contiguous(), sr, time.perf_counter() - t, {"method": config.normalize}
    )


def tier0_waveform(
    wav: torch.Tensor | np.ndarray,
    sample_rate: int,
    config: Tier0Config | None = None,
    *,
    source: str | None = None,
) -> torch.Tensor:
    """Apply tier 0 to an already-decoded signal.

    Args:
        wav: samples (e.g. from :func:`vocalis.audio.io.decode`).
        sample_rate: their rate in Hz.
        config: tier-0 settings.
        source: file name for error and warning messages.

    Returns:
        Mono float32 waveform at ``config.sample_rate``.

    Shape:
        wav: (T,) or (T, C). Returns (T',).

    Raises:
        AudioError: see :func:`iter_tier0`.

    Example:
        >>> tier0_waveform(torch.randn(3200, 2), 16000).shape
        torch.Size([3200])
    """
    out = None
    for step in iter_tier0(wav, sample_rate, config, source=source):
        out = step.wav
    assert out is not None  # iter_tier0 always yields
    return out


def run_tier0(source: str | os.PathLike, config: Tier0Config | None = None) -> torch.Tensor:
    """Decode ``source`` (path or fsspec URL) and apply tier 0.

    Args:
        source: audio file.
        config: tier-0 settings.

    Returns:
        Mono float32 waveform at ``config.sample_rate``.

    Shape:
        Returns (T,).

    Raises:
        AudioError: unreadable, empty, non-finite or too short audio.

    Example:
        >>> import numpy as np, soundfile as sf, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
        >>> sf.write(path, 0.1 * np.ones((4410, 2), dtype="float32"), 44100)
        >>> run_tier0(path).shape
        torch.Size([1600])
    """
    samples, sr = decode(source)
    return tier0_waveform(samples, sr, config, source=str(source))
