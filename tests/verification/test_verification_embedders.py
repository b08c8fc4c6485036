"""Embedders: the GE2E d-vector scheme, the per-clip cache, specs and verifier folders."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vocalis.errors import ModelError
from vocalis.verification.embedders import (
    GE2EDVector,
    SpeakerEmbedder,
    load_embedder,
)


def test_ge2e_partials_follow_resemblyzer():
    # resemblyzer: 160-frame windows every 77 frames, the last kept if it covers >= 75 %
    assert GE2EDVector.partial_starts(1) == [0]
    assert GE2EDVector.partial_starts(160) == [0]
    assert GE2EDVector.partial_starts(237) == [0, 77]  # (237 - 77) / 160 = 1.0
    assert GE2EDVector.partial_starts(196) == [0]  # second window would cover 119/160 < 75 %
    assert GE2EDVector.partial_starts(197) == [0, 77]  # 120/160 = 75 %


def test_ge2e_dvector_is_unit_length_and_batch_invariant():
    from vocalis.encoders.ge2e import GE2EEncoder

    torch.manual_seed(0)
    model = GE2EDVector(GE2EEncoder()).eval()
    wav = torch.randn(3, 30000) * 0.1
    lengths = torch.tensor([30000, 9000, 17000])
    wav[1, 9000:] = 5.0  # padding must not leak
    wav[2, 17000:] = -5.0
    with torch.inference_mode():
        out = model.embed(wav, lengths)
        alone = [model.embed(wav[i : i + 1, : lengths[i]], lengths[i : i + 1]) for i in range(3)]
    assert out.shape == (3, 256)
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)
    for i in range(3):
        assert torch.allclose(out[i], alone[i][0], atol=1e-5)


class _Counting(torch.nn.Module):
    """Embeds a clip as (mean, std, length): deterministic, counts its calls."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def embed(self, waveform, lengths, kind="sv", pooling="mean"):
        self.calls += waveform.shape[0]
        out = []
        for w, n in zip(waveform, lengths, strict=True):
            v = w[: int(n)]
            out.append(torch.stack([v.mean(), v.std(), n.float() / 16000]))
        return torch.stack(out)


def test_embedding_cache_reuses_clips_and_survives_a_reload(tmp_path):
    from vocalis.audio import Tier0Config
    from vocalis.features.cache import FeatureCache
    from vocalis.testing import synth_speechlike, write_wav

    paths = [str(write_wav(tmp_path / f"{i}.wav", synth_speechlike(0.3 + 0.1 * i))) for i in (0, 1)]
    (tmp_path / "bad.wav").write_bytes(b"RIFFjunk")
    missing = str(tmp_path / "gone.wav")
    module = _Counting()
    emb = SpeakerEmbedder("x", module, Tier0Config(), "sv", "abc" * 8)
    cache = FeatureCache(tmp_path / "cache")
    first, failed = emb.embed_files(
        [*paths, str(tmp_path / "bad.wav"), missing], cache, batch_size=1
    )
    assert module.calls == 2 and failed == [str(tmp_path / "bad.wav"), missing]
    assert np.isnan(first[2:]).all() and np.isfinite(first[:2]).all()
    assert cache.stats.writes == 2
    again, _ = emb.embed_files(paths, FeatureCache(tmp_path / "cache"))
    assert module.calls == 2  # all from the cache (a fresh instance: read from disk)
    np.testing.assert_array_equal(again, first[:2])
    # another identity never reads them
    other = SpeakerEmbedder("x", module, Tier0Config(), "sv", "other" * 4)
    other.embed_files(paths, FeatureCache(tmp_path / "cache"))
    assert module.calls == 4
    # a corrupt entry is recomputed, not served
    entry = next((tmp_path / "cache").rglob("*.vfeat"))
    entry.write_bytes(entry.read_bytes()[:20])
    fixed, _ = emb.embed_files(paths, FeatureCache(tmp_path / "cache"))
    assert module.calls == 5
    np.testing.assert_allclose(fixed, first[:2])


def test_a_broken_verifier_folder_is_one_line(tmp_path):
    (tmp_path / "verification.json").write_text("{not json")
    with pytest.raises(ModelError, match="not a verifier record") as err:
        load_embedder(tmp_path)
    assert "\n" not in str(err.value)
    (tmp_path / "verification.json").write_text(json.dumps({"embedder": str(tmp_path)}))
    with pytest.raises(ModelError, match="its own folder"):
        load_embedder(tmp_path)


def test_a_checkpoint_records_its_training_speakers(tmp_path):
    import dataclasses

    from vocalis.checkpoint import load_checkpoint, save_checkpoint
    from vocalis.testing.checkpoints import tiny_run
    from vocalis.verification.trials import training_speakers

    ckpt = load_checkpoint(tiny_run() / "model.pt")
    extras = {"train_speakers": ["09", "11"]}
    path = tmp_path / "model.pt"
    save_checkpoint(path, dataclasses.replace(ckpt, training={**ckpt.training, "extras": extras}))
    speakers, where = training_speakers(path)
    assert speakers == {"09", "11"} and "training speakers of" in where
    emb = load_embedder(path)
    assert emb.kind == "pt" and emb.verification is None and emb.checkpoint == str(path)
