"""The torch-free tier-0 config and the lazy ``vocalis.audio`` package."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vocalis.errors import ConfigError


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    return eval(out.stdout.strip().splitlines()[-1])  # a list literal we printed


def test_package_and_config_import_neither_torch_nor_numpy():
    code = (
        "import vocalis.audio\n"
        "from vocalis.audio import Tier0Config\n"
        "cfg = Tier0Config(sample_rate=8000, denoise='spectral', vad=True, vad_pad_ms=10)\n"
        "assert cfg.denoise == 'spectral'"
    )
    assert _loaded_after(code) == []
    assert _loaded_after("from vocalis.audio import run_tier0") == ["numpy", "torch"]


def test_names_are_the_objects_of_their_modules():
    import vocalis.audio as audio
    from vocalis.audio import Tier0Config, VADConfig, config, denoise, io, run_tier0, tier0, vad
    from vocalis.audio.denoise import DENOISERS

    assert Tier0Config is config.Tier0Config is tier0.Tier0Config
    assert VADConfig is vad.VADConfig and run_tier0 is tier0.run_tier0
    assert audio.decode is io.decode and audio.DENOISERS is DENOISERS
    # the function, not the submodule of the same name (as with the eager package)
    assert callable(denoise) and audio.denoise is denoise is sys.modules[denoise.__module__].denoise
    assert set(audio.__all__) <= set(dir(audio))
    for name in audio.__all__:
        assert getattr(audio, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        audio.nope  # noqa: B018


@pytest.mark.parametrize(
    ("field", "value", "vad_field"),
    [
        ("vad_threshold", 0.0, "threshold"),
        ("vad_threshold", 1.5, "threshold"),
        ("vad_min_speech_ms", -1, "min_speech_ms"),
        ("vad_min_silence_ms", 2.5, "min_silence_ms"),
        ("vad_pad_ms", True, "speech_pad_ms"),
        ("vad_pad_ms", 70_000, "speech_pad_ms"),
    ],
)
def test_vad_fields_are_checked_like_vadconfig(field, value, vad_field):
    from vocalis.audio import Tier0Config, VADConfig

    with pytest.raises(ConfigError) as ours:
        Tier0Config(**{field: value})
    with pytest.raises(ConfigError) as theirs:
        VADConfig(**{vad_field: value})
    assert str(ours.value) == str(theirs.value)


def test_denoiser_names_builtin_registered_and_unknown(monkeypatch):
    from vocalis.audio import DENOISERS, Tier0Config
    from vocalis.audio.config import BUILTIN_DENOISERS

    assert tuple(DENOISERS.names()) == BUILTIN_DENOISERS
    for name in BUILTIN_DENOISERS:
        assert Tier0Config(denoise=name).denoise == name
    with pytest.raises(ConfigError, match="did you mean 'spectral'"):
        Tier0Config(denoise="spectal")
    name = "test-audio-config-identity"
    monkeypatch.setitem(DENOISERS._items, name, lambda wav, sample_rate: wav)  # undone after
    assert Tier0Config(denoise=name).denoise == name


def test_vad_config_is_built_from_the_fields():
    from vocalis.audio import Tier0Config, VADConfig

    vad = Tier0Config(vad_threshold=0.3, vad_min_speech_ms=100, vad_pad_ms=5).vad_config()
    assert vad == VADConfig(threshold=0.3, min_speech_ms=100, speech_pad_ms=5)
