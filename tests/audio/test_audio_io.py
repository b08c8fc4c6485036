"""Decoding real-corpus quirks, mono down-mix, resampling and level normalisation."""

from __future__ import annotations

import io
import math
import re
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from vocalis.audio import decode, decode_bytes, load_audio, load_audio_bytes, resample, to_mono
from vocalis.audio.io import resampled_length
from vocalis.audio.level import normalize, rms_db
from vocalis.errors import AudioError, ConfigError


def sine(freq: float, seconds: float, sr: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(wav: torch.Tensor | np.ndarray, sr: int) -> float:
    """Frequency of the FFT maximum, zero-padded 16x (resolution sr / 16N)."""
    x = np.asarray(wav, dtype=np.float64) * np.hanning(len(wav))
    n = 16 * len(x)
    spec = np.abs(np.fft.rfft(x, n))
    return float(np.argmax(spec) * sr / n)


# (label, format, subtype, sample rate, file name, exact length?)
QUIRKS = [
    ("wav-8bit-22k", "WAV", "PCM_U8", 22050, "a.wav", True),
    ("wav-24bit-24k", "WAV", "PCM_24", 24000, "a.wav", True),
    ("wav-float-48k", "WAV", "FLOAT", 48000, "a.wav", True),
    ("wav-32bit-8k", "WAV", "PCM_32", 8000, "a.wav", True),
    ("wav-16bit-96k", "WAV", "PCM_16", 96000, "a.wav", True),
    ("wavex-16bit-44k", "WAVEX", "PCM_16", 44100, "a.wav", True),
    ("aiff-named-wav", "AIFF", "PCM_16", 44100, "really_aiff.wav", True),
    ("flac-named-wav", "FLAC", "PCM_16", 44100, "really_flac.wav", True),
    ("flac-44k", "FLAC", "PCM_24", 44100, "a.flac", True),
    ("ogg-vorbis-22k", "OGG", "VORBIS", 22050, "a.ogg", False),
    ("mp3-44k", "MP3", "MPEG_LAYER_III", 44100, "a.mp3", False),
]


@pytest.mark.parametrize(("label", "fmt", "subtype", "sr", "name", "exact"), QUIRKS)
def test_quirky_files_decode_and_keep_frequency(tmp_path, label, fmt, subtype, sr, name, exact):
    if fmt not in sf.available_formats():
        pytest.skip(f"libsndfile {sf.__libsndfile_version__} cannot write {fmt}")
    x = sine(1000.0, 1.0, sr)
    path = tmp_path / name
    sf.write(path, x, sr, format=fmt, subtype=subtype)

    samples, rate = decode(path)
    assert rate == sr
    assert samples.dtype == np.float32 and samples.shape[1] == 1
    if exact:
        assert samples.shape[0] == sr
        tol = 1.5 / 128 if subtype == "PCM_U8" else 1e-3
        np.testing.assert_allclose(samples[:, 0], x, atol=tol)
    else:  # lossy codecs add encoder delay / padding
        assert abs(samples.shape[0] - sr) <= 0.06 * sr

    wav = load_audio(path, sample_rate=16000, normalize="none")
    assert wav.dtype == torch.float32 and wav.dim() == 1
    assert wav.shape[0] == resampled_length(samples.shape[0], sr, 16000)
    assert abs(peak_hz(wav, 16000) - 1000.0) < 1.0
    assert abs(float(wav.abs().max()) - 0.5) < 0.05

    from_bytes = load_audio_bytes(path.read_bytes(), name, normalize="none")
    torch.testing.assert_close(from_bytes, wav)


def test_stereo_44k_is_averaged_then_resampled(tmp_path):
    sr = 44100
    left = sine(440.0, 2.0, sr, amp=0.8)
    right = sine(440.0, 2.0, sr, amp=0.2)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), sr, subtype="FLOAT")

    samples, rate = decode(path)
    assert samples.shape == (2 * sr, 2) and rate == sr
    mono = to_mono(samples)
    torch.testing.assert_close(mono, torch.from_numpy((left + right) / 2))

    wav = load_audio(path, normalize="none")
    assert wav.shape == (32000,)
    assert abs(peak_hz(wav, 16000) - 440.0) < 1.0
    # averaged amplitude (0.8 + 0.2) / 2 = 0.5 survives resampling
    assert abs(float(wav[1000:-1000].abs().max()) - 0.5) < 5e-3
    torch.testing.assert_close(wav, resample(mono, sr, 16000))


def test_opposite_channels_cancel_in_mono():
    x = sine(300.0, 0.1, 16000)
    assert float(to_mono(np.stack([x, -x], axis=1)).abs().max()) == 0.0


@pytest.mark.parametrize(
    ("orig", "new"), [(44100, 16000), (22050, 16000), (8000, 16000), (96000, 16000)]
)
def test_resample_keeps_frequency_and_length(orig, new):
    x = torch.from_numpy(sine(1234.5, 1.5, orig))
    y = resample(x, orig, new)
    assert y.shape == (resampled_length(x.shape[0], orig, new),)
    assert abs(peak_hz(y, new) - 1234.5) < 1.0
    # RMS of the sine is kept (away from the edges)
    assert abs(rms_db(y[200:-200]) - rms_db(x)) < 0.05


