"""transformers encoders behind the contract, on tiny random models saved with save_pretrained."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

transformers = pytest.importorskip(
    "transformers", reason="transformers not installed (pip install 'vocalis[ssl]')"
)

from vocalis.encoders import load_encoder  # noqa: E402
from vocalis.encoders.hf import HFEncoder  # noqa: E402
from vocalis.errors import ConfigError, ModelError  # noqa: E402
from vocalis.testing import save_tiny_hf_encoder  # noqa: E402

#: (name, architecture, feature-encoder norm): both padding paths are covered.
KINDS = [
    ("wav2vec2_group", "wav2vec2", "group"),
    ("wavlm_layer", "wavlm", "layer"),
    ("hubert_layer", "hubert", "layer"),
]


def _save(folder: Path, arch: str, norm: str, seed: int = 0) -> Path:
    return save_tiny_hf_encoder(folder, arch, norm, seed)


@pytest.fixture(params=KINDS, ids=[k[0] for k in KINDS])
def saved(request, tmp_path: Path) -> Path:
    name, arch, norm = request.param
    return _save(tmp_path / name, arch, norm)


def test_a_tiny_model_is_small(saved: Path):
    size = sum(f.stat().st_size for f in saved.iterdir())
    assert size < 1_000_000


def test_contract_attributes_shapes_and_frame_rule(saved: Path):
    enc = HFEncoder.from_pretrained(saved)
    assert not enc.training
    assert (enc.sample_rate, enc.num_layers, enc.hidden_size, enc.frame_shift) == (
        16000,
        3,
        32,
        0.02,
    )
    assert enc.min_samples == 400  # 25 ms receptive field, no padding: T // 320 - ish frames
    assert enc.frame_lengths(torch.tensor([400, 719, 720, 16000])).tolist() == [1, 1, 2, 49]
    with torch.no_grad():
        for n in (400, 721, 5000):
            out = enc(torch.randn(1, n))
            assert [h.shape for h in out.hidden_states] == [(1, int(out.lengths[0]), 32)] * 3
            assert out.lengths.tolist() == enc.frame_lengths(torch.tensor([n])).tolist()


def test_outputs_are_the_models_hidden_states(saved: Path):
    enc = HFEncoder.from_pretrained(saved)
    model = transformers.AutoModel.from_pretrained(str(saved), local_files_only=True).eval()
    x = torch.randn(1, 4000)
    with torch.no_grad():
        ref = model(x, output_hidden_states=True).hidden_states
        out = enc(x)
    assert len(ref) == len(out.hidden_states)
    for a, b in zip(out.hidden_states, ref, strict=True):
        torch.testing.assert_close(a, b)


def test_a_padded_batch_equals_each_item_alone(saved: Path):
    enc = HFEncoder.from_pretrained(saved)
    g = torch.Generator().manual_seed(0)
    items = [0.1 * torch.randn(n, generator=g) for n in (6000, 2345, 4000)]
    lengths = torch.tensor([len(x) for x in items])
    batch = 10.0 * torch.randn(len(items), int(lengths.max()), generator=g)  # loud padding
    for i, x in enumerate(items):
        batch[i, : len(x)] = x
    with torch.no_grad():
        out = enc(batch, lengths)
        assert out.lengths.tolist() == enc.frame_lengths(lengths).tolist()
        for i, x in enumerate(items):
            alone = enc(x[None])
            n = int(out.lengths[i])
            assert alone.lengths.tolist() == [n]
            for a, b in zip(out.hidden_states, alone.hidden_states, strict=True):
                torch.testing.assert_close(a[i, :n], b[0], atol=1e-5, rtol=1e-5)


def test_normalisation_follows_the_preprocessor_config(tmp_path: Path):
    folder = _save(tmp_path / "m", "wav2vec2", "layer")
    assert not HFEncoder.from_pretrained(folder).normalize  # no preprocessor_config.json
    transformers.Wav2Vec2FeatureExtractor(do_normalize=True).save_pretrained(folder)
    enc = load_encoder("hf", str(folder))
    assert isinstance(enc, HFEncoder) and enc.normalize
    x = 0.01 * torch.randn(1, 3000) + 0.5
    with torch.no_grad():
        plain = HFEncoder.from_pretrained(folder, normalize=False)
        scaled = (x - x.mean()) / torch.sqrt(x.var(unbiased=False) + 1e-7)
        torch.testing.assert_close(enc(x).last, plain(scaled).last, atol=1e-5, rtol=1e-5)


def test_identity_is_the_content_of_the_folder(tmp_path: Path):
    a = _save(tmp_path / "a", "wavlm", "layer", seed=0)
    b = _save(tmp_path / "b", "wavlm", "layer", seed=0)
    c = _save(tmp_path / "c", "wavlm", "layer", seed=1)
    ids = [HFEncoder.from_pretrained(p).identity for p in (a, b, c)]
    assert ids[0] == ids[1] != ids[2] and ids[0].startswith("sha256:")


def test_missing_model_is_a_one_line_error_saying_where_and_how(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConfigError) as err:
        HFEncoder.from_pretrained("nobody/no-such-model")
    msg = str(err.value)
    assert "\n" not in msg and "'nobody/no-such-model'" in msg
    assert "Hugging Face cache" in msg and "huggingface-cli download nobody/no-such-model" in msg
    assert "save_pretrained" in msg
    # a path is a missing folder, not a model to download
    with pytest.raises(ConfigError) as err:
        HFEncoder.from_pretrained(tmp_path / "absent")
    msg = str(err.value)
    assert "\n" not in msg and f"no folder {tmp_path / 'absent'};" in msg
    assert "huggingface-cli" not in msg and "save_pretrained" in msg
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"has no config\.json"):
        HFEncoder.from_pretrained(tmp_path / "empty")
    with pytest.raises(ConfigError, match="no model given"):
        load_encoder("hf")


def test_missing_transformers_names_the_extra(saved: Path, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ConfigError, match=r"pip install 'vocalis\[ssl\]'"):
        HFEncoder.from_pretrained(saved)


def test_too_short_items_and_non_waveform_models_are_refused(saved: Path):
    enc = HFEncoder.from_pretrained(saved)
    with pytest.raises(ModelError, match=r"399 samples.*at least 400"):
        enc(torch.randn(2, 1000), torch.tensor([1000, 399]))

    class Spectrogram(torch.nn.Module):
        main_input_name = "input_features"
        config = enc.model.config

    with pytest.raises(ConfigError, match="takes 'input_features'"):
        HFEncoder(Spectrogram(), "x")


def test_training_mode_keeps_every_layer_and_replays(tmp_path: Path):
    """LayerDrop would drop hidden states (shifting the layer weights' inputs) and the
    model's own time masking draws from numpy's global generator: both are off."""
    folder = save_tiny_hf_encoder(tmp_path / "w", "wav2vec2", "layer", layerdrop=0.9)
    enc = load_encoder("hf", str(folder)).train()
    x, n = torch.randn(2, 6400), torch.tensor([6400, 4000])
    outs = []
    for _ in range(8):
        torch.manual_seed(0)
        outs.append(enc(x, n).hidden_states)
    assert all(len(h) == enc.num_layers for h in outs)
    for h in outs[1:]:
        torch.testing.assert_close(h[-1], outs[0][-1])  # same torch seed, same output
