"""GE2E speaker encoder: front end vs librosa, the encoder contract, checkpoints, ge2e features."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from vocalis.encoders.ge2e import (
    BUNDLED_WEIGHTS,
    WEIGHTS_ENV,
    GE2EEncoder,
    find_weights,
    ge2e_mel,
    normalize_volume,
    save_weights,
    weights_digest,
)
from vocalis.errors import AudioError, ConfigError
from vocalis.features.functionals import (
    FunctionalsConfig,
    compute_functionals,
    functionals_dim,
    functionals_key,
)
from vocalis.testing import synth_tone

HAS_RESEMBLYZER = importlib.util.find_spec("resemblyzer") is not None


@pytest.fixture
def tiny_weights(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "ge2e.pt"
    save_weights(GE2EEncoder(), path)
    return path


def test_front_end_matches_librosa_melspectrogram():
    librosa = pytest.importorskip("librosa")
    wav = torch.from_numpy(np.random.default_rng(0).normal(0, 0.01, 12345).astype(np.float32))
    ref = librosa.feature.melspectrogram(
        y=normalize_volume(wav).numpy(), sr=16000, n_fft=400, hop_length=160, n_mels=40
    ).T
    got = ge2e_mel(wav).numpy()
    assert got.shape == ref.shape == (1 + 12345 // 160, 40)
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=1e-6 * ref.max())


def test_normalize_volume_raises_quiet_audio_and_keeps_loud_audio():
    quiet = torch.full((1000,), 1e-3)
    db = 10 * torch.log10(normalize_volume(quiet).double().pow(2).mean())
    assert abs(db.item() + 30.0) < 1e-6
    loud = torch.full((1000,), 0.5)
    assert torch.equal(normalize_volume(loud), loud)
    silent = torch.zeros(10)
    assert torch.equal(normalize_volume(silent), silent)


def test_checkpoint_round_trip_gives_the_same_outputs(tiny_weights: Path):
    torch.manual_seed(0)
    reference = GE2EEncoder().eval()
    loaded = GE2EEncoder.from_pretrained(tiny_weights)
    mel = ge2e_mel(synth_tone(220.0, 0.5))[None]
    torch.testing.assert_close(loaded.embed(mel), reference.embed(mel))
    emb = loaded.embed(mel)
    assert emb.shape == (1, 256) and (emb >= 0).all()
    assert abs(emb.norm().item() - 1.0) < 1e-5
    outs = loaded.layer_outputs(mel)
    assert [o.shape[-1] for o in outs] == [256, 256, 256]


def test_layer_outputs_equal_a_stacked_lstm():
    """Running the layers one by one is the same network as resemblyzer's 3-layer LSTM."""
    torch.manual_seed(1)
    enc = GE2EEncoder().eval()
    stacked = torch.nn.LSTM(40, 256, 3, batch_first=True)
    stacked.load_state_dict(
        {
            f"{n}_l{k}": getattr(enc.layers[k], f"{n}_l0")
            for k in range(3)
            for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        }
    )
    mel = torch.rand(2, 30, 40)
    torch.testing.assert_close(enc.layer_outputs(mel)[-1], stacked(mel)[0])