def test_resample_removes_content_above_new_nyquist():
    x = torch.from_numpy(sine(5000.0, 1.0, 16000))
    y = resample(x, 16000, 8000)  # 5 kHz > 4 kHz Nyquist: must not alias to 3 kHz
    assert rms_db(y[100:-100]) < rms_db(x) - 60


def test_resample_multichannel_identity_and_bad_rates():
    x = torch.randn(441, 2)
    assert resample(x, 44100, 16000).shape == (160, 2)
    assert resample(x, 16000, 16000) is x
    with pytest.raises(ConfigError, match="orig_sr"):
        resample(x, 0, 16000)
    with pytest.raises(ConfigError, match="new_sr"):
        resample(x, 16000, 16000.5)  # type: ignore[arg-type]


@pytest.mark.parametrize("length", [1, 7, 1000, 44101])
def test_resampled_length_matches_rounding(length):
    for orig, new in [(44100, 16000), (16000, 8000), (8000, 22050)]:
        assert resampled_length(length, orig, new) == math.floor(length * new / orig + 0.5)


def test_normalize_modes(tmp_path):
    x = torch.from_numpy(sine(200.0, 0.5, 16000, amp=0.1))
    assert float(normalize(x, "peak").abs().max()) == pytest.approx(1.0)
    assert rms_db(normalize(x, "rms", target_rms_db=-26.0)) == pytest.approx(-26.0, abs=1e-4)
    assert normalize(x, "none") is x
    silent = torch.zeros(100)
    assert torch.equal(normalize(silent, "peak"), silent)
    assert torch.equal(normalize(silent, "rms"), silent)
    with pytest.raises(ConfigError, match="'loud'"):
        normalize(x, "loud")

    path = tmp_path / "q.wav"
    sf.write(path, x.numpy(), 16000)
    assert float(load_audio(path).abs().max()) == pytest.approx(1.0)
    assert rms_db(load_audio(path, normalize="rms")) == pytest.approx(-20.0, abs=1e-3)


def test_fsspec_memory_url():
    fsspec = pytest.importorskip("fsspec")
    buf = io.BytesIO()
    sf.write(buf, sine(500.0, 0.5, 22050), 22050, format="FLAC")
    with fsspec.open("memory://vocalis-audio-test/clip.flac", "wb") as fh:
        fh.write(buf.getvalue())
    wav = load_audio("memory://vocalis-audio-test/clip.flac", normalize="none")
    assert wav.shape == (8000,)
    assert abs(peak_hz(wav, 16000) - 500.0) < 1.0
    with pytest.raises(AudioError, match=r"memory://vocalis-audio-test/missing\.wav"):
        decode("memory://vocalis-audio-test/missing.wav")


def _assert_one_line(err: pytest.ExceptionInfo, name: str) -> None:
    msg = str(err.value)
    assert name in msg and "\n" not in msg, msg


def test_error_missing_file(tmp_path):
    with pytest.raises(AudioError) as err:
        load_audio(tmp_path / "nope.wav")
    _assert_one_line(err, "nope.wav")
    assert "no such file" in str(err.value)


def test_error_text_renamed_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio\n" * 20)
    with pytest.raises(AudioError) as err:
        decode(path)
    _assert_one_line(err, "notes.wav")
    assert "cannot decode" in str(err.value)


def test_error_zero_length(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError) as err:
        load_audio(path)
    _assert_one_line(err, "empty.wav")
    assert "0 frames" in str(err.value)


def test_error_zero_bytes_and_directory(tmp_path):
    with pytest.raises(AudioError) as err:
        decode_bytes(b"", "upload.wav")
    _assert_one_line(err, "upload.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty file \(0 bytes\)") as err:
        decode(tmp_path / "empty.wav")
    _assert_one_line(err, "empty.wav")
    with pytest.raises(AudioError, match="directory"):
        decode(tmp_path)


@pytest.mark.parametrize(
    ("bad", "says", "kind"),
    [
        (np.nan, "NaN or inf", "non_finite_audio"),
        (np.inf, "NaN or inf", "non_finite_audio"),
        (-np.inf, "NaN or inf", "non_finite_audio"),
        # values no format holds (1e19 and up overflow a frame's float32 power: NaN loss)
        (1e10, "samples reach 1e+10, beyond the full scale", "out_of_range_audio"),
        (-1e19, "samples reach 1e+19, beyond the full scale", "out_of_range_audio"),
        (1e30, "samples reach 1e+30, beyond the full scale", "out_of_range_audio"),
    ],
)
def test_corrupt_float_samples_are_refused_per_file(tmp_path, bad, says, kind):
    from vocalis.audio.tier0 import tier0_waveform
    from vocalis.data.failures import classify

    x = sine(100.0, 0.1, 16000)
    x[10] = bad
    path = tmp_path / "corrupt.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError) as err:
        load_audio(path)
    _assert_one_line(err, "corrupt.wav")
    assert says in str(err.value) and classify(str(err.value)) == kind
    with pytest.raises(AudioError, match=re.escape(says.split(",")[0])):  # in memory too
        tier0_waveform(torch.from_numpy(x), 16000, source="signal")


