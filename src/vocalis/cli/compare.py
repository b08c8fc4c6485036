"""``vocalis compare``: one table of runs and cross-validations.

Example::

    vocalis compare runs/* --out table.md
"""

from __future__ import annotations

import argparse
from typing import Any

from vocalis.cli.choices import LazyChoices


def _columns() -> list[str]:
    from vocalis.evaluation.compare import COLUMNS

    return list(COLUMNS)


def _legend_text() -> str:
    from vocalis.evaluation.compare import legend

    return "columns:\n" + "\n".join(f"  {line}" for line in legend().splitlines())


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``compare`` subcommand."""
    parser = subparsers.add_parser(
        "compare",
        help="compare run and CV folders (model, features, protocol, UAR, ...)",
        description=__doc__.split("\n\n")[0],
        epilog=_legend_text,
    )
    parser.add_argument("runs", nargs="+", metavar="DIR", help="run or CV folders")
    parser.add_argument("--out", default=None, help="also write the table (.md or .csv)")
    parser.add_argument(
        "--no-legend", action="store_true", help="print the table without the column legend"
    )
    parser.add_argument(
        "--sort",
        default="uar",
        choices=LazyChoices(_columns),
        metavar="COLUMN",
        help="sort column: %(choices)s",
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis compare``."""
    from vocalis.evaluation.compare import (
        compare,
        legend,
        table_columns,
        to_markdown,
        write_table,
    )

    rows = compare(args.runs, sort_by=args.sort)
    print(to_markdown(rows))
    if not args.no_legend:
        print("\n" + legend(table_columns(rows)))
    if args.out:
        print(f"written to {write_table(rows, args.out)}")
    return 0
