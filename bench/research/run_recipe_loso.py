"""Outer LOSO of a functionals-ensemble recipe on EmoDB, from audio, timed.

Runs the one cross-validation runner, :func:`vocalis.evaluation.crossval.loso`
(features through ``functional_table`` and the FeatureCache, so the first run
includes the whole extraction; fold folders under ``work/research/loso_<name>/``)
for each protocol and writes ``work/research/recipe_<name>.json``.

    python bench/research/run_recipe_loso.py configs/recipes/emodb_functionals_online.yaml
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

import yaml

from vocalis.config import from_dict, to_dict
from vocalis.data import prepare
from vocalis.ensemble.recipe import EnsembleConfig
from vocalis.ensemble.recipe_file import EnsembleRecipe, is_ensemble_recipe, recipe_from_dict
from vocalis.evaluation.crossval import loso


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("recipe", type=Path)
    ap.add_argument("--root", default="/work/shared/data/emodb")
    ap.add_argument("--cache", default="work/research/featcache")
    ap.add_argument("--protocols", nargs="+", default=None, help="default: the recipe's")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    torch.set_num_threads(1)
    data = yaml.safe_load(args.recipe.read_text())
    if is_ensemble_recipe(data):  # a configs/recipes file: kind, manifest, cache_dir, ensemble
        base = recipe_from_dict(data, str(args.recipe)).ensemble
    else:  # a bare EnsembleConfig
        base = from_dict(EnsembleConfig, data, where=str(args.recipe))
    manifest = prepare("emodb", args.root)
    out = {"recipe": to_dict(base), "n": len(manifest)}
    for protocol in args.protocols or [base.normalization]:
        config = dataclasses.replace(base, normalization=protocol)
        recipe = EnsembleRecipe(ensemble=config, cache_dir=args.cache)
        t0 = time.perf_counter()
        run_dir = Path("work/research") / f"loso_{args.recipe.stem}_{protocol}"
        cv = loso(recipe, run_dir, manifest=manifest, overwrite=True)
        seconds = time.perf_counter() - t0
        folds = json.loads((run_dir / "training_results.json").read_text())
        out[protocol] = {
            "pooled_uar": round(cv["pooled"]["uar"], 4),
            "accuracy": round(cv["pooled"]["accuracy"], 4),
            "fold_uar_mean": round(cv["mean"]["uar"], 4),
            "inner_uar_mean_per_member": [
                round(sum(f["inner_uar"][m] for f in folds.values()) / len(folds), 4)
                for m in range(len(config.members))
            ],
            "seconds": round(seconds, 1),
            "extract_seconds": cv["extract_seconds"],
            "folds": folds,
        }
        print(json.dumps({k: v for k, v in out[protocol].items() if k != "folds"}), flush=True)
    dest = Path("work/research") / f"recipe_{args.recipe.stem}.json"
    dest.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