def test_missing_or_foreign_checkpoint_is_a_one_line_config_error(tmp_path: Path, monkeypatch):
    with pytest.raises(ConfigError, match="does not exist"):
        find_weights(tmp_path / "nope.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"model_state": {"fc.weight": torch.zeros(2, 2)}}, foreign)
    with pytest.raises(ConfigError, match=r"foreign\.pt is not a GE2E checkpoint") as err:
        GE2EEncoder.from_pretrained(foreign)
    assert "\n" not in str(err.value)
    monkeypatch.setenv(WEIGHTS_ENV, str(foreign))
    assert find_weights() == foreign


def test_ge2e_stats_shape_layers_and_validation(tiny_weights: Path):
    cfg = FunctionalsConfig("ge2e_stats", layers=(2, 3), weights=str(tiny_weights))
    vec = compute_functionals(synth_tone(220.0, 0.4), 16000, cfg)
    assert vec.shape == (functionals_dim(cfg),) == (1024,)
    one = compute_functionals(
        synth_tone(220.0, 0.4),
        16000,
        FunctionalsConfig("ge2e_stats", layers=(3,), weights=str(tiny_weights)),
    )
    torch.testing.assert_close(one, vec[512:])  # layer 3's mean and std
    enc = GE2EEncoder.from_pretrained(tiny_weights)
    h = enc(torch.as_tensor(synth_tone(220.0, 0.4))[None]).hidden_states[1][0]
    torch.testing.assert_close(vec[:512], torch.cat([h.mean(0), h.std(0)]))  # layer 2
    with pytest.raises(ConfigError, match=r"functionals\.layers"):
        FunctionalsConfig("ge2e_stats", layers=(4,))
    with pytest.raises(ConfigError, match=r"functionals\.layers"):
        FunctionalsConfig("ge2e_stats", layers=())
    with pytest.raises(AudioError, match="16000 Hz"):
        compute_functionals(
            synth_tone(220.0, 0.4), 8000, FunctionalsConfig("ge2e_stats", sample_rate=8000)
        )


def test_cache_key_follows_the_weights_content(tmp_path: Path):
    path = tmp_path / "w.pt"
    torch.manual_seed(0)
    save_weights(GE2EEncoder(), path)
    cfg = FunctionalsConfig("ge2e_stats", weights=str(path))
    first = functionals_key(cfg)
    weights_digest.cache_clear()
    torch.manual_seed(1)
    save_weights(GE2EEncoder(), path)  # same path, new weights: cached rows must not be reused
    assert functionals_key(cfg) != first
    assert functionals_key(FunctionalsConfig("lld_stats"))["weights"] == ""


@pytest.mark.skipif(
    not HAS_RESEMBLYZER, reason="resemblyzer (ships the GE2E weights) not installed"
)
def test_pretrained_embeddings_separate_the_two_bundled_speakers():
    """Real weights: clips of one speaker are closer to each other than to the other speaker."""
    from vocalis.audio.io import load_audio
    from vocalis.testing import sample_manifest

    manifest = sample_manifest()
    enc = GE2EEncoder.from_pretrained()
    with torch.inference_mode():
        emb = torch.cat([enc.embed(ge2e_mel(load_audio(p, 16000))[None]) for p in manifest.paths])
    sim = emb @ emb.T
    spk = np.array(manifest.speakers)
    same = spk[:, None] == spk[None, :]
    off = ~np.eye(len(spk), dtype=bool)
    assert sim[torch.from_numpy(same & off)].mean() > sim[torch.from_numpy(~same)].mean() + 0.05


def test_ge2e_frame_features_align_with_mfcc_and_ignore_padding(tiny_weights: Path):
    from vocalis.features import FeatureConfig, extract

    cfg = FeatureConfig(name="ge2e", ge2e_weights=str(tiny_weights), ge2e_layer=1)
    a, b = synth_tone(220.0, 0.5), synth_tone(440.0, 0.8, amplitude=0.01)
    alone = extract(torch.as_tensor(a), cfg)
    mfcc = extract(torch.as_tensor(a), FeatureConfig(name="mfcc"))
    assert alone.shape == (256, 1 + len(a) // 160) and alone.shape[1] == mfcc.shape[1]
    batch = torch.zeros(2, len(b))
    batch[0, : len(a)], batch[1] = torch.as_tensor(a), torch.as_tensor(b)
    out = extract(batch, cfg, torch.tensor([len(a), len(b)]))
    torch.testing.assert_close(out[0, :, : alone.shape[1]], alone, atol=1e-5, rtol=1e-4)
    assert out[0, :, alone.shape[1] :].abs().max() == 0  # padded frames zeroed
    # the first layer's outputs are the input to the second: layer 2 differs
    deeper = extract(torch.as_tensor(a), FeatureConfig(name="ge2e", ge2e_weights=str(tiny_weights)))
    assert not torch.allclose(deeper, alone)


def test_ge2e_frame_extractor_is_frozen_and_checks_its_grid(tiny_weights: Path):
    from vocalis.features import FeatureConfig, build_extractor

    ext = build_extractor(FeatureConfig(name="ge2e", ge2e_weights=str(tiny_weights))).train()
    assert not ext.training and not any(p.requires_grad for p in ext.parameters())
    with pytest.raises(ConfigError, match="hop 160"):
        build_extractor(FeatureConfig(name="ge2e", hop_length=320, ge2e_weights=str(tiny_weights)))
    with pytest.raises(ConfigError, match="ge2e_layer"):
        FeatureConfig(name="ge2e", ge2e_layer=0)


def test_ge2e_feature_cache_key_follows_the_weights(tmp_path: Path):
    from vocalis.features.config import FeatureConfig, PipelineConfig, cache_identity

    path = tmp_path / "w.pt"
    torch.manual_seed(0)
    save_weights(GE2EEncoder(), path)
    pipeline = PipelineConfig(features=FeatureConfig(name="ge2e", ge2e_weights=str(path)))
    first = cache_identity(pipeline)
    weights_digest.cache_clear()
    torch.manual_seed(1)
    save_weights(GE2EEncoder(), path)
    assert cache_identity(pipeline) != first
    assert cache_identity(pipeline)["weights_identity"] == weights_digest(str(path))


def test_partial_checkpoints_load_only_the_layers_they_hold(tmp_path: Path):
    torch.manual_seed(2)
    two = GE2EEncoder(2)
    path = tmp_path / "two.pt"
    save_weights(two, path)
    loaded = GE2EEncoder.from_pretrained(path, n_layers=2)
    mel = torch.rand(1, 20, 40)
    torch.testing.assert_close(loaded.layer_outputs(mel)[1], two.layer_outputs(mel)[1])
    with pytest.raises(ConfigError, match="with 3 layers"):
        GE2EEncoder.from_pretrained(path, n_layers=3)
    with pytest.raises(ConfigError, match="needs all 3 layers"):
        loaded.embed(mel)


def test_layers_one_and_two_ship_with_vocalis(monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    bundled = find_weights(None, n_layers=2)
    assert bundled.name == BUNDLED_WEIGHTS and bundled.stat().st_size < 4 * 2**20
    enc = GE2EEncoder.from_pretrained(None, n_layers=2)
    assert len(enc.layers) == 2 and enc.linear is None
    if HAS_RESEMBLYZER:  # the very tensors of resemblyzer's pretrained.pt
        full = GE2EEncoder.from_pretrained(None, n_layers=3)
        for a, b in zip(enc.layers.parameters(), full.layers[:2].parameters(), strict=True):
            assert torch.equal(a, b)


def test_ge2e_implements_the_encoder_contract(tiny_weights: Path):
    enc = GE2EEncoder.from_pretrained(tiny_weights)
    assert (enc.sample_rate, enc.num_layers, enc.hidden_size, enc.frame_shift) == (
        16000,
        3,
        256,
        0.01,
    )
    assert enc.identity == weights_digest(str(tiny_weights))
    a, b = synth_tone(220.0, 0.5), synth_tone(440.0, 0.8, amplitude=0.01)
    batch = torch.zeros(2, len(b))
    batch[0, : len(a)], batch[1] = torch.as_tensor(a), torch.as_tensor(b)
    lengths = torch.tensor([len(a), len(b)])
    with torch.no_grad():
        out = enc(batch, lengths)
        alone = enc(torch.as_tensor(a)[None])
    assert out.lengths.tolist() == [1 + len(a) // 160, 1 + len(b) // 160]
    assert enc.frame_lengths(lengths).tolist() == out.lengths.tolist()
    assert [h.shape for h in out.hidden_states] == [(2, 1 + len(b) // 160, 256)] * 3
    n = int(out.lengths[0])
    assert alone.lengths.tolist() == [n]
    for k in (1, 2, 3):  # a padded item equals the item alone on its valid frames
        torch.testing.assert_close(
            out.hidden_states[k - 1][0, :n], alone.hidden_states[k - 1][0], atol=1e-5, rtol=1e-4
        )
    # the frames are the mel front end followed by the LSTM layers
    mel = ge2e_mel(torch.as_tensor(a))[None]
    torch.testing.assert_close(alone.last, enc.layer_outputs(mel)[-1])


def test_identity_follows_the_weights(tmp_path: Path):
    torch.manual_seed(0)
    first, second = GE2EEncoder(1), GE2EEncoder(1)
    assert first.identity != second.identity  # random weights: a hash of the tensors
    second.load_state_dict(first.state_dict())
    assert first.identity == second.identity and len(first.identity) == 64
    path = tmp_path / "one.pt"
    save_weights(first, path)
    assert GE2EEncoder.from_pretrained(path, n_layers=1).identity == weights_digest(str(path))


def test_ge2e_is_found_by_name(tiny_weights: Path):
    from vocalis.encoders import ENCODERS, load_encoder

    assert ENCODERS.get("ge2e") is GE2EEncoder
    enc = load_encoder("ge2e", str(tiny_weights), n_layers=2)
    assert isinstance(enc, GE2EEncoder) and enc.num_layers == 2 and not enc.training
