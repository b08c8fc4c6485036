"""Ensemble recipe files: the shipped EmoDB recipes parse, bad files fail with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from vocalis.ensemble.recipe_file import load_ensemble_recipe, recipe_from_dict
from vocalis.errors import ConfigError

RECIPES = Path(__file__).resolve().parents[2] / "configs" / "recipes"


@pytest.mark.parametrize("protocol", ["online", "speaker_norm"])
def test_shipped_emodb_recipes_parse(protocol):
    path = RECIPES / f"emodb_functionals_{protocol}.yaml"
    recipe = load_ensemble_recipe(path)
    assert recipe is not None and recipe.source == str(path)
    assert recipe.ensemble.normalization == protocol
    names = [(m.functionals.name, m.functionals.lld) for m in recipe.ensemble.members]
    assert names == [("compare_2016", "mfcc"), ("lld_stats", "fbank"), ("lld_stats", "mfcc_pitch")]
    assert recipe.ensemble.members[2].speed_factors == (0.8, 0.9, 1.1, 1.2)
    assert recipe.ensemble.fusion_resolution == 10
    assert "inner leave-one-speaker-out" in path.read_text().split("kind:")[0]


def test_neural_recipe_is_not_an_ensemble(tmp_path):
    path = tmp_path / "n.yaml"
    path.write_text("model: {name: tier1}\n")
    assert load_ensemble_recipe(path) is None


def test_bad_ensemble_recipes_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"fusion_resolutoin.*fusion_resolution"):
        recipe_from_dict({"ensemble": {"fusion_resolutoin": 3}})
    with pytest.raises(ConfigError, match="kind: ensemble"):
        recipe_from_dict({"kind": "neural", "ensemble": {}})
    with pytest.raises(ConfigError, match="does not exist"):
        load_ensemble_recipe(tmp_path / "missing.yaml")
