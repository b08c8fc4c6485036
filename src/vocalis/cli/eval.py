"""``vocalis eval`` (alias ``vocalis test``): score a model on a labelled manifest.

Example::

    vocalis eval runs/t1 --manifest work/test.csv --out runs/t1/test
"""

from __future__ import annotations

import argparse
import sys

from vocalis.cli.choices import (
    add_progress_arg,
    check_inputs,
    max_failures_arg,
    positive_int,
    progress_wanted,
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``eval`` subcommand (and its alias ``test``)."""
    p = subparsers.add_parser(
        "eval",
        aliases=["test"],
        help="score a model on a labelled manifest (alias: test)",
        description=(
            "Rebuild the checkpoint's pipeline (tier 0, features, normalisation, model, labels), "
            "predict every row of the manifest and print accuracy, UAR and per-class recall; "
            "with --out, write metrics.json, predictions.csv, misclassified.csv (the most "
            "confident errors), errors.csv (rows that could not be scored) and plots. "
            "`vocalis test` is the same command."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "checkpoint",
        metavar="CKPT",
        help="a run folder, RUN/model, or a checkpoint file",
    )
    p.add_argument("--manifest", required=True, help="manifest CSV with labels")
    p.add_argument(
        "--split-dir",
        metavar="DIR_OR_URL",
        help="score only the rows of test.csv in this split folder (train.csv / test.csv of ids)",
    )
    p.add_argument("--out", help="folder for the record (default: print only)")
    p.add_argument(
        "--visualize",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --out: write confusion, per-class and reliability plots",
    )
    p.add_argument(
        "--save-predictions",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="with --out: write predictions.csv and misclassified.csv",
    )
    p.add_argument(
        "--max-failures",
        type=max_failures_arg,
        default=0.1,
        help="unreadable rows tolerated: a fraction (0.1) or a count (3); more exits non-zero "
        "(with --out they are listed in errors.csv)",
    )
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    p.add_argument("--batch-size", type=positive_int, default=16, help="files per forward pass")
    p.add_argument(
        "--cache-dir",
        metavar="DIR_OR_URL",
        help="feature cache: read the features from it (or compute them once into it), "
        "e.g. the training run's features.cache_dir",
    )
    add_progress_arg(p)
    p.set_defaults(func=run)
    return p


def format_heads(heads: dict) -> list[str]:
    """One line per head: UAR / F1 of class heads, AUC / F1 of multi-label heads, CCC / MAE."""
    lines = ["", f"{'head':<14}{'kind':<12}metrics"]
    for name, m in heads.items():
        if m["kind"] == "multiclass":
            text = f"acc {m['accuracy']:.4f}  UAR {m['uar']:.4f}  macro F1 {m['macro_f1']:.4f}"
        elif m["kind"] == "multilabel":
            auc = "nan" if m.get("macro_auc") is None else f"{m['macro_auc']:.4f}"
            text = f"macro AUC {auc}  macro F1 {m['macro_f1']:.4f}  UAR {m['uar']:.4f}"
        else:
            text = f"CCC {m['ccc']:.4f}  MAE {m['mae']:.4g}  RMSE {m['rmse']:.4g}"
        lines.append(f"{name:<14}{m['kind']:<12}{text}")
    return lines


def format_table(metrics: dict) -> str:
    """A small text table of the headline and per-class numbers (and every head's)."""
    if "weighted_f1" not in metrics:  # a model without a multiclass head first
        lines = [f"{'utterances':<14}{metrics.get('n', '')}", *format_heads(metrics["heads"])]
        return "\n".join(lines)
    lines = [
        f"{'utterances':<14}{metrics.get('n', '')}",
        f"{'accuracy':<14}{metrics['accuracy']:.4f}",
        f"{'UAR':<14}{metrics['uar']:.4f}",
        f"{'macro F1':<14}{metrics['macro_f1']:.4f}",
        f"{'weighted F1':<14}{metrics['weighted_f1']:.4f}",
    ]
    if metrics.get("ece") is not None:
        lines.append(f"{'ECE':<14}{metrics['ece']:.4f}")
    if metrics.get("n_failed"):
        lines.append(f"{'unreadable':<14}{metrics['n_failed']}")
    per_class = metrics.get("per_class") or {}
    if per_class:
        lines += ["", f"{'class':<14}{'recall':>8}{'precision':>11}{'f1':>8}{'support':>9}"]
        for name, m in per_class.items():
            lines.append(
                f"{name:<14}{m['recall']:>8.3f}{m['precision']:>11.3f}{m['f1']:>8.3f}"
                f"{int(m['support']):>9d}"
            )
    if metrics.get("heads"):
        lines += format_heads(metrics["heads"])
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis eval``."""
    check_inputs(checkpoint=args.checkpoint, paths=[("--manifest", args.manifest)])
    from vocalis.evaluation import evaluate

    manifest = args.manifest
    if args.split_dir:
        from vocalis.data import read_manifest
        from vocalis.data.splitdir import split_manifest

        manifest = split_manifest(read_manifest(manifest), args.split_dir)["test"]
    metrics = evaluate(
        args.checkpoint,
        manifest,
        args.out,
        visualize=args.visualize,
        save_predictions=args.save_predictions,
        batch_size=args.batch_size,
        device=args.device,
        progress=progress_wanted(args),
        max_failures=args.max_failures,
        cache_dir=args.cache_dir,
    )
    print(format_table(metrics))
    skipped = sum(metrics["rows"]["n_skipped"].values())
    if skipped:
        where = f"; listed in {metrics['files']['errors']}" if args.out else ""
        print(f"{skipped} of {metrics['rows']['n_rows']} row(s) skipped{where}", file=sys.stderr)
    if args.out:
        print(f"written to {metrics['out_dir']}")
    return 0
