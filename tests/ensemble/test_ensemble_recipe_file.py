"""Ensemble recipe files: the shipped EmoDB recipes parse, bad files fail with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from vocalis.ensemble.recipe_file import EnsembleRecipe, recipe_from_dict
from vocalis.errors import ConfigError
from vocalis.training import load_recipe

RECIPES = Path(__file__).resolve().parents[2] / "configs" / "recipes"


@pytest.mark.parametrize("protocol", ["online", "speaker_norm"])
def test_shipped_emodb_recipes_parse(protocol):
    path = RECIPES / f"emodb_functionals_{protocol}.yaml"
    recipe = load_recipe(path)
    assert isinstance(recipe, EnsembleRecipe) and recipe.source == str(path)
    assert recipe.ensemble.normalization == protocol
    ge2e, compare = recipe.ensemble.members
    assert (ge2e.functionals.name, ge2e.functionals.layers) == ("ge2e_stats", (2,))
    assert ge2e.speed_factors == (0.9, 1.1) and ge2e.linear.balanced
    assert compare.functionals.name == "compare_2016" and compare.speed_factors == ()
    # fitted fusion weights online, plain average speaker-normalised (chosen by inner scores)
    assert recipe.ensemble.fusion_resolution == (10 if protocol == "online" else 0)
    assert "inner leave-one-speaker-out" in path.read_text().split("kind:")[0]


def test_neural_recipe_is_not_an_ensemble(tmp_path):
    path = tmp_path / "n.yaml"
    path.write_text("model: {name: tier1}\n")
    assert not isinstance(load_recipe(path), EnsembleRecipe)


def test_bad_ensemble_recipes_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"fusion_resolutoin.*fusion_resolution"):
        recipe_from_dict({"ensemble": {"fusion_resolutoin": 3}})
    with pytest.raises(ConfigError, match="kind: ensemble"):
        recipe_from_dict({"kind": "neural", "ensemble": {}})
    with pytest.raises(ConfigError, match=r"missing\.yaml: file not found.*existing --config"):
        load_recipe(tmp_path / "missing.yaml")
