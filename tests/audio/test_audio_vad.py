"""Silero VAD: config validation, silence handling and real speech (EmoDB)."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from vocalis.audio.io import resample
from vocalis.audio.vad import (
    NoSpeechWarning,
    VADConfig,
    apply_vad,
    collect_segments,
    speech_segments,
)
from vocalis.errors import ConfigError

SR = 16000


def bundled_clip() -> Path:
    """A real EmoDB utterance shipped with the package (vocalis.testing.samples_dir)."""
    from vocalis.testing import samples_dir

    path = samples_dir() / "wav" / "09a01Nb.wav"
    if not path.is_file():
        pytest.skip(f"bundled sample {path} missing")
    return path


def pad_with_noise(x: np.ndarray, seconds_pad: float = 1.0, seed: int = 0) -> torch.Tensor:
    """``x`` with ``seconds_pad`` of low noise (-60 dBFS) on each side (noise under x too)."""
    rng = np.random.default_rng(seed)
    pad = int(seconds_pad * SR)
    out = (1e-3 * rng.standard_normal(2 * pad + len(x))).astype(np.float32)
    out[pad : pad + len(x)] += x
    return torch.from_numpy(out)


def padded_clip(seconds_pad: float = 1.0) -> tuple[torch.Tensor, int]:
    x, sr = sf.read(bundled_clip(), dtype="float32")
    assert sr == SR
    return pad_with_noise(x, seconds_pad), len(x)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 0.0},
        {"threshold": 1.2},
        {"neg_threshold": 0.6},
        {"min_speech_ms": -1},
        {"min_silence_ms": 2.5},
        {"speech_pad_ms": True},
        {"max_speech_s": 0.0},
    ],
)
def test_config_rejects_out_of_range(kwargs):
    with pytest.raises(ConfigError):
        VADConfig(**kwargs)


def test_config_roundtrips_through_dict():
    from vocalis.config import from_dict, to_dict

    cfg = VADConfig(threshold=0.3, max_speech_s=20.0)
    assert from_dict(VADConfig, to_dict(cfg)) == cfg


def test_silence_returns_input_and_warns():
    x = torch.zeros(2 * SR)
    assert speech_segments(x, SR) == []
    with pytest.warns(NoSpeechWarning, match="quiet.wav"):
        y = apply_vad(x, SR, source="quiet.wav")
    assert y is x


def test_low_noise_is_not_speech():
    g = torch.Generator().manual_seed(0)
    x = 1e-3 * torch.randn(2 * SR, generator=g)
    with pytest.warns(NoSpeechWarning):
        assert apply_vad(x, SR).shape == x.shape


def test_shorter_than_one_frame():
    assert speech_segments(torch.randn(100), SR) == []


def test_collect_segments():
    x = torch.arange(20.0)
    assert collect_segments(x, []).shape == (0,)
    assert collect_segments(x, [(0, 2), (18, 20)]).tolist() == [0.0, 1.0, 18.0, 19.0]


def test_padded_emodb_clip_keeps_speech_drops_padding():
    x, n_speech = padded_clip(1.0)
    segments = speech_segments(x, SR)
    assert segments, "no speech found in an EmoDB utterance"
    assert all(0 <= s < e <= x.shape[0] for s, e in segments)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(segments))
    start, end = segments[0][0], segments[-1][1]
    # the padding is gone (start >= 0.8 s, end <= pad + speech + 0.2 s) ...
    assert start >= int(0.8 * SR) and end <= SR + n_speech + int(0.2 * SR)
    # ... and the utterance is kept (EmoDB files have short leading/trailing pauses)
    y = apply_vad(x, SR)
    assert 0.7 * n_speech <= y.shape[0] <= n_speech + int(0.1 * SR)
    assert y.shape[0] == sum(e - s for s, e in segments)


def test_segments_map_back_to_other_sample_rates():
    x, _ = padded_clip(1.0)
    ref = speech_segments(x, SR)
    x48 = resample(x, SR, 48000)
    seg48 = speech_segments(x48, 48000)
    assert len(seg48) == len(ref)
    for (s16, e16), (s48, e48) in zip(ref, seg48, strict=False):
        assert abs(s48 - 3 * s16) <= 3 and abs(e48 - 3 * e16) <= 3
    x8 = resample(x, SR, 8000)
    seg8 = speech_segments(x8, 8000)  # 8 kHz runs natively: within 2 frames of 16 kHz
    assert seg8 and abs(seg8[0][0] * 2 - ref[0][0]) <= 2 * 512


def test_concurrent_calls_match_serial():
    x, _ = padded_clip(0.5)
    expected = speech_segments(x, SR)
    results: list[list[tuple[int, int]]] = []

    def work() -> None:
        results.append(speech_segments(x, SR))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 3


@pytest.mark.emodb
def test_corpus_clips_keep_speech_drop_padding():
    from vocalis.testing import emodb_root

    files = sorted((emodb_root() / "wav").glob("*.wav"))[::50]  # 11 clips, all speakers
    kept = []
    for i, path in enumerate(files):
        x, sr = sf.read(path, dtype="float32")
        padded = pad_with_noise(x, 1.0, seed=i)
        segments = speech_segments(padded, sr)
        assert segments, path.name
        assert segments[0][0] >= int(0.8 * SR) and segments[-1][1] <= SR + len(x) + int(0.2 * SR)
        kept.append(sum(e - s for s, e in segments) / len(x))
    # EmoDB clips have short pauses at both ends: most of each clip is kept
    assert min(kept) > 0.6 and float(np.median(kept)) > 0.8, kept


def test_loading_silero_keeps_torch_thread_count():
    code = (
        "import torch; torch.set_num_threads(2);"
        "from vocalis.audio.vad import _model; _model();"
        "print(torch.get_num_threads())"
    )
    with warnings.catch_warnings():
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
        )
    assert out.stdout.strip() == "2"
