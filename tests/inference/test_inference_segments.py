"""Sliding-window prediction: window layout, equality with single clips, VAD gating, outputs."""

from __future__ import annotations

import csv
import io
import itertools
import math

import numpy as np
import pytest
from _inference_helpers import CLASSES, synth_clip

from vocalis.errors import ConfigError
from vocalis.inference.predictor import Predictor
from vocalis.inference.segments import (
    plot_timeline,
    predict_segments,
    segments_csv,
    window_starts,
)
from vocalis.inference.speech import MIN_SPEECH


@pytest.fixture(scope="module")
def predictor(ecapa_ckpt):
    return Predictor.from_checkpoint(ecapa_ckpt)


@pytest.mark.parametrize("n,win,hop", [(100, 30, 10), (101, 30, 10), (95, 30, 40), (10, 30, 5)])
def test_windows_cover_the_whole_signal(n, win, hop):
    starts = window_starts(n, win, hop)
    assert starts[0] == 0
    assert starts[-1] + win >= n  # the last window reaches the end
    assert all(b - a <= hop for a, b in itertools.pairwise(starts))
    assert all(s + win <= max(n, win) for s in starts)


def test_segments_equal_predictions_of_the_cut_windows(predictor):
    wav = synth_clip(6.5, 7)
    # windowing only: no speech check, so the synthetic windows get their labels
    segs = predict_segments(predictor, wav, 16000, window_s=2.0, hop_s=1.5, min_speech=None)
    assert [(s.start, s.end) for s in segs] == [(0.0, 2.0), (1.5, 3.5), (3.0, 5.0), (4.5, 6.5)]
    for seg in segs:
        piece = wav[int(seg.start * 16000) : int(seg.end * 16000)]
        alone = predictor.predict_waveform(piece, 16000)
        assert max(abs(seg.probs[c] - alone.probs[c]) for c in CLASSES) < 1e-5
        assert math.isclose(sum(seg.probs.values()), 1.0, abs_tol=1e-5)
        assert seg.label == max(seg.probs, key=seg.probs.get) and seg.speech is None


def test_short_audio_gives_one_segment(predictor):
    segs = predict_segments(predictor, synth_clip(1.2, 1), 16000, window_s=3.0, hop_s=1.0)
    assert len(segs) == 1 and segs[0].start == 0.0 and segs[0].end == pytest.approx(1.2)


def test_bad_window_settings_raise(predictor):
    with pytest.raises(ConfigError, match="positive"):
        predict_segments(predictor, synth_clip(2.0), 16000, window_s=0.0)
    with pytest.raises(ConfigError, match="min-speech"):
        predict_segments(predictor, synth_clip(2.0), 16000, vad=True, min_speech=1.5)


def test_vad_drops_silent_windows(predictor):
    import soundfile as sf

    from vocalis.testing import samples_dir

    files = sorted((samples_dir() / "wav").glob("*.wav"))[:2]
    speech = [sf.read(f, dtype="float32")[0] for f in files]
    silence = np.zeros(16000 * 6, dtype=np.float32)
    wav = np.concatenate([speech[0], silence, speech[1]])
    all_segs = predict_segments(predictor, wav, 16000, window_s=2.0, hop_s=1.0)
    gated = predict_segments(predictor, wav, 16000, window_s=2.0, hop_s=1.0, vad=True)
    gap = (len(speech[0]) / 16000, (len(speech[0]) + len(silence)) / 16000)
    inside = [s for s in all_segs if s.start >= gap[0] and s.end <= gap[1]]
    assert len(inside) >= 3
    assert all(not (s.start >= gap[0] and s.end <= gap[1]) for s in gated)
    assert 0 < len(gated) < len(all_segs)
    assert all(s.speech >= MIN_SPEECH and s.label is not None for s in gated)
    # without --vad the silent windows stay, answered "no speech" (no label, no confidence)
    assert all(s.speech == 0.0 and s.label is None and s.confidence is None for s in inside)
    assert all(s.label is not None for s in all_segs if s.speech >= MIN_SPEECH)
    # kept windows carry the same probabilities as without gating
    by_start = {s.start: s for s in all_segs}
    for s in gated:
        assert by_start[s.start].probs == pytest.approx(s.probs, abs=1e-6)


def test_csv_and_timeline(predictor, tmp_path):
    segs = predict_segments(predictor, synth_clip(5.0, 2), 16000, window_s=2.0, hop_s=1.0)
    rows = list(csv.DictReader(io.StringIO(segments_csv(segs, CLASSES))))
    assert len(rows) == len(segs) == 4
    header = ["start", "end", "label", "confidence", *[f"p_{c}" for c in CLASSES], "speech"]
    assert list(rows[0]) == header
    for row, seg in zip(rows, segs, strict=True):  # a window without speech: empty label
        assert row["label"] == (seg.label or "") and float(row["speech"]) == pytest.approx(
            seg.speech, abs=1e-3
        )
    assert float(rows[-1]["end"]) == pytest.approx(5.0)
    png = tmp_path / "timeline.png"
    plot_timeline(segs, CLASSES, png, duration_s=5.0, title="synthetic")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_cli_segments_writes_csv_and_png(ecapa_ckpt, tmp_path):
    from vocalis.cli.main import main
    from vocalis.testing import write_wav

    wav = write_wav(tmp_path / "long.wav", synth_clip(4.0, 3))
    out = tmp_path / "segs.csv"
    rc = main(
        [
            "predict",
            str(wav),
            "--checkpoint",
            str(ecapa_ckpt),
            "--segments",
            "--window",
            "2",
            "--hop",
            "1",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    assert len(list(csv.DictReader(out.open()))) == 3
    assert (tmp_path / "segs.png").stat().st_size > 0
