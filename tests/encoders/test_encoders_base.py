"""The encoder contract: output container, input checks, registry, a torch-free import."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from vocalis.encoders.base import ENCODERS, EncoderOutput, PretrainedEncoder
from vocalis.errors import ConfigError, ModelError


class _Frames(PretrainedEncoder):
    """Means of 160-sample blocks (no padding): a stand-in encoder."""

    sample_rate, num_layers, hidden_size, frame_shift, identity = 16000, 2, 1, 0.01, "blocks"

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths.long(), 160, rounding_mode="floor")

    def forward(self, waveform, lengths=None):
        waveform, lengths = self.check_input(waveform, lengths)
        n = waveform.shape[1] // 160
        h = waveform[:, : n * 160].reshape(len(waveform), n, 160).mean(-1, keepdim=True)
        return EncoderOutput((h, 2 * h), self.frame_lengths(lengths))


def test_output_holds_every_layer_and_the_frame_counts():
    out = _Frames()(torch.ones(2, 480), torch.tensor([480, 200]))
    assert out.lengths.tolist() == [3, 1]
    assert len(out.hidden_states) == 2 and torch.equal(out.hidden_states[0] * 2, out.last)


def test_input_checks_are_one_line_model_errors():
    enc = _Frames()
    with pytest.raises(ModelError, match=r"batch \(B, T\)") as err:
        enc(torch.ones(480))
    assert "\n" not in str(err.value)
    with pytest.raises(ModelError, match="3 lengths for a batch of 2"):
        enc(torch.ones(2, 480), torch.tensor([1, 2, 3]))
    wav, lengths = enc.check_input(torch.ones(2, 320, dtype=torch.int16), None)
    assert wav.dtype == torch.float32 and lengths.tolist() == [320, 320]


def test_registry_names_unknown_encoders():
    from vocalis.encoders import load_encoder

    assert "ge2e" in ENCODERS and "hf" in ENCODERS
    with pytest.raises(ConfigError, match=r"unknown encoder 'ge2f'.*did you mean 'ge2e'"):
        load_encoder("ge2f")


def test_importing_the_package_is_cheap():
    probe = (
        "import sys, vocalis, vocalis.encoders\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_registering_the_builtins_does_not_import_transformers():
    probe = (
        "import sys, vocalis.encoders as e\n"
        "assert e.ENCODERS.names() == ['ge2e', 'hf'], e.ENCODERS.names()\n"
        "print('transformers' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False"
