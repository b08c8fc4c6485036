"""One loader for every recipe kind: hydra-composed groups, overrides, typed sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from vocalis.audio.config import Tier0Config
from vocalis.config import compose_groups, find_recipe, from_dict
from vocalis.errors import ConfigError, ConfigValueError
from vocalis.features.config import FeatureConfig
from vocalis.training.config import ExperimentConfig, FeaturesConfig, load_config, load_recipe

ROOT = Path(__file__).resolve().parents[1] / "configs"


def test_a_recipe_is_found_by_name_or_path():
    assert find_recipe("emodb_tier1").resolve() == ROOT / "recipes" / "emodb_tier1.yaml"
    assert load_config("emodb_tier1") == load_config(ROOT / "recipes" / "emodb_tier1.yaml")
    with pytest.raises(ConfigError, match=r"recipe 'emodb_tier11'.*did you mean 'emodb_tier1'"):
        load_config("emodb_tier11")
    with pytest.raises(ConfigError, match="file not found"):
        load_config("nowhere/r.yaml")


def test_the_features_section_is_typed_all_the_way_down():
    cfg = load_config(None, ["features=fbank", "features.extractor.n_fbank=40"])
    assert isinstance(cfg.features.tier0, Tier0Config)
    assert isinstance(cfg.features.extractor, FeatureConfig)
    assert cfg.features.extractor.n_fbank == 40 and cfg.features.pipeline.features.name == "fbank"
    with pytest.raises(ConfigError, match=r"features\.extractor\.n_fbankk.*did you mean 'n_fbank'"):
        load_config(None, ["features.extractor.n_fbankk=3"])
    with pytest.raises(ConfigError, match="set both to the same rate"):
        from_dict(FeaturesConfig, {"tier0": {"sample_rate": 8000}})


def test_a_flow_mapping_without_spaces_is_told_how_yaml_reads_it():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["train.lr_tiers={frozen:0.5,encoder: 0.1}"])
    assert str(err.value) == (
        "unknown key 'train.lr_tiers.frozen:0.5' (YAML needs a space after the colon: "
        "'frozen: 0.5'); valid keys: frozen, encoder, head"
    )
    cfg = load_config(None, ["train.lr_tiers={frozen: 0.5, encoder: 0.1}"])
    assert (cfg.train.lr_tiers.frozen, cfg.train.lr_tiers.encoder) == (0.5, 0.1)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (  # an encoder setting guessed under train
            "train.unfreeze_after_epochs=2",
            "unknown key 'train.unfreeze_after_epochs' "
            "(did you mean 'model.encoder.unfreeze_after_epochs'?)",
        ),
        (  # a training setting guessed under the encoder (the shorthand and the full path)
            "model.encoder.gradient_checkpointing=true",
            "unknown key 'model.encoder.gradient_checkpointing' "
            "(did you mean 'train.gradient_checkpointing'?)",
        ),
        (
            "model.params.encoder.lr=1",
            "unknown key 'model.encoder.lr' (did you mean 'train.lr'?)",
        ),
        (  # two sections have it: both are named
            "augment.speed.min_snr_db=5",
            "unknown key 'augment.speed.min_snr_db' "
            "(did you mean 'augment.noise.min_snr_db' or 'augment.spec_noise.min_snr_db'?)",
        ),
    ],
)
def test_a_key_of_another_section_is_named_where_it_lives(override, message):
    with pytest.raises(ConfigError) as err:
        load_config(None, ["model=ssl", override])
    assert str(err.value) == message
    good = override.replace("train.unfreeze", "model.encoder.unfreeze")
    if good != override:  # the suggestion is a key the loader takes
        encoder = load_config(None, ["model=ssl", good]).model.params.encoder
        assert encoder.unfreeze_after_epochs == 2


def test_a_key_no_section_has_keeps_the_nearest_key_of_its_own_section():
    with pytest.raises(ConfigError, match=r"^unknown key 'train.epoch' \(did you mean 'epochs'"):
        load_config(None, ["model=ssl", "train.epoch=3"])
    with pytest.raises(ConfigError, match=r"^unknown key 'model\.params\.encoder\.nope'"):
        load_config(None, ["model=ssl", "model.encoder.nope=3"])


def test_a_recipe_given_where_an_override_goes_is_told_to_use_config():
    for item in ("emodb_tier1", "configs/recipes/emodb_tier1.yaml"):
        with pytest.raises(ConfigError) as err:
            load_config(None, [item])
        assert str(err.value) == (
            f"override '{item}': expected key=value, e.g. train.epochs=30; "
            f"a recipe is given as --config {item}"
        )
    with pytest.raises(ConfigError) as err:  # not a recipe: no hint
        load_config(None, ["epochs"])
    assert str(err.value) == "override 'epochs': expected key=value, e.g. train.epochs=30"


def test_model_params_errors_name_the_key_the_value_and_what_is_allowed():
    with pytest.raises(ConfigError) as err:
        load_config(None, ["model.params.kernel_size=4"])
    assert str(err.value) == "model.params.kernel_size: got 4, expected a positive odd number"
    with pytest.raises(ConfigError, match=r"model\.params\.preset: got 'c51', expected one of"):
        load_config(None, ["model=ecapa", "model.params.preset=c51"])
    with pytest.raises(ConfigError, match=r"model\.params\.conv: got 'x', expected one of"):
        load_config(None, ["model.params.conv=x"])
    assert ConfigValueError("a", 1, "b").at("").key == "a"


def test_ensemble_recipes_take_overrides_through_the_same_loader():
    recipe = load_recipe(
        "emodb_functionals_online",
        [
            "manifest=m.csv",
            "ensemble.fusion_resolution=0",
            "ensemble.members.1.speed_factors=[0.9]",
        ],
    )
    assert type(recipe).__name__ == "EnsembleRecipe" and recipe.manifest == "m.csv"
    assert recipe.ensemble.fusion_resolution == 0
    assert recipe.ensemble.members[1].speed_factors == (0.9,)
    assert recipe.ensemble.members[0].speed_factors == (0.9, 1.1)  # untouched
    assert recipe.source.endswith("emodb_functionals_online.yaml")
    with pytest.raises(ConfigError, match="did you mean 'fusion_resolution'") as err:
        load_recipe("emodb_functionals_online", ["ensemble.fusion_resolutio=3"])
    assert "emodb_functionals_online.yaml" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="list index out of range"):
        load_recipe("emodb_functionals_online", ["ensemble.members.7.speed_factors=[]"])
    assert isinstance(load_recipe("emodb_tier1", ["train.epochs=2"]), ExperimentConfig)


def test_an_ensemble_recipe_can_pick_groups(tmp_path):
    root = tmp_path / "configs"
    (root / "recipes").mkdir(parents=True)
    (root / "train").mkdir()
    (root / "ensemble").mkdir()
    (root / "ensemble" / "avg.yaml").write_text("fusion_resolution: 0\nnormalization: online\n")
    (root / "recipes" / "e.yaml").write_text(
        "kind: ensemble\ndefaults:\n  - ensemble: avg\nensemble:\n  normalization: speaker_norm\n"
    )
    recipe = load_recipe("e", [], root=root)
    assert recipe.ensemble.fusion_resolution == 0  # from the group
    assert recipe.ensemble.normalization == "speaker_norm"  # the recipe's body wins
    assert load_recipe("e", ["ensemble=avg", "ensemble.fusion_resolution=4"], root=root).ensemble
    assert load_recipe(root / "recipes" / "e.yaml").ensemble.fusion_resolution == 0  # own root


def test_group_files_are_composed_by_hydra(tmp_path):
    """A group file's own defaults list is honoured (the old loader dropped it)."""
    root = tmp_path / "configs"
    for group in ("dataset", "features", "model", "train"):
        (root / group).mkdir(parents=True)
    (root / "train" / "default.yaml").write_text("epochs: 5\nlr: 0.01\n")
    (root / "train" / "short.yaml").write_text("defaults:\n  - default\nepochs: 2\n")
    (root / "model" / "tier1.yaml").write_text("name: tier1\n")
    (root / "features" / "mfcc.yaml").write_text("extractor: {name: mfcc}\n")
    cfg = load_config(None, ["train=short"], root=root)
    assert cfg.train.epochs == 2 and cfg.train.lr == 0.01


