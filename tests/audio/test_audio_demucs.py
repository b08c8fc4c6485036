"""Demucs: the published dns64 checkpoint layout, lengths, resampling and weight loading."""

from __future__ import annotations

import math

import pytest
import torch

from vocalis.audio.demucs import (
    WEIGHTS_ENV,
    Demucs,
    DemucsConfig,
    default_weights,
    demucs_enhance,
    downsample2,
    load_demucs,
    upsample2,
)
from vocalis.errors import AudioError, ConfigError, ModelError


def _dns64_layout() -> list[tuple[str, tuple[int, ...]]]:
    """Keys and shapes of dns64-a7761ff99a7d5bb6.th, in state-dict order.

    Encoder i: Conv1d(c_in, h, 8, 4), ReLU, Conv1d(h, 2h, 1), GLU with
    h = 64 * 2**i and c_in = 1 then the previous h. Decoder j is the mirror of
    encoder 4 - j: Conv1d(h, 2h, 1), GLU, ConvTranspose1d(h, c_out, 8, 4). The
    causal model has a 2-layer unidirectional LSTM of width 1024, no projection.
    """
    keys: list[tuple[str, tuple[int, ...]]] = []
    hidden = [64, 128, 256, 512, 1024]
    ins = [1, 64, 128, 256, 512]
    for i, (h, c) in enumerate(zip(hidden, ins, strict=False)):
        keys += [
            (f"encoder.{i}.0.weight", (h, c, 8)),
            (f"encoder.{i}.0.bias", (h,)),
            (f"encoder.{i}.2.weight", (2 * h, h, 1)),
            (f"encoder.{i}.2.bias", (2 * h,)),
        ]
    for j in range(5):
        h, c = hidden[4 - j], ins[4 - j]
        keys += [
            (f"decoder.{j}.0.weight", (2 * h, h, 1)),
            (f"decoder.{j}.0.bias", (2 * h,)),
            (f"decoder.{j}.2.weight", (h, c, 8)),
            (f"decoder.{j}.2.bias", (c,)),
        ]
    for layer in range(2):
        keys += [
            (f"lstm.lstm.weight_ih_l{layer}", (4096, 1024)),
            (f"lstm.lstm.weight_hh_l{layer}", (4096, 1024)),
            (f"lstm.lstm.bias_ih_l{layer}", (4096,)),
            (f"lstm.lstm.bias_hh_l{layer}", (4096,)),
        ]
    return keys


@pytest.fixture(scope="module")
def dns64() -> Demucs:
    torch.manual_seed(0)
    return Demucs().eval()


def tiny(seed: int = 0) -> Demucs:
    torch.manual_seed(seed)
    return Demucs(DemucsConfig(hidden=4, depth=3)).eval()


def test_dns64_state_dict_matches_published_layout(dns64):
    got = [(k, tuple(v.shape)) for k, v in dns64.state_dict().items()]
    assert got == _dns64_layout()
    assert sum(p.numel() for p in dns64.parameters()) == 33_533_569


def test_dns64_random_init_runs_and_keeps_length(dns64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16000, generator=g)
    with torch.inference_mode():
        y = dns64(x)
    assert y.shape == x.shape and bool(torch.isfinite(y).all())
    with torch.inference_mode():
        yb = dns64(x[:4001].unsqueeze(0))
    assert yb.shape == (1, 4001)


@pytest.mark.parametrize("length", [1, 100, 257, 1000, 4095])
def test_output_length_equals_input_length(length):
    model = tiny()
    with torch.inference_mode():
        y = model(torch.randn(2, length))
        assert y.shape == (2, length) and bool(torch.isfinite(y).all())
        assert model(torch.randn(2, 1, length)).shape == (2, 1, length)


def test_valid_length_leaves_no_remainder():
    model = tiny()
    cfg = model.config
    for length in range(1, 400, 7):
        n = model.valid_length(length)
        assert n >= length
        m = n * cfg.resample
        for _ in range(cfg.depth):
            assert (m - cfg.kernel_size) % cfg.stride == 0
            m = (m - cfg.kernel_size) // cfg.stride + 1


