r"""``vocalis sweep``: train a recipe for every combination of overrides; mean ± std table.

Example::

    vocalis sweep --config configs/recipes/emodb_tier1.yaml model.params.lstm_hidden=32,64 \
        seed=1,2,3 --out runs/sweep-hidden
    vocalis sweep --config sv_fusion model.mode=1,2,3 model.fusion=gate,concat seed=1,2 \
        --out runs/sv-modes --backend ray --ray-address auto --parallel 6

Overrides use Hydra's multirun grammar: ``key=a,b``, ``key=range(1,4)``,
``key=choice(a,b)`` are swept (cross product), ``key=value`` applies to every
combination; ``seed=`` is ``train.seed``. Each combination is an ordinary run
folder ``OUT/<key=value,...>/``; finished ones are skipped on a rerun. The
table (also ``OUT/sweep.md``, all of it in ``OUT/sweep.json``) groups the runs
by every swept key but the seed and gives each metric's mean ± std over seeds.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vocalis.cli.backend import add_backend_args, backend_from_args
from vocalis.cli.choices import check_inputs, failure_lines, positive_int


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``sweep`` subcommand."""
    parser = subparsers.add_parser(
        "sweep",
        help="train a recipe for every combination of overrides (seeds: mean ± std)",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--config", metavar="RECIPE", default=None, help="recipe YAML or name")
    parser.add_argument(
        "--out", default=None, help="sweep folder (default: runs/sweep-<recipe name>)"
    )
    parser.add_argument(
        "--parallel", type=positive_int, default=1, help="combinations trained at once"
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=A,B",
        help="swept (key=a,b; key=range(1,4); key=choice(a,b)) or fixed (key=value) overrides",
    )
    add_backend_args(parser, "combinations")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis sweep``."""
    check_inputs(recipe=args.config)
    from vocalis.evaluation.sweep import sweep

    out = args.out or str(Path("runs") / f"sweep-{Path(args.config or 'default').stem}")
    result = sweep(
        args.config, args.overrides, out, parallel=args.parallel, backend=backend_from_args(args)
    )
    print(result["table"])
    for line in failure_lines(result["failed"], "point"):
        print(line)
    print(f"results: {Path(out) / 'sweep.json'}")
    return 0 if not result["failed"] else 1