def test_a_recipe_without_defaults_keeps_the_default_groups_under_its_body(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  epochs: 3\n")
    cfg = load_config(recipe, [])
    assert cfg.train.epochs == 3  # the body wins over train/default.yaml (epochs: 30)
    assert cfg.train.class_weights == "auto" and cfg.model.name == "tier1"  # groups applied
    raw = compose_groups(recipe, ["model=ecapa"], default_groups={"model": "tier1"}, root=ROOT)
    assert raw["model"]["name"] == "ecapa" and raw["train"] == {"epochs": 3}


def test_malformed_defaults_and_groups_are_one_line_errors(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("defaults:\n  - datset: emodb\n")
    with pytest.raises(ConfigError, match=r"unknown config group 'datset'.*did you mean 'dataset'"):
        load_config(recipe, [])
    recipe.write_text("defaults: 3\n")
    with pytest.raises(ConfigError, match="'defaults' must be a list"):
        load_config(recipe, [])
    with pytest.raises(ConfigError, match=r"dataset=emodbb: .*did you mean 'emodb'"):
        load_config(None, ["dataset=emodbb"])


def test_config_show_prints_an_ensemble_recipe(capsys):
    import yaml

    from vocalis.cli.main import main

    argv = [
        "config",
        "show",
        "ensemble.fusion_resolution=0",
        "--config",
        "emodb_functionals_online",
    ]
    assert main(argv) == 0
    shown = yaml.safe_load(capsys.readouterr().out)
    assert shown["kind"] == "ensemble" and shown["ensemble"]["fusion_resolution"] == 0
    assert main(["config", "show", "--config", "emodb_tier11"]) == 1
    assert "did you mean 'emodb_tier1'" in capsys.readouterr().err


def test_a_documented_recipe_path_works_from_any_folder(tmp_path, monkeypatch):
    from vocalis.config import find_recipe

    monkeypatch.chdir(tmp_path)  # outside the repository
    assert find_recipe("configs/recipes/emodb_tier1.yaml").name == "emodb_tier1.yaml"
    with pytest.raises(ConfigError, match=r"file not found .*recipe name: .*emodb_tier1"):
        find_recipe("configs/recipes/no_such_recipe.yaml")
