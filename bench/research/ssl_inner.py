"""Inner-fold design exploration for configs/recipes/emodb_ge2e_finetune.yaml.

The outer test speakers given with --exclude are removed from the manifest first;
the design is scored by group k-fold over the remaining (training) speakers only.

    python bench/research/ssl_inner.py --tag base --exclude 03 --folds 3 -- train.epochs=10
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tag", required=True)
    p.add_argument("--recipe", default="configs/recipes/emodb_ge2e_finetune.yaml")
    p.add_argument("--manifest", default="work/emodb.csv")
    p.add_argument("--exclude", nargs="+", default=["03"])
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--validation", default="stratified")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="work/research/ssl_inner")
    p.add_argument("overrides", nargs="*")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    from vocalis.data.manifest import read_manifest
    from vocalis.evaluation.crossval import cross_validate
    from vocalis.training.config import load_config

    m = read_manifest(a.manifest)
    keep = [i for i, s in enumerate(m.speakers) if s not in set(a.exclude)]
    sub = Path(a.out) / f"manifest_wo_{'_'.join(a.exclude)}.csv"
    sub.parent.mkdir(parents=True, exist_ok=True)
    m.select(keep).write(sub)
    cfg = load_config(a.recipe, a.overrides)
    t0, c0 = time.time(), time.process_time()
    cv = cross_validate(
        cfg,
        Path(a.out) / a.tag / f"wo_{'_'.join(a.exclude)}",
        "group-kfold",
        folds=a.folds,
        validation=a.validation,
        val_fraction=a.val_fraction,
        manifest=str(sub),
        overwrite=True,
    )
    rec = {
        "tag": a.tag,
        "exclude": a.exclude,
        "overrides": a.overrides,
        "pooled_uar": cv["pooled"]["uar"],
        "fold_uar": [f.get("uar") for f in cv.get("folds", {}).values()]
        if isinstance(cv.get("folds"), dict)
        else None,
        "wall_s": round(time.time() - t0, 1),
        "cpu_s": round(time.process_time() - c0, 1),
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }
    with open(Path(a.out) / "results.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
    print(json.dumps(rec))


if __name__ == "__main__":
    main()
