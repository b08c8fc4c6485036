"""Decoding, mono down-mix and resampling: the first steps of tier 0.

Decoding uses ``soundfile`` (libsndfile), which recognises the container from
the file's *content*, not its name: AIFF or FLAC data behind a ``.wav`` name
decodes as what it is. WAV (8/16/24/32-bit integer, float, A-law, mu-law),
AIFF, FLAC, OGG/Vorbis, OGG/Opus and MP3 (libsndfile >= 1.1) are supported.
Paths may be local or fsspec URLs (``s3://...``, ``memory://...``). Resampling
uses ``soxr`` (the SoX resampler, very high quality by default).

Every failure raises :class:`~vocalis.errors.AudioError` with a one-line
message that starts with the file name.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from vocalis.audio.level import normalize as normalize_level
from vocalis.errors import AudioError, AudioTooLongError, ConfigError

TARGET_SAMPLE_RATE = 16000

Normalize = Literal["peak", "rms", "none"]


def _riff_shortfall(fh: io.BufferedIOBase | io.BytesIO) -> tuple[float, float] | None:
    """``(declared, present)`` seconds of a WAV whose data chunk is cut short, else None.

    libsndfile reads a truncated WAV silently (it returns the frames that are
    there), so the RIFF chunk list is walked here: the ``data`` chunk's declared
    size is compared with the bytes that follow it. A size of 0 or 0xFFFFFFFF
    (streamed WAVs that never patched their header) is not a truncation. The
    handle is left at offset 0.
    """
    import struct

    try:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        byte_rate = 0
        while True:
            chunk = fh.read(8)
            if len(chunk) < 8:
                return None
            cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if cid == b"fmt ":
                body = fh.read(size + (size & 1))
                if len(body) >= 12:
                    byte_rate = struct.unpack("<I", body[8:12])[0]
                continue
            if cid == b"data":
                start = fh.tell()
                end = fh.seek(0, io.SEEK_END)
                present = end - start
                if size in (0, 0xFFFFFFFF) or present >= size or byte_rate <= 0:
                    return None
                return size / byte_rate, present / byte_rate
            fh.seek(size + (size & 1), io.SEEK_CUR)
    finally:
        fh.seek(0)


def _refuse_truncated(source: io.BufferedIOBase | io.BytesIO, name: str) -> None:
    """Raise a one-line AudioError for a WAV whose data chunk is cut short."""
    short = _riff_shortfall(source)
    if short is not None:
        raise AudioError(
            f"{name}: truncated WAV: its data chunk declares {short[0]:.2f} s but the file "
            f"holds {short[1]:.2f} s; re-export it or remove it from the manifest"
        )


@contextlib.contextmanager
def _decode_errors(name: str) -> Iterator[None]:
    """Turn libsndfile's (and soundfile's) decoding errors into one-line AudioErrors."""
    import soundfile as sf

    try:
        yield
    except sf.LibsndfileError as err:
        reason = getattr(err, "error_string", "") or str(err)
        raise AudioError(
            f"{name}: cannot decode audio ({reason.strip().rstrip('.')}); expected "
            "WAV, FLAC, OGG, MP3, AIFF or another libsndfile format; convert it, e.g. "
            "`ffmpeg -i in.m4a -ar 16000 out.wav`"
        ) from None
    except (RuntimeError, TypeError, ValueError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise AudioError(f"{name}: cannot decode audio ({msg}); re-encode it as WAV") from None


def _decode_file(source: io.BufferedIOBase | io.BytesIO, name: str) -> tuple[np.ndarray, int]:
    import soundfile as sf

    _refuse_truncated(source, name)
    with _decode_errors(name):
        data, sample_rate = sf.read(source, dtype="float32", always_2d=True)
    return _check_decoded(data, int(sample_rate), name)


def _decode_bounded(
    source: io.BufferedIOBase | io.BytesIO, name: str, max_seconds: float, max_sample_rate: int
) -> tuple[np.ndarray, int]:
    """Decode at most ``max_seconds``, down-mixed to mono block by block.

    The duration the header declares is checked before any sample is decoded,
    and the decode stops one block past the limit whatever the header said, so
    neither a long file nor a lying header costs more than
    ``8 * max_seconds * sample_rate`` bytes.
    """
    import soundfile as sf

    _refuse_truncated(source, name)

    def too_long(seconds: float, exact: bool) -> AudioTooLongError:
        what = f"{seconds:.1f} s" if exact else f"more than {seconds:.1f} s"
        return AudioTooLongError(
            f"{name}: {what} of audio, longer than the limit of {max_seconds:g} s; "
            "trim it or use `vocalis predict --segments`",
            seconds,
            max_seconds,
        )

    with _decode_errors(name), sf.SoundFile(source) as fh:
        sr, frames = int(fh.samplerate), int(fh.frames)
        if sr <= 0 or sr > max_sample_rate:
            raise AudioError(
                f"{name}: sample rate {sr} Hz, outside 1..{max_sample_rate} Hz; "
                "resample it, e.g. `ffmpeg -i in.flac -ar 48000 out.flac`"
            )
        limit = int(max_seconds * sr)
        if frames > 0 and frames > limit:
            raise too_long(frames / sr, exact=True)
        blocks, total = [], 0
        for block in fh.blocks(blocksize=65536, dtype="float32", always_2d=True):
            mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
            blocks.append(mono.copy())
            total += mono.shape[0]
            if total > limit:
                raise too_long(limit / sr, exact=False)
    data = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return _check_decoded(data[:, None], sr, name)


#: The largest magnitude a sample may have: the full scale of 32-bit integer audio.
#: No format stores sound beyond it, and not far beyond it (about 1e19) the power of one
#: frame overflows float32, so a corrupt float file would turn a whole training run's
#: loss into NaN instead of being skipped.
MAX_ABS_SAMPLE = 2.0**31


def sample_peak(data: np.ndarray | torch.Tensor) -> float:
    """The largest magnitude of a non-empty signal, from one min / max pass.

    NaN when a sample is NaN and inf when one is infinite, so the one number serves
    both the finiteness check and :func:`check_sample_range` (no ``isfinite`` or
    ``abs`` copy of the signal).

    Example:
        >>> sample_peak(np.array([0.5, -2.0])), sample_peak(torch.tensor([1.0, -float("inf")]))
        (2.0, inf)
    """
    if isinstance(data, torch.Tensor):
        lo, hi = torch.aminmax(data)
    else:
        lo, hi = data.min(), data.max()
    return max(float(hi), -float(lo))


def check_sample_range(peak: float, name: str) -> None:
    """Refuse a signal whose largest magnitude ``peak`` is beyond :data:`MAX_ABS_SAMPLE`.

    Float files keep their values (headroom above 1.0, or integer-scaled samples such as
    +-32767, are fine); only values no audio format can hold are refused.

    Raises:
        AudioError: one line naming ``name`` and the peak.

    Example:
        >>> check_sample_range(32767.0, "a.wav")
        >>> check_sample_range(1e30, "a.wav")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        vocalis.errors.AudioError: a.wav: samples reach 1e+30, beyond the full scale of ...
    """
    if peak > MAX_ABS_SAMPLE:
        raise AudioError(
            f"{name}: samples reach {peak:.3g}, beyond the full scale of any audio format "
            "(2^31); the file is corrupt, re-export it from the source recording"
        )


def _check_decoded(data: np.ndarray, sample_rate: int, name: str) -> tuple[np.ndarray, int]:
    if data.shape[0] == 0 or data.shape[1] == 0:
        raise AudioError(
            f"{name}: contains no audio samples (0 frames); remove it from the manifest "
            "or re-record it"
        )
    if sample_rate <= 0:
        raise AudioError(f"{name}: invalid sample rate {sample_rate} in the header")
    peak = sample_peak(data)
    if not math.isfinite(peak):
        bad = int(data.size - np.count_nonzero(np.isfinite(data)))
        raise AudioError(
            f"{name}: {bad} of {data.size} samples are NaN or inf; the file is corrupt, "
            "re-export it from the source recording"
        )
    check_sample_range(peak, name)
    return np.ascontiguousarray(data, dtype=np.float32), sample_rate


def decode(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode an audio file to float32 samples at its native sample rate.

    Args:
        path: local path or fsspec URL (``s3://bucket/a.wav``, ``memory://a.wav``).

    Returns:
        ``(samples, sample_rate)``: samples in [-1, 1] for integer formats (float
        files keep their values), all channels kept.

    Shape:
        samples: (T, C), T frames, C channels (C = 1 for mono).

    Raises:
        AudioError: missing file, undecodable content, zero frames, NaN/inf samples.

    Example:
        >>> import numpy as np, soundfile as sf, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
        >>> sf.write(path, np.zeros((800, 2), dtype="float32"), 8000)
        >>> samples, sr = decode(path)
        >>> samples.shape, samples.dtype, sr
        ((800, 2), dtype('float32'), 8000)
    """
    from vocalis.io import is_url, read_bytes

    name = str(path)
    if is_url(path):
        try:
            data = read_bytes(path)
        except FileNotFoundError:
            raise AudioError(f"{name}: no such file; check the URL") from None
        except Exception as err:  # fsspec backends raise their own error types
            raise AudioError(f"{name}: cannot read ({type(err).__name__}: {err})") from None
        return decode_bytes(data, name)
    local = Path(name[len("file://") :] if name.startswith("file://") else path)
    if not local.exists():
        raise AudioError(f"{name}: no such file (working directory {os.getcwd()}); check the path")
    if local.is_dir():
        raise AudioError(f"{name}: is a directory, expected an audio file")
    if local.stat().st_size == 0:
        raise AudioError(f"{name}: empty file (0 bytes); re-export or remove it")
    try:
        with open(local, "rb") as fh:
            return _decode_file(fh, name)  # type: ignore[arg-type]
    except PermissionError:
        raise AudioError(f"{name}: permission denied; check the file's permissions") from None


