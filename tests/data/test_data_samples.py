"""The bundled EmoDB excerpt and the vocalis.testing helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vocalis.data import LeaveOneSpeakerOut, read_manifest
from vocalis.testing import (
    emodb_root,
    make_audio_tree,
    sample_manifest,
    sample_manifest_path,
    samples_dir,
    synth_chirp,
    synth_noise,
    synth_speechlike,
    synth_tone,
)


def test_bundled_sample_is_complete_and_small():
    m = read_manifest(sample_manifest_path())
    assert m.columns == ("path", "label", "id", "speaker", "gender")
    assert len(m) == 14
    assert dict(zip(m.speakers, m.column("gender"), strict=True)) == {"09": "female", "11": "male"}
    assert all(n == 2 for n in m.counts().values()) and len(m.counts()) == 7
    total = sum(Path(p).stat().st_size for p in m.paths)
    assert total < 1.5e6
    assert (samples_dir() / "README.md").read_text().count("Burkhardt") >= 1
    assert sample_manifest() == m
    folds = list(LeaveOneSpeakerOut().folds(m))
    assert [f.name for f in folds] == ["09", "11"]


def test_bundled_sample_audio_decodes():
    sf = pytest.importorskip("soundfile")
    for p in sample_manifest().paths:
        info = sf.info(p)
        assert info.samplerate == 16000 and info.channels == 1 and 1.0 < info.duration < 2.5


@pytest.mark.emodb
def test_bundled_clips_equal_the_corpus(emodb_path):
    for p in sample_manifest().paths:
        assert Path(p).read_bytes() == (emodb_path / "wav" / Path(p).name).read_bytes()


def test_emodb_root_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("VOCALIS_EMODB", str(tmp_path))
    assert emodb_root() is None
    make_audio_tree(tmp_path, {"wav/03a01Fa.wav": None})
    assert emodb_root() == tmp_path.resolve()
    monkeypatch.setenv("VOCALIS_EMODB", str(tmp_path / "wav"))
    assert emodb_root() == tmp_path.resolve()


def _peak_hz(x, sr):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / sr)[int(np.argmax(spec))]


def test_synth_tone_frequency_and_length():
    x = synth_tone(1000.0, 0.5, 16000, amplitude=0.3)
    assert x.shape == (8000,) and x.dtype == np.float32
    assert abs(_peak_hz(x, 16000) - 1000.0) <= 2.0
    assert np.max(np.abs(x)) == pytest.approx(0.3, abs=1e-3)
    assert synth_tone(440, 0.0001, 8000).shape == (1,)


def test_synth_chirp_sweeps():
    x = synth_chirp(200, 3000, 1.0, 16000)
    sr = 16000
    assert abs(_peak_hz(x[: sr // 10], sr) - 340) < 150
    assert abs(_peak_hz(x[-sr // 10 :], sr) - 2860) < 150
    y = synth_chirp(100, 4000, 1.0, 16000, method="logarithmic")
    assert _peak_hz(y[-sr // 10 :], sr) > 3000


def test_synth_noise_rms_seed_and_colour():
    a = synth_noise(1.0, 16000, seed=3, rms=0.05)
    assert float(np.sqrt(np.mean(a**2))) == pytest.approx(0.05, rel=1e-4)
    assert np.array_equal(a, synth_noise(1.0, 16000, seed=3, rms=0.05))
    assert not np.array_equal(a, synth_noise(1.0, 16000, seed=4, rms=0.05))
    pink = synth_noise(2.0, 16000, seed=0, color="pink")
    spec = np.abs(np.fft.rfft(pink)) ** 2
    f = np.fft.rfftfreq(len(pink), 1 / 16000)
    low = spec[(f > 100) & (f < 200)].mean()
    high = spec[(f > 1000) & (f < 2000)].mean()
    assert 10 * np.log10(low / high) == pytest.approx(10.0, abs=1.5)  # 1/f: 10 dB a decade


def test_synth_speechlike_is_voiced_with_pauses():
    x = synth_speechlike(1.0, 16000, f0=150.0, seed=0)
    assert x.shape == (16000,) and np.max(np.abs(x)) == pytest.approx(0.5, abs=1e-3)
    frames = x[: 16000 // 400 * 400].reshape(-1, 400)
    energy = (frames**2).mean(axis=1)
    assert energy.min() < 1e-3 * energy.max()  # silent gaps between syllables
    assert abs(_peak_hz(x, 16000) - 150.0) < 15


def test_make_audio_tree_writes_readable_wavs(tmp_path):
    sf = pytest.importorskip("soundfile")
    files = make_audio_tree(tmp_path, ["a/b.wav", "c.txt"], seconds=0.1, sr=8000)
    assert sf.info(str(files[0])).frames == 800
    assert files[1].stat().st_size == 0
