"""Ensemble recipe files: the YAML that ``vocalis loso --config`` recognises as an ensemble.

A recipe YAML whose top level has ``kind: ensemble`` (or an ``ensemble:``
section) describes a functionals ensemble instead of a neural experiment::

    kind: ensemble
    manifest: work/emodb.csv        # optional; --manifest overrides it
    cache_dir: auto                 # $VOCALIS_CACHE, else ~/.cache/vocalis
    ensemble:                       # an EnsembleConfig
      normalization: online
      fusion_resolution: 10
      members:
        - functionals: {name: lld_stats, lld: fbank}
          linear: {classifier: svm, c_grid: [1.0e-3, 1.0e-2]}
          speed_factors: []

Example:
    >>> recipe = recipe_from_dict({"kind": "ensemble", "ensemble": {"members": [
    ...     {"functionals": {"name": "lld_stats"}, "speed_factors": []}]}})
    >>> recipe.ensemble.normalization, recipe.ensemble.members[0].speed_factors
    ('online', ())
    >>> is_ensemble_recipe({"model": {"name": "tier1"}})
    False
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from vocalis.ensemble.recipe import EnsembleConfig
from vocalis.errors import ConfigError

__all__ = ["EnsembleRecipe", "is_ensemble_recipe", "recipe_from_dict"]


@dataclass(frozen=True)
class EnsembleRecipe:
    """A functionals-ensemble experiment as read from a recipe file.

    Args:
        kind: always ``ensemble``.
        ensemble: members, normalisation protocol, fusion.
        manifest: manifest CSV (``""``: give it with ``--manifest``).
        cache_dir: feature-cache folder of the functionals (``auto``: the user cache,
            :mod:`vocalis.cachedir`; ``null``: no cache;
            ComParE takes ~0.2 s per file, so a cache is recommended).
        label_column: manifest column with the class label.
        label_map: a builtin label map (``4class``), a YAML path or a
            ``{target: [source, ...]}`` mapping applied to ``label_column``
            (:func:`vocalis.data.apply_label_map`), or ``null``.
        unmapped: a label the map does not list: ``error``, ``drop`` or ``keep``.
        source: the file it was read from (filled in by
            :func:`vocalis.training.load_recipe`, the one loader of every recipe kind).
    """

    kind: str = "ensemble"
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)
    manifest: str = ""
    cache_dir: str | None = None
    label_column: str = "label"
    label_map: str | dict | None = None
    unmapped: Literal["error", "drop", "keep"] = "error"
    source: str = ""

    def __post_init__(self) -> None:
        if self.kind != "ensemble":
            raise ConfigError(
                f"{self.source or 'recipe'}: kind={self.kind!r}; an ensemble recipe has "
                "kind: ensemble (leave 'kind' out for a neural recipe)"
            )


def is_ensemble_recipe(data: Any) -> bool:
    """Whether parsed YAML describes an ensemble (``kind: ensemble`` or an ``ensemble:`` key)."""
    return isinstance(data, dict) and (data.get("kind") == "ensemble" or "ensemble" in data)


def recipe_from_dict(data: dict[str, Any], source: str = "") -> EnsembleRecipe:
    """Validate parsed YAML into an :class:`EnsembleRecipe` (unknown keys are rejected)."""
    from vocalis.config import from_dict

    data = dict(data)
    data.setdefault("kind", "ensemble")
    data["source"] = source
    return from_dict(EnsembleRecipe, data, where="")
