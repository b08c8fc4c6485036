"""The web service: health, prediction, and clean 4xx answers to bad uploads."""

from __future__ import annotations

import io
import math
import re
from pathlib import Path

import numpy as np
import pytest
from _inference_helpers import CLASSES, synth_clip

pytest.importorskip("fastapi")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx (pip install httpx)")

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx`")


def _wav(seconds: float, sr: int = 16000, fmt: str = "WAV") -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, synth_clip(seconds, 2, sr=sr), sr, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def client(tier1_ckpt):
    from fastapi.testclient import TestClient

    from vocalis.inference.service import create_app

    app = create_app(tier1_ckpt, max_upload_mb=0.5, max_duration_s=10)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_health(client):
    from vocalis import __version__

    r = client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "tier1" and body["classes"] == list(CLASSES)
    assert body["version"] == __version__ and body["sample_rate"] == 16000


def _speech(sr: int = 16000, fmt: str = "WAV", repeat: int = 1) -> tuple[bytes, float]:
    """A bundled EmoDB clip (``repeat`` times in a row) as ``fmt`` at ``sr``; its seconds."""
    import soundfile as sf
    import soxr

    from vocalis.testing import samples_dir

    clip = sorted((samples_dir() / "wav").glob("*.wav"))[0]
    wav, rate = sf.read(clip, dtype="float32")
    wav = np.tile(soxr.resample(wav, rate, sr), repeat)
    buf = io.BytesIO()
    sf.write(buf, wav, sr, format=fmt)
    return buf.getvalue(), len(wav) / sr


@pytest.mark.parametrize("fmt,sr", [("WAV", 16000), ("FLAC", 44100), ("OGG", 22050)])
def test_predict_upload(client, fmt, sr):
    data, seconds = _speech(sr, fmt)
    r = client.post("/predict", files={"file": (f"clip.{fmt.lower()}", data, "audio/x")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body["probabilities"]) == set(CLASSES)
    assert math.isclose(sum(body["probabilities"].values()), 1.0, abs_tol=1e-5)
    assert body["speech_detected"] is True and 0.5 < body["speech"] <= 1.0
    assert body["label"] == max(body["probabilities"], key=body["probabilities"].get)
    assert body["answer"] == body["label"]
    assert body["confidence"] == body["probabilities"][body["label"]]
    assert body["duration_s"] == pytest.approx(seconds, abs=2e-3)
    assert body["segments"] == []  # shorter than one 3 s window: no timeline


@pytest.mark.parametrize("kind", ["silence", "noise", "tone"])
def test_no_speech_is_no_emotion(client, kind):
    import soundfile as sf

    rng = np.random.default_rng(0)
    wav = {
        "silence": np.zeros(48000, np.float32),
        "noise": (0.3 * rng.standard_normal(48000)).astype(np.float32),
        "tone": synth_clip(3.0, 2),
    }[kind]
    buf = io.BytesIO()
    sf.write(buf, wav, 16000, format="WAV")
    body = client.post("/predict", files={"file": (f"{kind}.wav", buf.getvalue())}).json()
    assert body["label"] is None and body["confidence"] is None
    assert body["answer"] == "no speech detected" and body["speech_detected"] is False
    assert body["speech"] < 0.05


def test_long_clip_gets_its_timeline(client, tier1_ckpt):
    from vocalis.inference.predictor import Predictor
    from vocalis.inference.segments import predict_segments, window_starts

    data, seconds = _speech(repeat=3)
    body = client.post("/predict", files={"file": ("long.wav", data)}).json()
    segs = body["segments"]
    n = round(seconds * 16000)
    assert len(segs) == len(window_starts(n, 3 * 16000, 16000)) >= 4
    assert segs[0]["start"] == 0.0 and segs[-1]["end"] == pytest.approx(seconds, abs=1e-3)
    import soundfile as sf

    wav, sr = sf.read(io.BytesIO(data), dtype="float32")
    ref = predict_segments(Predictor.from_checkpoint(tier1_ckpt), wav, sr)
    assert [s["label"] for s in segs] == [r.label for r in ref]
    for got, want in zip(segs, ref, strict=True):
        assert got["probs"] == pytest.approx(want.probs, abs=1e-5)
        assert got["speech"] == pytest.approx(want.speech)


def test_model_card_only_for_the_bundled_model(client):
    from fastapi.testclient import TestClient

    from vocalis.inference.service import create_app

    assert client.get("/health").json()["limits"] is None
    assert client.get("/model-card").status_code == 404
    with TestClient(create_app(None)) as bundled:
        health = bundled.get("/health").json()
        card = bundled.get("/model-card")
    assert health["model_card"] == "/model-card" and card.status_code == 200
    assert "Limits" in card.text and health["limits"].startswith("Acted German speech")
    assert "\n" not in health["limits"] and len(health["limits"]) < 300


def test_prediction_matches_the_predictor(client, tier1_ckpt):
    from vocalis.inference.predictor import Predictor

    data = _wav(2.0)
    body = client.post("/predict", files={"file": ("x.wav", data)}).json()
    ref = Predictor.from_checkpoint(tier1_ckpt).predict_bytes(data, "x.wav")
    assert body["probabilities"] == pytest.approx(ref.probs, abs=1e-6)


@pytest.mark.parametrize(
    "data,pattern",
    [
        (b"RIFF\x00\x00\x00\x00WAVEjunk", "cannot decode"),
        (b"", "empty"),
        (np.full(800, np.nan, dtype=np.float32).tobytes(), "cannot decode"),
    ],
)
def test_corrupt_upload_is_400(client, data, pattern):
    r = client.post("/predict", files={"file": ("bad.wav", data, "audio/wav")})
    assert r.status_code == 400
    detail = r.json()["detail"]
    assert re.search(pattern, detail) and "bad.wav" in detail and "\n" not in detail


def test_too_short_is_400(client):
    r = client.post("/predict", files={"file": ("tiny.wav", _wav(0.02))})
    assert r.status_code == 400 and "shorter than" in r.json()["detail"]


def test_too_large_and_too_long_are_413(client):
    big = _wav(20.0)  # ~640 KB > 0.5 MiB: refused from its Content-Length
    r = client.post("/predict", files={"file": ("big.wav", big)})
    assert r.status_code == 413 and "MiB" in r.json()["detail"]
    just_over = _wav(16.5)  # ~528 KB: passes the header check, refused after reading
    assert 0.5 * 1024 * 1024 < len(just_over) < 0.5 * 1024 * 1024 + 64 * 1024
    r = client.post("/predict", files={"file": ("over.wav", just_over)})
    assert r.status_code == 413 and "over.wav" in r.json()["detail"]
    long = _wav(12.0, fmt="FLAC")  # small file, but 12 s > 10 s
    assert len(long) < 0.5 * 1024 * 1024
    r = client.post("/predict", files={"file": ("long.flac", long)})
    assert r.status_code == 413 and "longer than the limit of 10 s" in r.json()["detail"]


def test_missing_field_is_422(client):
    r = client.post("/predict", files={"other": ("x.wav", _wav(1.0))})
    assert r.status_code == 422
    r = client.post("/predict")
    assert r.status_code == 422


def test_page_is_self_contained(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    html = r.text
    assert 'id="file"' in html and 'id="record"' in html and 'id="chart"' in html
    for name in ("app.js", "style.css"):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and asset.text
        assert not re.search(r"(src|href)=[\"']https?://|@import|//cdn", asset.text)
    assert not re.search(r"(src|href)=[\"']https?://", html)
    assert client.get("/static/../checkpoint.py").status_code == 404


def test_bundled_model_serves_anger_for_an_angry_clip():
    """``vocalis serve`` with no checkpoint: the shipped model labels shouted anger 'anger'."""
    from fastapi.testclient import TestClient

    from vocalis.inference.service import create_app
    from vocalis.testing import sample_manifest

    clip = next(r["path"] for r in sample_manifest() if r["label"] == "anger")
    data = Path(clip).read_bytes()
    with TestClient(create_app(None), raise_server_exceptions=False) as c:
        r = c.post("/predict", files={"file": ("angry.wav", data, "audio/wav")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert len(body["probabilities"]) == 7 and body["label"] == "anger"