def decode_bytes(
    data: bytes,
    name: str = "<bytes>",
    *,
    max_seconds: float | None = None,
    max_sample_rate: int = 192000,
) -> tuple[np.ndarray, int]:
    """Decode an in-memory audio file (an upload, an object-store blob).

    With ``max_seconds`` (the service), the duration is read from the header
    before decoding, the decode is bounded to ``max_seconds`` whatever the
    header says, and the channels are averaged block by block, so memory
    stays under ``8 * max_seconds * sample_rate`` bytes.

    Args:
        data: the file's bytes; the format is recognised from the content.
        name: shown in error messages (the upload's file name).
        max_seconds: longest accepted audio; None = no limit (all channels kept).
        max_sample_rate: highest accepted sample rate when ``max_seconds`` is set.

    Returns:
        ``(samples, sample_rate)`` as :func:`decode` (one channel with ``max_seconds``).

    Shape:
        samples: (T, C); (T, 1) with ``max_seconds``.

    Raises:
        AudioError: empty or undecodable data, zero frames, NaN/inf samples, a
            sample rate above ``max_sample_rate``.
        AudioTooLongError: longer than ``max_seconds``.

    Example:
        >>> import io, numpy as np, soundfile as sf
        >>> buf = io.BytesIO()
        >>> sf.write(buf, np.zeros(160, dtype="float32"), 16000, format="FLAC")
        >>> samples, sr = decode_bytes(buf.getvalue(), "a.flac")
        >>> samples.shape, sr
        ((160, 1), 16000)
    """
    if not data:
        raise AudioError(f"{name}: empty file (0 bytes); upload or record it again")
    if max_seconds is not None:
        return _decode_bounded(io.BytesIO(data), name, max_seconds, max_sample_rate)
    return _decode_file(io.BytesIO(data), name)


