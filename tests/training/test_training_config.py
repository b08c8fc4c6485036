"""Config composition, overrides, typo suggestions and the shipped recipes."""

from __future__ import annotations

from pathlib import Path

import pytest

from vocalis.errors import ConfigError
from vocalis.training.config import compose, config_diff, config_to_yaml, load_config

ROOT = Path(__file__).resolve().parents[2] / "configs"
ALL_RECIPES = sorted((ROOT / "recipes").glob("*.yaml"))
#: Neural recipes; the ensemble ones (``kind: ensemble``) have their tests in tests/ensemble.
RECIPES = [p for p in ALL_RECIPES if "kind: ensemble" not in p.read_text()]


def test_defaults_compose_groups():
    cfg = load_config(None, [])
    assert cfg.model.name == "tier1"
    assert cfg.features.extractor.name == "mfcc"
    assert cfg.dataset.val_protocol == "speaker"
    assert cfg.dataset.val_fraction == 0.2
    assert cfg.train.monitor == "val_uar" and cfg.train.mode == "max"
    assert cfg.train.grad_clip == 1.0
    # tier1/extractor params are expanded to every default, so the saved config is complete
    assert cfg.model.params.lstm_hidden == 128 and type(cfg.model.params).__name__ == "Tier1Config"
    assert cfg.features.extractor.hop_length == 160


#: recipes that reproduce a seed whose validation split is stratified, not by speaker
SEED_STRATIFIED_VALIDATION = {"emodb_ecapa_s0", "emodb_ecapa_s1"}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.stem)
def test_every_recipe_loads(recipe):
    cfg = load_config(recipe, [])
    assert cfg.dataset.manifest.startswith("work/")
    if cfg.dataset.label_column == "speaker":
        # closed-set speaker identification validates on utterances of the training
        # speakers; verification is scored on held-out speakers (vocalis sv score)
        assert cfg.dataset.val_protocol == "stratified"
    elif recipe.stem in SEED_STRATIFIED_VALIDATION:
        # the seed's own protocol: 20 % stratified validation of the training speakers
        # (the LOSO test speaker stays unseen; only model selection is speaker-dependent)
        assert cfg.dataset.val_protocol == "stratified" and cfg.dataset.val_fraction == 0.2
    else:
        assert cfg.dataset.val_protocol == "speaker"


def test_recipe_body_overrides_groups_and_cli_overrides_recipe():
    cfg = load_config(ROOT / "recipes" / "emodb_tier1.yaml", ["train.epochs=7", "train.lr=3e-4"])
    assert cfg.dataset.name == "emodb"
    assert cfg.train.epochs == 7 and cfg.train.lr == pytest.approx(3e-4)
    assert cfg.train.class_weights == "auto"  # from train/default.yaml


def test_group_choice_swaps_a_whole_section():
    cfg = load_config(ROOT / "recipes" / "emodb_tier1.yaml", ["model=ecapa_c512"])
    assert cfg.model.name == "ecapa"
    assert cfg.model.params.preset == "c512"
    # a bare registered name with no YAML file is a valid choice too
    assert load_config(None, ["features=fbank"]).features.extractor.name == "fbank"


def test_typo_in_override_suggests_the_key():
    with pytest.raises(ConfigError, match=r"train\.epoch.*did you mean 'epochs'"):
        load_config(None, ["train.epoch=3"])
    with pytest.raises(ConfigError, match=r"did you mean 'lstm_hidden'"):
        load_config(None, ["model.params.lstm_hiden=3"])
    with pytest.raises(ConfigError, match=r"did you mean 'train'"):
        load_config(None, ["trian=default"])


def test_bad_values_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"train\.lr"):
        load_config(None, ["train.lr=-1"])
    with pytest.raises(ConfigError, match="val_fraction"):
        load_config(None, ["dataset.val_fraction=1.5"])
    with pytest.raises(ConfigError, match=r"unknown model 'ecapaa'.*did you mean 'ecapa'"):
        load_config(None, ["model=ecapaa"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, ["train.lr"])


def test_unknown_group_file_lists_available(tmp_path):
    with pytest.raises(ConfigError, match="available: default"):
        load_config(None, ["train=defualt"])


def test_recipe_with_unknown_section(tmp_path):
    bad = tmp_path / "r.yaml"
    bad.write_text("defaults:\n  - model: tier1\ntrian:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match="did you mean 'train'"):
        compose(bad, [], root=ROOT)


def test_yaml_roundtrip_and_diff(tmp_path):
    import yaml

    cfg = load_config(None, ["train.epochs=4"])
    text = config_to_yaml(cfg)
    again = load_config(None, [])
    data = yaml.safe_load(text)
    assert config_diff(data, yaml.safe_load(config_to_yaml(again))) == ["train.epochs"]


def test_config_show_cli(capsys):
    from vocalis.cli.main import main

    assert main(["config", "show", "model=ecapa", "train.lr=0.5"]) == 0
    out = capsys.readouterr().out
    assert "name: ecapa" in out and "lr: 0.5" in out and "embedding_dim: 192" in out
    assert main(["config", "show", "train.lrr=1"]) == 1
    assert "did you mean 'lr'" in capsys.readouterr().err


def test_an_ensemble_recipe_is_refused_with_the_command_to_use():
    ensembles = [p for p in ALL_RECIPES if p not in RECIPES]
    assert ensembles, "the shipped ensemble recipes are expected in configs/recipes"
    with pytest.raises(ConfigError, match="vocalis loso --config"):
        load_config(ensembles[0], [])
