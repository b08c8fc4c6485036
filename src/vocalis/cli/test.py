"""``vocalis test``: evaluate a checkpoint on a manifest and write metrics, predictions, plots.

Example::

    vocalis test runs/t1/checkpoints/best.pt --manifest work/test.csv --out runs/t1/test
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``test`` subcommand."""
    parser = subparsers.add_parser(
        "test",
        help="evaluate a checkpoint on a manifest (metrics.json, predictions.csv, plots)",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("checkpoint", metavar="CKPT", help="checkpoint (best.pt)")
    parser.add_argument("--manifest", required=True, help="manifest CSV of the test rows")
    parser.add_argument(
        "--out", default=None, help="output folder (default: <run>/test_<manifest name>)"
    )
    parser.add_argument(
        "--visualize",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write confusion, per-class and reliability plots",
    )
    parser.add_argument(
        "--save-predictions",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="write predictions.csv and errors.csv",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis test``."""
    from vocalis.evaluation.assess import assess

    m = assess(
        args.checkpoint,
        args.manifest,
        args.out,
        visualize=args.visualize,
        save_predictions=args.save_predictions,
    )
    print(
        f"n={m['n']}  UAR {m['uar']:.4f}  accuracy {m['accuracy']:.4f}  "
        f"macro F1 {m['macro_f1']:.4f}"
        + (f"  ECE {m['ece']:.4f}" if m.get("ece") is not None else "")
    )
    print(f"written to {m['out_dir']}")
    return 0
