"""``vocalis prepare RECIPE ROOT --out manifest.csv``: build a corpus manifest.

Calls :func:`vocalis.data.prepare`, optionally maps the labels, writes the CSV
and prints rows, speakers and labels with their counts.
"""

from __future__ import annotations

import argparse
import logging

from vocalis.cli.choices import HelpFormatter, LazyChoices, StoreWithText
from vocalis.errors import ConfigError

log = logging.getLogger("vocalis.prepare")


def _option(text: str) -> tuple[str, object]:
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        parsed = yaml.safe_load(value) if value else ""
    except yaml.YAMLError:
        parsed = value
    return key.strip().replace("-", "_"), parsed


def _epilog() -> str:
    from vocalis.data import CORPORA, corpus_options

    lines = ["corpus options (-O KEY=VALUE):"]
    for name in CORPORA.names():
        opts = corpus_options(name)
        shown = ", ".join(f"{k}={v!r}" for k, v in opts.items()) if opts else "none"
        lines.append(f"  {name:<12} {shown}")
    return "\n".join(lines)


def _corpora() -> list[str]:
    from vocalis.data import CORPORA

    return CORPORA.names()


def _label_maps() -> str:
    from vocalis.data import builtin_label_maps

    return ", ".join(builtin_label_maps())


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``vocalis prepare``."""
    p = subparsers.add_parser(
        "prepare",
        help="build a manifest CSV from a corpus folder",
        description="Scan a corpus folder with a corpus preparer and write its manifest CSV "
        "(path,label,id,speaker,...).",
        epilog=_epilog,  # called when the help is printed
        formatter_class=HelpFormatter,
    )
    p.add_argument(
        "corpus",
        choices=LazyChoices(_corpora),
        metavar="CORPUS",
        help="corpus: %(choices)s",
    )
    p.add_argument("root", metavar="ROOT", help="corpus folder")
    p.add_argument("--out", "-o", required=True, help="manifest CSV to write")
    p.add_argument(
        "--label-map",
        default=None,
        action=StoreWithText,
        text=_label_maps,
        help="map labels with a builtin (%(text)s) or a YAML file {target: [source, ...]}",
    )
    p.add_argument(
        "--unmapped",
        choices=("error", "drop"),
        default="error",
        help="what to do with labels the map does not list",
    )
    p.add_argument(
        "--option",
        "-O",
        action="append",
        type=_option,
        default=[],
        metavar="KEY=VALUE",
        help="corpus option, repeatable (e.g. -O channel=both, -O 'speaker_regex=(s\\d+)_')",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Build, write and summarise the manifest."""
    from vocalis.data import prepare

    options = dict(args.option)
    if args.unmapped != "error" and args.label_map is None:
        raise ConfigError("--unmapped needs --label-map; add e.g. --label-map 4class")
    manifest = prepare(
        args.corpus, args.root, label_map=args.label_map, unmapped=args.unmapped, **options
    )
    manifest.write(args.out)
    print(f"wrote {args.out}")
    print(manifest.summary())
    return 0
