"""The ``vocalis`` console script: one thin subcommand per public function.

Each subcommand lives in ``vocalis/cli/<verb>.py`` and exposes
``add_parser(subparsers)`` (which calls ``subparsers.add_parser(...)`` and sets
``func=run`` via ``set_defaults``) and ``run(args) -> int``. A
:class:`~vocalis.errors.VocalisError` is printed as one line on stderr with a
non-zero exit code; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from vocalis import __version__
from vocalis.errors import VocalisError

#: Subcommand modules, in the order ``vocalis --help`` lists them.
COMMANDS = (
    "prepare",
    "tier0",
    "features",
    "train",
    "eval",
    "config",
    "loso",
    "cv",
    "compare",
    "report",
    "predict",
    "embed",
    "export",
    "serve",
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="vocalis",
        description="Train, evaluate and serve speech classifiers.",
    )
    parser.add_argument("--version", action="version", version=f"vocalis {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"vocalis.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"vocalis.cli.{name}":
                continue  # not built yet
            raise
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vocalis`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s" if args.verbose else "%(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except VocalisError as err:
        print(f"vocalis {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"vocalis {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
