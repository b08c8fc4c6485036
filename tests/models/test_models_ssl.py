"""model=ssl: an encoder through the contract, layer mix, pooling, MLP; freezing and tiers."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from vocalis.errors import ConfigError
from vocalis.models import SSL, build_model
from vocalis.testing import synth_tone

needs_transformers = pytest.mark.skipif(
    importlib.util.find_spec("transformers") is None,
    reason="transformers not installed (pip install 'vocalis[ssl]')",
)


def _ssl(encoder: dict | None = None, **params) -> SSL:
    """GE2E layers 1-2 (the weights shipped with Vocalis), a small MLP."""
    torch.manual_seed(0)
    params = {"mlp": [16, 8], **params}
    return build_model("ssl", {"encoder": {"layers": [1, 2], **(encoder or {})}, **params}, 1, 3)


@pytest.fixture(scope="module")
def tiny_wavlm(tmp_path_factory) -> str:
    pytest.importorskip("transformers")
    from vocalis.testing import save_tiny_hf_encoder

    return str(save_tiny_hf_encoder(tmp_path_factory.mktemp("ssl") / "wavlm", "wavlm", "layer"))


def test_shapes_and_the_seeds_mlp():
    model = _ssl(mlp=[512, 256]).eval()
    kinds = [type(m).__name__ for m in model.mlp]
    assert kinds == ["Linear", "BatchNorm", "ReLU", "Dropout"] * 2
    assert [model.mlp[0].in_features, model.mlp[0].out_features, model.mlp[4].out_features] == [
        256,
        512,
        256,
    ]
    out = model(torch.randn(2, 1, 4000), torch.tensor([4000, 3000]))
    assert out.logits.shape == (2, 3) and out.embedding.shape == (2, 256)
    model.train()  # a one-item training batch (an epoch's last) is normalised, not refused
    one = torch.randn(1, 1, 4000)
    assert model(one, torch.tensor([4000])).logits.shape == (1, 3)
    assert torch.equal(model.mlp[1].running_mean, torch.zeros(512))  # statistics untouched


def test_standardize_z_scores_the_pooled_vector_for_a_linear_head():
    model = _ssl(pooling="stats", standardize=True, mlp=[])
    bn = model.standardize
    assert isinstance(bn, torch.nn.BatchNorm1d) and bn.weight is None  # no affine weights
    assert len(model.mlp) == 0 and model.embedding_dim == 512  # linear on 256 means + stds
    wavs = torch.stack([torch.as_tensor(synth_tone(f, 0.4)) for f in (150.0, 220.0, 300.0, 410.0)])
    x, lengths = wavs[:, None], torch.full((4,), wavs.shape[1])
    model.train()
    emb = model.encode(x, lengths)  # training: this batch's statistics
    assert emb.mean(0).abs().max() < 1e-4 and not torch.equal(bn.running_mean, torch.zeros(512))
    model.eval()
    with torch.no_grad():
        out = model.encoder(wavs, lengths)
        pooled = model.pooling(model.mix(out).transpose(1, 2), out.lengths)
        z = (pooled - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps)
        assert torch.allclose(model.encode(x, lengths), z, atol=1e-5)  # running statistics
        assert torch.allclose(model.encode(x[:1], lengths[:1]), z[:1], atol=1e-5)  # item alone


@pytest.mark.parametrize("encoder", [{}, {"layer_weights": "mean"}, {"layers": [-1]}])
def test_a_padded_batch_equals_each_item_alone(encoder):
    model = _ssl({"layers": [1, 2], **encoder} if "layers" not in encoder else encoder).eval()
    a, b = synth_tone(200.0, 0.5), synth_tone(330.0, 0.3)
    batch = 5.0 * torch.randn(2, 1, len(a))  # loud noise in the padding: any leak shows
    batch[0, 0], batch[1, 0, : len(b)] = torch.as_tensor(a), torch.as_tensor(b)
    with torch.no_grad():
        both = model(batch, torch.tensor([len(a), len(b)])).logits
        alone = model(torch.as_tensor(b)[None, None], torch.tensor([len(b)])).logits
    torch.testing.assert_close(both[1], alone[0], atol=1e-5, rtol=1e-5)


def test_learned_layer_weights_are_a_softmax_and_train():
    model = _ssl()
    assert model.mix.logits is not None
    torch.testing.assert_close(model.mix.weights, torch.tensor([0.5, 0.5]))
    model(torch.randn(2, 1, 3200), torch.tensor([3200, 3200])).logits.sum().backward()
    assert model.mix.logits.grad is not None and model.mix.logits.grad.abs().sum() > 0
    assert _ssl({"layer_weights": "mean"}).mix.logits is None
    assert _ssl({"layers": [2]}).mix.logits is None  # one layer: itself


def test_layer_weights_start_where_layer_weights_init_says():
    model = _ssl({"layer_weights_init": [1.0, 3.0]})
    torch.testing.assert_close(model.mix.weights, torch.tensor([0.25, 0.75]))
    model(torch.randn(2, 1, 3200), torch.tensor([3200, 3200])).logits.sum().backward()
    assert model.mix.logits.grad.abs().sum() > 0  # still learned
    # the mix is the weighted sum of the layers with those starting weights
    hidden = [torch.randn(2, 5, 4), torch.randn(2, 5, 4)]
    torch.testing.assert_close(model.mix(hidden), 0.25 * hidden[0] + 0.75 * hidden[1])


def test_freezing_follows_the_epoch_and_the_tiers_cover_every_parameter_once():
    model = _ssl({"freeze_layers": 1, "unfreeze_after_epochs": 2})
    first, second = model.encoder.blocks
    assert not any(p.requires_grad for p in first.parameters())
    assert all(p.requires_grad for p in second.parameters())
    tiers = model.parameter_tiers()
    ids = [id(p) for ps in tiers.values() for p in ps]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    assert {id(p) for p in tiers["frozen"]} == {id(p) for p in first.parameters()}
    assert {id(p) for p in tiers["encoder"]} == {id(p) for p in second.parameters()}
    model.start_epoch(1)
    assert not any(p.requires_grad for p in first.parameters())
    model.start_epoch(2)
    assert all(p.requires_grad for p in model.encoder.parameters())
    model(torch.randn(1, 1, 3200), torch.tensor([3200])).logits.sum().backward()
    assert first.weight_ih_l0.grad is not None
    everything = _ssl({"freeze_layers": -1})
    assert not any(p.requires_grad for p in everything.encoder.parameters())
    assert all(p.requires_grad for p in everything.mlp.parameters())


def test_bad_settings_are_one_line_config_errors():
    with pytest.raises(ConfigError, match="takes the waveform"):
        build_model("ssl", {"encoder": {"layers": [1]}}, 40, 3)
    with pytest.raises(ConfigError, match=r"model\.params\.encoder\.freeze_layers.*at most 2"):
        _ssl({"freeze_layers": 3})
    with pytest.raises(ConfigError, match="encoder layer 4: GE2EEncoder has layers 1 to 3"):
        _ssl({"layers": [4]})
    with pytest.raises(ConfigError, match=r"model\.params\.encoder\.layer_weights"):
        _ssl({"layer_weights": "softmax"})
    for bad in ({"layer_weights_init": [1.0]}, {"layer_weights_init": [1.0, 0.0]}):
        with pytest.raises(ConfigError, match=r"model\.params\.encoder\.layer_weights_init"):
            _ssl(bad)
    with pytest.raises(ConfigError, match=r"layer_weights_init.*layer_weights: learned"):
        _ssl({"layer_weights": "mean", "layer_weights_init": [1.0, 2.0]})
    with pytest.raises(ConfigError, match=r"model\.params\.mlp"):
        _ssl(mlp=[0])


def test_overfits_a_handful_of_utterances():
    """Low and high tones are told apart after a few steps with the encoder trained."""
    torch.manual_seed(0)
    model = build_model(
        "ssl", {"encoder": {"layers": [1, 2]}, "mlp": [32], "mlp_dropout": 0.0}, 1, 2
    )
    clips = [synth_tone(f, 0.4, amplitude=0.3) for f in (120.0, 150.0, 900.0, 1100.0)]
    x = torch.stack([torch.as_tensor(c) for c in clips])[:, None]
    y = torch.tensor([0, 0, 1, 1])
    lengths = torch.full((4,), x.shape[-1])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x, lengths).logits, y)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        assert model(x, lengths).logits.argmax(1).tolist() == [0, 0, 1, 1]
    assert loss.item() < 0.1


def test_ge2e_gradient_checkpointing_gives_the_same_gradients():
    x, n = torch.randn(2, 1, 3200), torch.tensor([3200, 2000])
    grads = []
    for on in (False, True):
        model = _ssl({}, mlp_dropout=0.0).train()
        model.set_gradient_checkpointing(on)
        model(x, n).logits.sum().backward()
        grads.append(model.encoder.blocks[0].weight_hh_l0.grad)
    torch.testing.assert_close(grads[0], grads[1])


@needs_transformers
def test_hf_encoder_parts_freeze_and_checkpoint(tiny_wavlm: str):
    torch.manual_seed(0)
    params = {"source": tiny_wavlm, "freeze_layers": 1}
    model = build_model("ssl", {"encoder": params, "mlp": [8]}, 1, 2)
    model.set_gradient_checkpointing(True)
    enc = model.encoder
    assert not any(p.requires_grad for p in enc.feature_encoder.parameters())
    assert not any(p.requires_grad for p in enc.blocks[0].parameters())
    assert all(p.requires_grad for p in enc.blocks[1].parameters())
    assert model.mix.logits.shape == (3,)  # all hidden states: input + 2 layers
    assert any(getattr(m, "gradient_checkpointing", False) for m in enc.model.modules())
    a, b = synth_tone(200.0, 0.5), synth_tone(330.0, 0.3)
    batch = torch.zeros(2, 1, len(a))
    batch[0, 0], batch[1, 0, : len(b)] = torch.as_tensor(a), torch.as_tensor(b)
    model.eval()
    with torch.no_grad():
        both = model(batch, torch.tensor([len(a), len(b)])).logits
        alone = model(torch.as_tensor(b)[None, None], torch.tensor([len(b)])).logits
    torch.testing.assert_close(both[1], alone[0], atol=1e-5, rtol=1e-5)
    model.train()  # checkpointed backward: gradients reach the trainable layers only
    model(batch, torch.tensor([len(a), len(b)])).logits.sum().backward()
    assert all(p.grad is None for p in enc.blocks[0].parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.blocks[1].parameters())
    with pytest.raises(ConfigError, match="at most 2"):
        build_model("ssl", {"encoder": {"source": tiny_wavlm, "freeze_layers": 5}}, 1, 2)
