r"""``vocalis loso``: leave-one-speaker-out evaluation of one experiment.

Example::

    vocalis loso --config configs/recipes/emodb_ecapa.yaml --out runs/emodb-loso
    vocalis loso --manifest work/emodb.csv --model tier1 --features mfcc --epochs 30 \
        --out runs/t1 --speaker 03 --parallel 2 --normalization speaker_norm
    vocalis loso --config configs/recipes/emodb_functionals_online.yaml \
        --manifest work/emodb.csv --out runs/emodb-ens-online

Neural and ensemble recipes (``kind: ensemble``) go through the same runner
(:func:`vocalis.evaluation.crossval.loso`) into the same layout; an ensemble
recipe fixes its normalisation protocol and validates by inner LOSO.

One run folder per speaker (``speaker_<id>/``), ``training_results.json`` and
``cv_results.json`` (pooled and per-fold metrics). Finished folds are skipped on
a second call. Flag -> override mapping: see ``vocalis cv --help``.
"""

from __future__ import annotations

import argparse
from typing import Any

from vocalis.cli.choices import check_inputs
from vocalis.cli.cv import add_experiment_args, config_from_args, print_summary, run_options


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``loso`` subcommand."""
    parser = subparsers.add_parser(
        "loso",
        help="leave-one-speaker-out: train on all speakers but one, test on it, for each",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--speaker",
        action="append",
        default=None,
        metavar="ID",
        help="run only this speaker's fold (repeatable); default: all",
    )
    add_experiment_args(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis loso``."""
    check_inputs(recipe=args.config, paths=[("--manifest", args.manifest)])
    from vocalis.evaluation.crossval import loso

    cv = loso(
        config_from_args(args),
        args.out,
        speakers=args.speaker,
        **run_options(args),
    )
    print_summary(cv)
    print(f"results: {args.out}/cv_results.json")
    return 0 if not cv.get("failed") else 1
