"""The augment section: group files, overrides, one-line errors, the old train.augment keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from vocalis.augment.config import AugmentConfig
from vocalis.config import from_dict
from vocalis.errors import ConfigError
from vocalis.training import load_config

GROUP = Path(__file__).resolve().parents[2] / "configs" / "augment"


@pytest.mark.parametrize("name", sorted(p.stem for p in GROUP.glob("*.yaml")))
def test_every_shipped_augment_group_loads(name):
    cfg = load_config(None, [f"augment={name}"])
    assert isinstance(cfg.augment, AugmentConfig)


def test_issue_overrides_apply_on_top_of_the_default_chain():
    cfg = load_config(
        None,
        [
            "augment=waveform_default",
            "augment.speed.p=0.3",
            "augment.pitch.max_semitones=2",
            "augment.noise.min_snr_db=10",
        ],
    )
    a = cfg.augment
    assert (a.speed.p, a.pitch.max_semitones, a.noise.min_snr_db) == (0.3, 2.0, 10.0)
    assert a.waveform_active and a.active()[:2] == ["shift", "speed"]
    assert a.spec_mask.p == 1.0  # SpecAugment stays in the chain


def test_fixed_speed_rates_replace_the_range_in_the_config_and_the_log_line():
    cfg = load_config(None, ["augment.speed.p=0.5", "augment.speed.rates=[0.9,1.1]"])
    assert cfg.augment.speed.rates == (0.9, 1.1)
    assert cfg.augment.describe().startswith("speed(p=0.5, rates=(0.9, 1.1))")
    ranged = load_config(None, ["augment.speed.p=0.5"]).augment
    assert ranged.speed.rates == () and "speed(p=0.5, min_rate=0.9, max_rate=1.1)" in (
        ranged.describe()
    )


def test_recipes_keep_their_augmentation():
    assert load_config("emodb_tier1").augment.active() == ["spec_mask"]
    ecapa = load_config("emodb_ecapa").augment.spec_mask
    assert (ecapa.time_mask_frames, ecapa.freq_mask_bins) == (30, 10)
    assert load_config("emodb_ge2e_tier1").augment.active() == []
    assert load_config(None).augment.active() == ["spec_mask"]  # augment=default


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("augment.sped.p=1", "unknown key 'augment.sped' (did you mean 'speed'?)"),
        ("augment.pitch.max_semitone=2", "(did you mean 'max_semitones'?)"),
        ("augment.noise.min_snr_db=50", "augment.noise.min_snr_db: got 50.0, expected <= max"),
        ("augment.gain.p=1.5", "augment.gain.p: got 1.5, expected a probability"),
        ("augment.speed.min_rate=0", "augment.speed.min_rate: got 0.0, expected a rate >= 0.25"),
        ("augment.speed.rates=[0.9,5]", "augment.speed.rates: got 5.0, expected a rate <= 4.0"),
        ("augment.speed.rates=fast", "augment.speed.rates: got 'fast', expected a list"),
        ("augment=waveform_defualt", "(did you mean 'waveform_default'?)"),
        ("train.augment.specaugment=false", "train.augment write: augment.spec_mask.p=0"),
        ("train.augment.mixup_alpha=0.2", "augment.mixup.p=1 augment.mixup.alpha=0.2"),
    ],
)
def test_bad_augment_settings_are_one_line_errors(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    text = str(err.value)
    assert message in text and "\n" not in text


def test_both_mixups_are_refused():
    with pytest.raises(ConfigError, match="not both"):
        from_dict(AugmentConfig, {"mixup": {"p": 1}, "file_mixup": {"p": 0.5}}, where="augment")


def test_cli_takes_augment_overrides_and_reports_a_bad_name(capsys):
    from vocalis.cli.main import main

    assert main(["config", "show", "augment=waveform_default", "augment.speed.p=0.3"]) == 0
    shown = capsys.readouterr().out
    assert "augment:" in shown and "p: 0.3" in shown
    assert main(["config", "show", "augment.pich.p=0.3"]) != 0
    err = capsys.readouterr().err.strip()
    assert "did you mean 'pitch'" in err and len(err.splitlines()) == 1