def to_mono(samples: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Average the channels of a (T, C) signal; a (T,) signal is returned as is.

    Shape:
        samples: (T, C) or (T,). Returns (T,) float32.

    Example:
        >>> import torch
        >>> to_mono(torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
        tensor([0.5000, 0.5000])
    """
    wav = torch.as_tensor(samples, dtype=torch.float32)
    if wav.dim() == 1:
        return wav
    if wav.dim() != 2:
        raise AudioError(f"expected a (T,) or (T, C) signal, got shape {tuple(wav.shape)}")
    return wav.mean(dim=1) if wav.shape[1] > 1 else wav[:, 0]


def resampled_length(length: int, orig_sr: int, new_sr: int) -> int:
    """Number of samples :func:`resample` returns: ``round(length * new_sr / orig_sr)``.

    Rounded half up, in integer arithmetic.

    Example:
        >>> resampled_length(44100, 44100, 16000), resampled_length(1000, 44100, 16000)
        (16000, 363)
    """
    return (length * new_sr + orig_sr // 2) // orig_sr


def resample(wav: torch.Tensor, orig_sr: int, new_sr: int, quality: str = "VHQ") -> torch.Tensor:
    """Resample with soxr (band-limited, linear phase).

    Args:
        wav: the signal.
        orig_sr: its sample rate in Hz.
        new_sr: the wanted sample rate in Hz.
        quality: soxr quality recipe, ``"VHQ"``, ``"HQ"``, ``"MQ"``, ``"LQ"`` or ``"QQ"``.

    Returns:
        The resampled signal, float32, exactly :func:`resampled_length` samples long;
        the input itself when the rates are equal.

    Shape:
        wav: (T,) or (T, C). Returns (T',) or (T', C), T' = round(T * new_sr / orig_sr).

    Example:
        >>> import torch
        >>> resample(torch.zeros(441), 44100, 16000).shape
        torch.Size([160])
    """
    for label, rate in (("orig_sr", orig_sr), ("new_sr", new_sr)):
        if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)) or rate <= 0:
            raise ConfigError(f"resample: {label}={rate!r}, expected a positive integer (Hz)")
    if orig_sr == new_sr:
        return wav
    import soxr

    x = wav.detach().cpu().numpy().astype(np.float32, copy=False)
    y = soxr.resample(x, int(orig_sr), int(new_sr), quality=quality)
    n = resampled_length(x.shape[0], int(orig_sr), int(new_sr))
    if y.shape[0] > n:
        y = y[:n]
    elif y.shape[0] < n:
        pad = [(0, n - y.shape[0])] + [(0, 0)] * (y.ndim - 1)
        y = np.pad(y, pad)
    return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)).to(wav.device)


def _finish(
    samples: np.ndarray,
    sr: int,
    sample_rate: int,
    normalize: Normalize,
    target_rms_db: float,
) -> torch.Tensor:
    wav = resample(to_mono(samples), sr, sample_rate)
    return normalize_level(wav, normalize, target_rms_db=target_rms_db)


def load_audio(
    path: str | os.PathLike,
    sample_rate: int = TARGET_SAMPLE_RATE,
    normalize: Normalize = "peak",
    *,
    target_rms_db: float = -20.0,
) -> torch.Tensor:
    """Decode ``path`` to a mono float32 waveform at ``sample_rate``.

    Channels are averaged, the signal is resampled with soxr and then
    normalised (see :func:`vocalis.audio.level.normalize`).

    Args:
        path: local path or fsspec URL.
        sample_rate: output rate in Hz.
        normalize: ``"peak"`` (max abs 1, silence left as is), ``"rms"`` (RMS at
            ``target_rms_db`` dBFS) or ``"none"``.
        target_rms_db: RMS level for ``normalize="rms"``.

    Returns:
        The waveform.

    Shape:
        Returns (T,), T = round(frames * sample_rate / native_rate).

    Raises:
        AudioError: see :func:`decode`.

    Example:
        >>> import numpy as np, soundfile as sf, tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "a.wav")
        >>> sf.write(path, 0.1 * np.ones((4410, 2), dtype="float32"), 44100)
        >>> wav = load_audio(path)
        >>> wav.shape, round(float(wav.abs().max()), 3)
        (torch.Size([1600]), 1.0)
    """
    samples, sr = decode(path)
    return _finish(samples, sr, sample_rate, normalize, target_rms_db)


def load_audio_bytes(
    data: bytes,
    name: str = "<bytes>",
    sample_rate: int = TARGET_SAMPLE_RATE,
    normalize: Normalize = "peak",
    *,
    target_rms_db: float = -20.0,
) -> torch.Tensor:
    """:func:`load_audio` for an in-memory file (an upload).

    Args:
        data: the file's bytes.
        name: the file name, used in error messages.
        sample_rate: output rate in Hz.
        normalize: as in :func:`load_audio`.
        target_rms_db: as in :func:`load_audio`.

    Shape:
        Returns (T,).

    Example:
        >>> import io, numpy as np, soundfile as sf
        >>> buf = io.BytesIO()
        >>> sf.write(buf, np.zeros(800, dtype="float32"), 8000, format="WAV")
        >>> load_audio_bytes(buf.getvalue(), "up.wav").shape
        torch.Size([1600])
    """
    samples, sr = decode_bytes(data, name)
    return _finish(samples, sr, sample_rate, normalize, target_rms_db)
