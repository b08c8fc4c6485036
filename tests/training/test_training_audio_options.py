"""The seed's audio options through training and inference: a fixed clip, fixed statistics."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from _training_helpers import tiny_overrides

from vocalis.checkpoint import load_checkpoint
from vocalis.training import load_config, train


@pytest.fixture(scope="module")
def clipped_run(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("clip") / "run"
    over = [*tiny_overrides(corpus, 1), "features.tier0.clip_seconds=0.3",
            "features.normalization={mean: -2.0, std: 10.0}"]  # fmt: skip
    train(load_config(None, over), out, progress=False)
    return out


def test_the_clip_and_the_statistics_travel_in_the_checkpoint(clipped_run):
    ckpt = load_checkpoint(clipped_run / "model.pt")
    assert ckpt.tier0.clip_seconds == 0.3
    assert ckpt.normalization.mode == "global"
    from vocalis.features.normalize import FeatureNormalizer

    norm = FeatureNormalizer.from_state(ckpt.normalization.to_dict(), 13)
    assert np.allclose(norm.mvn.mean.numpy(), -2.0) and np.allclose(norm.mvn.std.numpy(), 10.0)


def test_prediction_and_embedding_use_the_same_clip(clipped_run, corpus, tmp_path):
    from vocalis.data import read_manifest
    from vocalis.inference import Predictor
    from vocalis.inference.embed import embed

    path = read_manifest(corpus).paths[2]  # 0.6 s: longer than the clip
    wav, sr = sf.read(path, dtype="float32")
    assert len(wav) > 0.3 * sr
    head = tmp_path / "head.wav"
    sf.write(head, wav[: round(0.3 * sr)], sr)
    tail = tmp_path / "tail.wav"
    sf.write(tail, wav[round(0.3 * sr) :], sr)
    predictor = Predictor.from_checkpoint(clipped_run, min_speech=None)
    full, first, rest = (predictor.predict_file(str(p)) for p in (path, head, tail))
    assert full.probs == pytest.approx(first.probs, abs=1e-6)  # only the first 0.3 s count
    assert full.probs != pytest.approx(rest.probs, abs=1e-6)
    emb = embed(clipped_run, inputs=[path, str(head)], kind="pt", progress=False)
    assert np.allclose(emb.embeddings[0], emb.embeddings[1], atol=1e-5)


def test_vocalis_test_with_a_feature_cache_scores_the_same(clipped_run, corpus, tmp_path):
    import json

    from vocalis.cli.main import main

    plain, cached = tmp_path / "plain", tmp_path / "cached"
    common = ["--manifest", str(corpus), "--batch-size", "4", "--device", "cpu", "--no-progress",
              "--no-visualize"]  # fmt: skip
    assert main(["test", str(clipped_run), *common, "--out", str(plain)]) == 0
    cache = tmp_path / "cache"
    for _ in range(2):  # computed once, then read back
        assert main(["test", str(clipped_run), *common, "--cache-dir", str(cache),
                     "--out", str(cached)]) == 0  # fmt: skip
    assert len([p for p in cache.rglob("*") if p.is_file()]) >= 18  # one entry per file
    a = json.loads((plain / "metrics.json").read_text())
    b = json.loads((cached / "metrics.json").read_text())
    assert a["n_rows"]["test"] == b["n_rows"]["test"] == 18 and a["test"] == b["test"]
    pa = (plain / "predictions.csv").read_text().splitlines()
    pb = (cached / "predictions.csv").read_text().splitlines()
    assert pa == pb  # the same probabilities to the printed digits


def test_fixed_statistics_in_both_spellings_and_their_refusals():
    from vocalis.errors import ConfigError

    dotted = load_config(None, ["features.normalization.mean=-4", "features.normalization.std=4"])
    mapping = load_config(None, ["features.normalization={mean: -4.0, std: 4.0}"])
    assert dotted.features == mapping.features
    assert dotted.features.normalization == "global"
    assert dotted.features.normalization_stats.std == 4.0
    with pytest.raises(ConfigError, match=r"got keys \['mean'\], expected \{mean: M, std: S\}"):
        load_config(None, ["features.normalization.mean=-4"])
    with pytest.raises(ConfigError, match=r"std: got 0\.0, expected a positive number"):
        load_config(None, ["features.normalization={mean: 0, std: 0}"])