def test_float_samples_above_one_are_kept(tmp_path):
    """Headroom and integer-scaled float files are legal: their values are kept."""
    x = 32767.0 * sine(100.0, 0.1, 16000)
    path = tmp_path / "scaled.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    data, _ = decode(path)
    assert float(np.abs(x).max()) > 1e4
    assert float(np.abs(data).max()) == pytest.approx(float(np.abs(x).max()), rel=1e-6)


def test_truncated_wav_is_refused_with_both_durations(tmp_path):
    path = tmp_path / "full.wav"
    sf.write(path, sine(100.0, 1.0, 16000), 16000)  # PCM_16: 1 s = 32000 bytes
    data = path.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: 44 + 2 * 8000])  # header + half the samples
    with pytest.raises(AudioError, match=r"truncated WAV.*declares 1\.00 s.*holds 0\.50 s") as err:
        decode(cut)
    _assert_one_line(err, "cut.wav")
    with pytest.raises(AudioError, match="truncated WAV"):
        decode_bytes(cut.read_bytes(), "upload.wav")
    assert decode(path)[0].shape[0] == 16000  # the intact file still decodes


def test_streamed_wav_without_patched_size_still_decodes(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, sine(100.0, 0.5, 16000), 16000)
    data = bytearray(path.read_bytes())
    pos = data.index(b"data")
    data[pos + 4 : pos + 8] = b"\xff\xff\xff\xff"  # size never written by a streaming tool
    samples, sr = decode_bytes(bytes(data), "stream.wav")
    assert sr == 16000 and samples.shape[0] == 8000


def test_wav_with_extra_chunks_is_not_mistaken_for_truncated(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, sine(100.0, 0.25, 16000), 16000)
    data = path.read_bytes()
    pos = data.index(b"data")
    extra = b"LIST" + (5).to_bytes(4, "little") + b"INFOx" + b"\x00"  # odd size + pad byte
    body = data[12:pos] + extra + data[pos:]
    riff = b"RIFF" + (len(body) + 4).to_bytes(4, "little") + b"WAVE" + body
    samples, _ = decode_bytes(riff, "list.wav")
    assert samples.shape[0] == 4000


def test_file_url(tmp_path):
    path = tmp_path / "u.wav"
    sf.write(path, sine(100.0, 0.1, 8000), 8000)
    samples, sr = decode(f"file://{path}")
    assert sr == 8000 and samples.shape == (800, 1)


def test_decode_ignores_extension(tmp_path):
    src = tmp_path / "a.aiff"
    sf.write(src, sine(100.0, 0.2, 24000), 24000, format="AIFF")
    for name in ("b.wav", "c.mp3", "d"):
        shutil.copy(src, tmp_path / name)
        assert decode(tmp_path / name)[1] == 24000


def test_import_is_cheap():
    import subprocess
    import sys

    code = (
        "import sys, vocalis.audio;"
        "print(sorted(m for m in ('soundfile', 'soxr', 'noisereduce', 'silero_vad', 'librosa')"
        " if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_bounded_decode_reads_the_duration_from_the_header(monkeypatch):
    """With max_seconds, a long file is refused before a single block is decoded."""
    import io

    import soundfile as sf

    from vocalis.audio.io import decode_bytes
    from vocalis.errors import AudioTooLongError

    buf = io.BytesIO()
    sf.write(buf, np.zeros(16000 * 120, dtype=np.float32), 16000, format="FLAC")
    decoded = []
    real_blocks = sf.SoundFile.blocks
    monkeypatch.setattr(
        sf.SoundFile,
        "blocks",
        lambda self, *a, **k: decoded.append(1) or real_blocks(self, *a, **k),
    )
    with pytest.raises(
        AudioTooLongError, match=r"x.flac: 120.0 s of audio, longer than the limit of 60 s"
    ):
        decode_bytes(buf.getvalue(), "x.flac", max_seconds=60)
    assert decoded == []


def test_bounded_decode_mixes_down_and_matches_the_full_decode():
    import io

    import soundfile as sf

    from vocalis.audio.io import decode_bytes
    from vocalis.errors import AudioError

    rng = np.random.default_rng(0)
    stereo = (0.3 * rng.standard_normal((70000, 2))).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, stereo, 22050, format="WAV", subtype="FLOAT")
    full, sr = decode_bytes(buf.getvalue(), "s.wav")
    bounded, sr2 = decode_bytes(buf.getvalue(), "s.wav", max_seconds=10)
    assert sr == sr2 == 22050 and bounded.shape == (70000, 1)
    np.testing.assert_allclose(bounded[:, 0], full.mean(axis=1), atol=1e-7)
    with pytest.raises(AudioError, match=r"sample rate 22050 Hz, outside 1\.\.16000 Hz"):
        decode_bytes(buf.getvalue(), "s.wav", max_seconds=10, max_sample_rate=16000)
