"""Summarise a ``vocalis loso`` folder of the ECAPA seed into ``bench/results/<name>.json``.

The LOSO itself is one command (docs/howto/ecapa-loso.md); this script only
reads its folder, so it also summarises a run that is still going or was
stopped: the summary covers the finished folds (``n_finished`` of ``n_folds``)
and says ``partial`` when some are missing. Pooled metrics come from
:func:`vocalis.evaluation.crossval.summarize` (the concatenated predictions
of the finished folds), the per-fold validation error and times from the
folder's ``training_results.json`` or, for a fold whose record is missing,
its own ``metrics.json`` and ``history.csv``.

Usage::

    python bench/ecapa_loso.py runs/s0_cpu --recipe configs/recipes/emodb_ecapa_s0.yaml \
        --overrides model.params.preset=c512 train.epochs=4 --wall-seconds 3600 \
        --cpu-seconds 3000 --out bench/results/emodb_ecapa_s0_loso.json
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import sys
from pathlib import Path

#: SpeechBrain's ECAPA-TDNN (512 channels) trained from scratch on EmoDB, measured on
#: these machines on two folds (the peer figure of issue 12).
PEER = {
    "system": "SpeechBrain ECAPA-TDNN c512, from scratch",
    "uar": 0.56,
    "folds": 2,
    "note": "about 0.56 UAR on two EmoDB LOSO folds, measured earlier on these machines",
}


def _fold_record(fold: Path, records: dict) -> dict:
    rec = dict(records.get(fold.name) or {})
    metrics = (
        json.loads((fold / "metrics.json").read_text()) if (fold / "metrics.json").is_file() else {}
    )
    if rec.get("best_error") is None and metrics.get("val", {}).get("uar") is not None:
        rec["best_error"] = round(1.0 - float(metrics["val"]["uar"]), 6)
    if rec.get("best_epoch") is None and metrics.get("best_epoch") is not None:
        rec["best_epoch"] = metrics["best_epoch"]
    history = fold / "history.csv"
    if history.is_file():
        with open(history) as fh:
            rows = list(csv.DictReader(fh))
        rec["epochs_run"] = len(rows)
        rec["epoch_seconds"] = [round(float(r.get("seconds") or 0.0), 1) for r in rows]
    if rec.get("seconds") is None and metrics.get("seconds") is not None:
        rec["seconds"] = metrics["seconds"]
    return rec


def summarise(folder: Path, recipe: str, overrides: list[str]) -> dict:
    """The summary of the LOSO in ``folder`` (finished folds only)."""
    from vocalis.data import read_manifest
    from vocalis.evaluation.crossval import summarize
    from vocalis.training import load_config

    config = load_config(recipe, overrides)
    manifest = read_manifest(config.dataset.manifest)
    speakers = sorted(set(manifest.speakers))
    names = [f"speaker_{s}" for s in speakers]
    summary = summarize(folder, names)
    summary.pop("_pooled_predictions", None)
    path = folder / "training_results.json"
    records = json.loads(path.read_text()) if path.is_file() else {}
    finished = [n for n in names if n in summary["folds"]]
    per_fold = {}
    for name in finished:
        rec = _fold_record(folder / name, records)
        per_fold[name] = {
            "test_uar": summary["folds"][name]["uar"],
            "test_accuracy": summary["folds"][name]["accuracy"],
            "n_test": summary["folds"][name]["n"],
            "val_uar": None if rec.get("best_error") is None else round(1 - rec["best_error"], 6),
            "best_error": rec.get("best_error"),
            "best_epoch": rec.get("best_epoch"),
            "epochs_run": rec.get("epochs_run"),
            "epoch_seconds": rec.get("epoch_seconds"),
            "seconds": rec.get("seconds"),
        }
    return {
        "recipe": recipe,
        "overrides": overrides,
        "normalization": {"protocol": "online", "features.normalization": "global"},
        "validation": {"protocol": "stratified", "fraction": config.dataset.val_fraction},
        "n_folds": len(names),
        "n_finished": len(finished),
        "partial": len(finished) < len(names),
        "fold_names": names,
        "finished_folds": finished,
        "pooled": summary["pooled"],
        "fold_mean": summary["mean"],
        "fold_std": summary["std"],
        "per_fold": per_fold,
    }


def main(argv: list[str] | None = None) -> int:
    """Write the summary JSON and print its headline."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path, help="the vocalis loso --out folder")
    p.add_argument("--recipe", required=True, help="the recipe the LOSO ran")
    p.add_argument("--overrides", nargs="*", default=[], help="its overrides")
    p.add_argument("--command", default=None, help="the command line that ran it")
    p.add_argument("--wall-seconds", type=float, default=None, help="wall time of the run")
    p.add_argument("--cpu-seconds", type=float, default=None, help="CPU time (user + system)")
    p.add_argument("--load", default=None, help="load average during the run, as measured")
    p.add_argument("--code", default=None, help="git revision of the code that ran")
    p.add_argument("--scaled", default=None, help="what was scaled from the recipe, in words")
    p.add_argument("--out", required=True, type=Path, help="JSON to write")
    args = p.parse_args(argv)
    result = {
        "command": args.command,
        "date": datetime.date.today().isoformat(),
        "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}, shared with other jobs",
        "code": args.code,
        "scaled": args.scaled,
        **summarise(args.folder, args.recipe, args.overrides),
        "seconds": args.wall_seconds,
        "cpu_seconds": args.cpu_seconds,
        "load_average": args.load,
        "peer": PEER,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    pooled = result["pooled"] or {}
    print(
        f"{result['n_finished']}/{result['n_folds']} folds; pooled UAR "
        f"{pooled.get('uar', float('nan')):.4f}; peer {PEER['uar']} on {PEER['folds']} folds; "
        f"wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
