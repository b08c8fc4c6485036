"""``vocalis report``: a self-contained HTML report of a run or CV folder.

Example::

    vocalis report runs/emodb-loso      # -> runs/emodb-loso/report.html
"""

from __future__ import annotations

import argparse
from typing import Any

from vocalis.cli.choices import non_negative_int


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand."""
    parser = subparsers.add_parser(
        "report",
        help="write report.html (metrics, confusion, folds, curves, calibration, errors)",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("run", metavar="DIR", help="run folder or CV folder")
    parser.add_argument("--out", default=None, help="HTML path (default: DIR/report.html)")
    parser.add_argument(
        "--top-errors", type=non_negative_int, default=25, help="rows of the errors table"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis report``."""
    from vocalis.evaluation.report import report

    print(report(args.run, args.out, top_errors=args.top_errors))
    return 0
