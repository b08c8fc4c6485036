"""``vocalis config``: print a resolved experiment config, or list the config groups."""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "config",
        help="show a resolved config (a default to edit) or list config groups",
        description=(
            "`vocalis config show [--config RECIPE] [model=ecapa train.lr=3e-4 ...]` prints "
            "the resolved YAML with every default filled in; `vocalis config list` lists "
            "the groups and recipes in configs/."
        ),
    )
    p.add_argument("action", choices=("show", "list"), help="show or list")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="group choices (model=ecapa) and dotted overrides (train.lr=3e-4)",
    )
    p.add_argument("--config", help="recipe YAML to start from")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from vocalis.training.config import GROUPS, config_dir, config_to_yaml, load_config

    if args.action == "list":
        root = config_dir()
        for group in (*GROUPS, "recipes"):
            names = sorted(p.stem for p in (root / group).glob("*.yaml"))
            print(f"{group}: {', '.join(names) or '-'}")
        return 0
    print(config_to_yaml(load_config(args.config, args.overrides)), end="")
    return 0
