"""``PipelineConfig`` lives in the torch-free ``vocalis.features.config``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vocalis.errors import ConfigError


def test_pipeline_config_and_its_cache_key_import_no_torch():
    code = (
        "import sys\n"
        "from vocalis.audio.config import Tier0Config\n"
        "from vocalis.features import PipelineConfig\n"
        "from vocalis.features.cache import FeatureCache\n"
        "from vocalis.features.config import FeatureConfig\n"
        "from vocalis.config import from_dict\n"
        "p = from_dict(PipelineConfig, {'features': {'name': 'mfcc_pitch'}, "
        "'tier0': {'vad': True}})\n"
        "print(FeatureCache('memory://x').config_key(p)[1])\n"
        "print(sorted(m for m in ('torch', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    ).stdout.split()
    assert out[1] == "[]"
    from vocalis.audio import Tier0Config
    from vocalis.features.cache import FeatureCache
    from vocalis.features.config import FeatureConfig
    from vocalis.features.pipeline import PipelineConfig

    pipe = PipelineConfig(tier0=Tier0Config(vad=True), features=FeatureConfig(name="mfcc_pitch"))
    assert out[0] == FeatureCache("memory://y").config_key(pipe)[1]


def test_one_class_everywhere_and_the_same_checks():
    import vocalis.features as features
    from vocalis.features import config, pipeline
    from vocalis.features.config import FeatureConfig

    assert pipeline.PipelineConfig is config.PipelineConfig is features.PipelineConfig
    with pytest.raises(ConfigError, match="did you mean 'mfcc'"):
        config.PipelineConfig(features=FeatureConfig(name="mfc"))
    with pytest.raises(ConfigError, match="set both to the same rate"):
        config.PipelineConfig(features=FeatureConfig(name="mfcc", sample_rate=8000, f_max=4000))


def test_a_registered_extractor_name_is_accepted(monkeypatch):
    from vocalis.features import FEATURES, FeatureConfig, PipelineConfig

    name = "test-config-light-mfcc"
    monkeypatch.setitem(FEATURES._items, name, FEATURES.get("mfcc"))  # removed afterwards
    assert PipelineConfig(features=FeatureConfig(name=name)).features.name == name
