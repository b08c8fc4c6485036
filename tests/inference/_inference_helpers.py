"""Fixtures for the inference tests: tiny checkpoints and synthetic clips.

Checkpoints are built here with :func:`vocalis.models.build_model` and saved
with :func:`vocalis.checkpoint.save_checkpoint`, following the schema in
:mod:`vocalis.checkpoint`; weights are random (seeded), which is all that
prediction plumbing, export parity and the service need.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

CLASSES = ("angry", "happy", "neutral", "sad")

TINY_MODELS = {
    "tier1": {
        "channels": [8],
        "lstm_hidden": 8,
        "lstm_layers": 1,
        "attention_heads": 2,
        "pooling_heads": 1,
        "pooling_hidden": 8,
    },
    "ecapa": {
        "channels": [16, 16, 16, 16, 48],
        "res2net_scale": 4,
        "se_channels": 8,
        "attention_channels": 8,
        "embedding_dim": 16,
        "head_hidden": 10,
    },
}


def synth_clip(seconds: float, seed: int = 0, sr: int = 16000) -> np.ndarray:
    """A speech-like float32 clip, (T,)."""
    from vocalis.testing import synth_speechlike

    return synth_speechlike(seconds, sr, f0=110.0 + 10 * seed, seed=seed)


def build_checkpoint(
    path: Path,
    model: str = "tier1",
    features: str = "fbank",
    norm: str = "global",
    shared_dim: int = 0,
    temperature: float | None = None,
    tier0: dict | None = None,
    feature_overrides: dict | None = None,
    seed: int = 0,
) -> Path:
    """Save a random-weight checkpoint of a tiny model to ``path``."""
    from vocalis.audio import Tier0Config
    from vocalis.checkpoint import save_checkpoint
    from vocalis.config import from_dict, to_dict
    from vocalis.data import LabelEncoder
    from vocalis.features import FeatureConfig, extract, feature_dim
    from vocalis.features.normalize import GlobalMVN
    from vocalis.models import build_model

    torch.manual_seed(seed)
    fcfg = FeatureConfig(name=features, **(feature_overrides or {}))
    tcfg = from_dict(Tier0Config, tier0 or {})
    dim = feature_dim(fcfg)
    cfg = dict(TINY_MODELS[model])
    if shared_dim:
        cfg["shared_dim"] = shared_dim
    if temperature is not None:
        cfg["temperature"] = True
    net = build_model(model, cfg, dim, len(CLASSES)).eval()
    if temperature is not None:
        net.set_temperature(temperature)
    state = None
    if norm in ("global", "speaker"):
        feats = [extract(torch.from_numpy(synth_clip(1.0 + 0.3 * i, i)), fcfg) for i in range(3)]
        mvn = GlobalMVN(dim).fit(feats)
        state = mvn.state_dict()
        if norm == "speaker":
            state = {
                "feature_dim": dim,
                "variance": True,
                "unknown": "global",
                "eps": 1e-5,
                "pooled": state,
                "speakers": {},
            }
    payload = {
        "model": {
            "kind": "neural",
            "name": model,
            "config": cfg,
            "input_dim": dim,
            "num_classes": len(CLASSES),
        },
        "model_state": net.state_dict(),
        "pipeline": {"tier0": to_dict(tcfg), "features": to_dict(fcfg)},
        "normalization": {"mode": norm, "state": state},
        "labels": LabelEncoder(list(CLASSES)).to_dict(),
        "config": {"model": {"name": model, **cfg}},
    }
    save_checkpoint(path, payload)
    return path


@pytest.fixture(scope="session")
def ckpt_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("inference_ckpts")


@pytest.fixture(scope="session")
def tier1_ckpt(ckpt_dir) -> Path:
    """Tiny tier1 on fbank with global normalisation."""
    return build_checkpoint(ckpt_dir / "tier1.pt", "tier1", "fbank", "global")


@pytest.fixture(scope="session")
def ecapa_ckpt(ckpt_dir) -> Path:
    """Tiny ECAPA on MFCC with per-utterance CMVN, a shared layer and a temperature."""
    return build_checkpoint(
        ckpt_dir / "ecapa.pt", "ecapa", "mfcc", "utterance", shared_dim=12, temperature=2.0
    )


@pytest.fixture(scope="session")
def clips_dir(tmp_path_factory) -> Path:
    """Three WAV clips of different lengths and rates, plus one corrupt file."""
    from vocalis.testing import write_wav

    root = tmp_path_factory.mktemp("inference_clips")
    write_wav(root / "a.wav", synth_clip(1.0, 1))
    write_wav(root / "sub" / "b.wav", synth_clip(2.3, 2))
    write_wav(root / "c.flac", synth_clip(0.7, 3, sr=22050), sr=22050)
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    return root


@pytest.fixture(scope="session")
def checkpoint_builder():
    """:func:`build_checkpoint` for tests that need a checkpoint of their own."""
    return build_checkpoint