def test_sinc_resampling_roundtrip_of_bandlimited_signal():
    t = torch.arange(4000) / 16000
    x = torch.sin(2 * math.pi * 300 * t).unsqueeze(0)
    up = upsample2(x)
    assert up.shape == (1, 8000)
    torch.testing.assert_close(up[:, ::2], x)  # original samples are kept
    back = downsample2(up)
    assert back.shape == x.shape
    torch.testing.assert_close(back[:, 200:-200], x[:, 200:-200], atol=1e-3, rtol=0)


def test_save_load_roundtrip(tmp_path):
    model = tiny(seed=1)
    path = tmp_path / "tiny.th"
    torch.save(model.state_dict(), path)
    loaded = load_demucs(path)
    assert loaded.config == model.config
    assert not loaded.training
    x = torch.randn(1, 3000)
    with torch.inference_mode():
        torch.testing.assert_close(loaded(x), model(x))
    # a denoiser training checkpoint stores the weights under "state"
    torch.save({"state": model.state_dict()}, tmp_path / "best.th")
    assert load_demucs(tmp_path / "best.th").config == model.config


def test_non_causal_layout_is_inferred(tmp_path):
    model = Demucs(DemucsConfig(hidden=4, depth=2, causal=False))
    assert "lstm.linear.weight" in model.state_dict()
    torch.save(model.state_dict(), tmp_path / "bi.th")
    assert load_demucs(tmp_path / "bi.th").config.causal is False


def test_missing_weights_say_where_to_put_them(tmp_path, monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    assert default_weights() is None
    with pytest.raises(AudioError) as err:
        load_demucs()
    msg = str(err.value)
    assert "dns64-a7761ff99a7d5bb6.th" in msg and WEIGHTS_ENV in msg
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in msg and "\n" not in msg
    with pytest.raises(AudioError, match=r"nowhere\.th"):
        load_demucs(tmp_path / "nowhere.th")


def test_weights_from_env_and_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(tiny().state_dict(), hub / "dns64-0123456789abcdef.th")
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    assert load_demucs().config.hidden == 4

    other = tmp_path / "mine.th"
    torch.save(Demucs(DemucsConfig(hidden=2, depth=2)).state_dict(), other)
    monkeypatch.setenv(WEIGHTS_ENV, str(other))
    assert load_demucs().config.hidden == 2


def test_not_a_demucs_checkpoint(tmp_path):
    path = tmp_path / "other.th"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(ModelError, match=r"other\.th"):
        load_demucs(path)
    (tmp_path / "junk.th").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match=r"junk\.th"):
        load_demucs(tmp_path / "junk.th")


def test_enhance_resamples_and_keeps_length(tmp_path, monkeypatch):
    from vocalis.audio.denoise import denoise

    path = tmp_path / "tiny.th"
    torch.save(tiny().state_dict(), path)
    x = torch.randn(22050) * 0.1
    y = demucs_enhance(x, 22050, weights=path)
    assert y.shape == x.shape and bool(torch.isfinite(y).all())
    torch.testing.assert_close(demucs_enhance(x, 22050, weights=path, dry=1.0), x)
    with pytest.raises(ConfigError, match="dry"):
        demucs_enhance(x, 22050, weights=path, dry=1.5)
    monkeypatch.setenv(WEIGHTS_ENV, str(path))
    assert denoise(x[:8000], 16000, "demucs").shape == (8000,)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_enhance_on_gpu_matches_cpu(tmp_path):
    path = tmp_path / "tiny.th"
    torch.save(tiny().state_dict(), path)
    x = torch.randn(16000) * 0.1
    cpu = demucs_enhance(x, 16000, weights=path)
    gpu = demucs_enhance(x.cuda(), 16000, weights=path, device="cuda")
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=1e-4)
