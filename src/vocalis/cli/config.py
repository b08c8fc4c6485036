"""``vocalis config``: print a resolved recipe (neural or ensemble), or list the config groups."""

from __future__ import annotations

import argparse

from vocalis.cli.choices import check_inputs


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``vocalis config``."""
    p = subparsers.add_parser(
        "config",
        help="show a resolved config (a default to edit) or list config groups",
        description=(
            "`vocalis config show [--config RECIPE] [model=ecapa train.lr=3e-4 ...]` prints "
            "the resolved YAML with every default filled in (a neural or a kind: ensemble "
            "recipe, by path or by name); `vocalis config list` lists the groups and recipes "
            "in configs/."
        ),
    )
    p.add_argument("action", choices=("show", "list"), help="show or list")
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="group choices (model=ecapa) and dotted overrides (train.lr=3e-4)",
    )
    p.add_argument(
        "--config",
        help="recipe to start from: a YAML path or a name in configs/recipes/",
    )
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """List the groups and recipes, or print the resolved recipe as YAML."""
    check_inputs(recipe=args.config)
    from vocalis.config import RECIPES, config_dir, config_groups

    if args.action == "list":
        root = config_dir()
        for group in (*config_groups(root), RECIPES):
            names = sorted(p.stem for p in (root / group).glob("*.yaml"))
            print(f"{group}: {', '.join(names) or '-'}")
        return 0
    import yaml

    from vocalis.config import to_dict
    from vocalis.training.config import load_recipe

    data = to_dict(load_recipe(args.config, args.overrides))
    print(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), end="")
    return 0
