"""``ptm`` / ``ptm_<mode>``: every encoder layer stacked, alone or before handcrafted features."""

from __future__ import annotations

import pytest
import torch

from vocalis.errors import ConfigError
from vocalis.features import build_extractor, extract
from vocalis.features.config import FeatureConfig, PipelineConfig, cache_identity
from vocalis.testing import synth_tone

torch.set_num_threads(1)


def _pad(*clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(c) for c in clips])
    return torch.nn.utils.rnn.pad_sequence(list(clips), batch_first=True), lengths


def test_ge2e_stack_is_the_layers_then_the_handcrafted_features():
    cfg = FeatureConfig(name="ptm_mfcc_pitch", encoder_layers=(1, 2, 3))
    ext = build_extractor(cfg)
    assert ext.layout == (3, 256, 41) and ext.feature_dim == 3 * 256 + 41
    a = torch.as_tensor(synth_tone(220.0, 0.6))
    b = torch.as_tensor(synth_tone(330.0, 0.35))
    batch, lengths = _pad(a, b)
    out = ext(batch, lengths)
    alone = ext(b)
    torch.testing.assert_close(out[1, :, : alone.shape[1]], alone, atol=1e-5, rtol=1e-5)
    for layer in (1, 2, 3):  # block k of 256 channels is GE2E layer k
        ge2e = extract(a, FeatureConfig(name="ge2e", ge2e_layer=layer))
        torch.testing.assert_close(out[0, 256 * (layer - 1) : 256 * layer, : ge2e.shape[1]], ge2e)
    hand = extract(a, FeatureConfig(name="mfcc_pitch"))
    torch.testing.assert_close(out[0, 768:, : hand.shape[1]], hand)
    assert build_extractor(FeatureConfig(name="ptm", encoder_layers=(1, 2, 3))).feature_dim == 768


def test_cache_key_holds_the_layers_and_the_weights():
    a = cache_identity(PipelineConfig(features=FeatureConfig(name="ptm", encoder_layers=(1, 2))))
    b = cache_identity(PipelineConfig(features=FeatureConfig(name="ptm", encoder_layers=(1, 3))))
    assert a != b and a["weights_identity"] and a["pipeline"]["features"]["encoder_layers"]


def test_layer_weights_are_the_models_job():
    with pytest.raises(ConfigError, match="leave encoder_layer_weights empty"):
        build_extractor(
            FeatureConfig(name="ptm", encoder_layers=(1, 2), encoder_layer_weights=(1.0, 1.0))
        )


def test_hf_encoder_frames_are_put_on_the_10_ms_grid(tmp_path):
    pytest.importorskip("transformers")
    from vocalis.encoders import open_encoder
    from vocalis.testing import save_tiny_hf_encoder

    hf = str(save_tiny_hf_encoder(tmp_path / "w2v", "wav2vec2", "group"))
    ext = build_extractor(FeatureConfig(name="ptm_pitch_only", encoder_source=hf,
                                        encoder_layers=(0, 1, 2)))  # fmt: skip
    wav = torch.as_tensor(synth_tone(220.0, 0.5))
    out = ext(wav)
    h = ext.layout[1]
    assert ext.layout == (3, h, 1) and out.shape == (3 * h + 1, 1 + len(wav) // 160)
    with torch.no_grad():
        states = open_encoder(hf)(wav[None]).hidden_states
    for k in (0, 1, 7, 30):  # 10 ms frame k reads the 20 ms frame k // 2
        torch.testing.assert_close(out[h : 2 * h, k], states[1][0, min(k // 2, 23)])
    with pytest.raises(ConfigError, match=r"features\.hop_length=320"):
        build_extractor(FeatureConfig(name="ptm", encoder_source=hf, encoder_layers=(0, 1)))
