"""``vocalis eval``: score a checkpoint on a labelled manifest."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval",
        help="evaluate a checkpoint on a labelled manifest",
        description=(
            "Rebuild the checkpoint's pipeline (tier 0, features, normalisation, labels), "
            "predict every row of the manifest and print accuracy, UAR and per-class recall."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("checkpoint", help="e.g. runs/x/checkpoints/best.pt")
    p.add_argument("--manifest", required=True, help="manifest CSV with labels")
    p.add_argument("--out", help="folder for predictions.csv and metrics.json")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--cache-dir", help="feature cache folder")
    p.add_argument("--workers", type=int, default=2, help="feature extraction processes")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def format_table(metrics: dict) -> str:
    """A small text table of the headline and per-class numbers."""
    lines = [
        f"{'utterances':<14}{metrics.get('n', '')}",
        f"{'accuracy':<14}{metrics['accuracy']:.4f}",
        f"{'UAR':<14}{metrics['uar']:.4f}",
        f"{'macro F1':<14}{metrics['macro_f1']:.4f}",
        f"{'weighted F1':<14}{metrics['weighted_f1']:.4f}",
    ]
    if metrics.get("ece") is not None:
        lines.append(f"{'ECE':<14}{metrics['ece']:.4f}")
    per_class = metrics.get("per_class") or {}
    if per_class:
        lines += ["", f"{'class':<14}{'recall':>8}{'precision':>11}{'f1':>8}{'support':>9}"]
        for name, m in per_class.items():
            lines.append(
                f"{name:<14}{m['recall']:>8.3f}{m['precision']:>11.3f}{m['f1']:>8.3f}"
                f"{int(m['support']):>9d}"
            )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from vocalis.training import evaluate

    metrics = evaluate(
        args.checkpoint,
        args.manifest,
        out=args.out,
        batch_size=args.batch_size,
        device=args.device,
        cache_dir=args.cache_dir,
        workers=args.workers,
        progress=not args.no_progress,
    )
    print(format_table(metrics))
    if args.out:
        print(f"wrote {args.out}/predictions.csv and {args.out}/metrics.json")
    return 0
