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
from typing import NoReturn

from vocalis import __version__
from vocalis.cli.choices import apply_help_style
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
    "sweep",
    "compare",
    "report",
    "predict",
    "embed",
    "sv",
    "verify",
    "export",
    "serve",
)


#: What a stopped verb keeps, said in its one line (see :mod:`vocalis.signals`).
RESUME_HINTS = {
    "train": "the run folder keeps its last checkpoint; rerun the same command to resume",
    "features": "the features computed so far are cached; rerun the same command to continue",
    "loso": "finished folds are kept in the output folder; rerun the same command to skip them",
    "cv": "finished folds are kept in the output folder; rerun the same command to skip them",
    "sweep": "finished runs are kept in the sweep folder; rerun the same command to skip them",
    "predict": "rows already written to --out are kept; rerun with the same --out to continue",
    "eval": "nothing partial was written; rerun the same command",
}


class Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like every other error.

    ``vocalis train --epochs 0`` prints ``vocalis train: error: argument --epochs:
    got 0, expected an integer >= 1 (vocalis train --help shows the options)``
    and exits 2, instead of the usage block first. Sub-parsers are built with
    the same class.
    """

    def error(self, message: str) -> NoReturn:
        """Print one line and exit 2 (argparse's status for a usage error)."""
        self.exit(2, f"{self.prog}: error: {message} ({self.prog} --help shows the options)\n")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand."""
    parser = Parser(
        prog="vocalis",
        description="Train, evaluate and serve speech classifiers.",
    )
    parser.add_argument("--version", action="version", version=f"vocalis {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--storage-option",
        action="append",
        default=[],
        metavar="PROTOCOL.KEY=VALUE",
        help="an option of the object store of gs:// or s3:// paths (repeatable), e.g. "
        "gs.project=my-project, s3.endpoint_url=http://localhost:9000",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"vocalis.cli.{name}")
        except ModuleNotFoundError as err:
            if err.name == f"vocalis.cli.{name}":
                continue  # not built yet
            raise
        module.add_parser(sub)
    apply_help_style(parser)  # one help style for every verb, whatever it was built with
    return parser


def merge_late_overrides(args: argparse.Namespace, extras: list[str]) -> list[str]:
    """Append ``KEY=VALUE`` words that came after a flag to ``args.overrides``.

    argparse fills a ``nargs="*"`` positional once, from the words before the first
    flag, so ``vocalis train --config R a=1 --out runs/x b=2`` would leave ``b=2``
    unrecognised. A verb with config overrides takes them anywhere on the line, in
    order. Returns the words that are still unrecognised (an unknown flag, or any
    word of a verb without overrides).

    >>> ns = argparse.Namespace(overrides=["a=1"])
    >>> merge_late_overrides(ns, ["b=2", "--nope"]), ns.overrides
    (['--nope'], ['a=1', 'b=2'])
    >>> merge_late_overrides(argparse.Namespace(), ["b=2"])
    ['b=2']
    """
    if not hasattr(args, "overrides"):
        return extras
    late = [w for w in extras if "=" in w and not w.startswith("-")]
    args.overrides = [*(args.overrides or []), *late]
    return [w for w in extras if w not in late]


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vocalis`` console script."""
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    unknown = merge_late_overrides(args, extras)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s" if args.verbose else "%(message)s",
    )
    if not args.verbose:  # the storage clients' info lines ("Found credentials ...")
        for name in ("botocore", "aiobotocore", "s3fs", "gcsfs", "google", "urllib3"):
            logging.getLogger(name).setLevel(logging.WARNING)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from vocalis import signals

    with signals.installed():
        signals.set_resume_hint(RESUME_HINTS.get(args.command, ""))
        try:
            if args.storage_option:
                from vocalis.io import set_storage_option

                for option in args.storage_option:
                    set_storage_option(option)
            code = int(args.func(args) or 0)
            signum = signals.stop_signal()
            if signum is not None:  # a stop a C callback swallowed
                raise signals.Stopped(signum, signals.resume_hint())
            return code
        except VocalisError as err:
            print(f"vocalis {args.command}: error: {err}", file=sys.stderr)
            return 1
        except KeyboardInterrupt as err:
            signals.disarm()
            signals.stop_children()
            if not isinstance(err, signals.Stopped):
                err = signals.Stopped(signals.stop_signal() or 2, signals.resume_hint())
            print(f"vocalis {args.command}: {err}", file=sys.stderr)
            return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
