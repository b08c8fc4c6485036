"""Outer LOSO of a functionals-ensemble recipe on EmoDB, from audio, timed.

Runs :func:`vocalis.ensemble.loso.loso_ensemble` (features through
``functional_table`` and the FeatureCache, so the first run includes the whole
extraction) for each protocol and writes ``work/research/recipe_<name>.json``.

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
from vocalis.ensemble.loso import loso_ensemble
from vocalis.ensemble.recipe import EnsembleConfig
from vocalis.ensemble.recipe_file import is_ensemble_recipe, recipe_from_dict


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
        t0 = time.perf_counter()
        result = loso_ensemble(manifest, config, args.cache)
        seconds = time.perf_counter() - t0
        fold_uar = [f["uar"] for f in result.folds]
        out[protocol] = {
            "pooled_uar": round(result.pooled_uar, 4),
            "accuracy": round(result.accuracy, 4),
            "fold_uar_mean": round(sum(fold_uar) / len(fold_uar), 4),
            "inner_uar_mean_per_member": [
                round(sum(f["inner_uar"][m] for f in result.folds) / len(result.folds), 4)
                for m in range(len(config.members))
            ],
            "seconds": round(seconds, 1),
            "extract_seconds": result.extract_seconds,
            "folds": result.folds,
        }
        print(json.dumps({k: v for k, v in out[protocol].items() if k != "folds"}), flush=True)
    dest = Path("work/research") / f"recipe_{args.recipe.stem}.json"
    dest.write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"wrote {dest}")


if __name__ == "__main__":
    main()
