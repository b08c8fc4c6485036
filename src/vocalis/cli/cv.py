r"""``vocalis cv``: speaker-independent cross-validation of one experiment.

Example::

    vocalis cv --config configs/recipes/emodb_tier1.yaml --protocol group-kfold --folds 5 \
        --out runs/emodb-gkf
    vocalis cv --manifest work/emodb.csv --model tier1 --features mfcc --epochs 30 \
        --protocol loso --out runs/t1 train.lr=3e-4

Command-line flags become config overrides (``--manifest`` -> ``dataset.manifest=``,
``--model`` -> ``model=NAME``, ``--features`` -> ``features=NAME``, ``--epochs`` ->
``train.epochs=``, ``--device`` -> ``train.device=``, ``--seed`` -> ``train.seed=``);
any further ``section.key=value`` or ``group=name`` words are passed on as they are.
"""

from __future__ import annotations

import argparse
from typing import Any

from vocalis.cli.backend import add_backend_args, backend_from_args
from vocalis.cli.choices import (
    LazyChoices,
    add_progress_arg,
    at_least_two,
    check_inputs,
    failure_lines,
    max_failures_arg,
    non_negative_int,
    open_share,
    positive_int,
    progress_wanted,
)


def _normalizations() -> list[str]:
    from vocalis.evaluation.crossval import NORMALIZATIONS

    return list(NORMALIZATIONS)


def _protocols() -> list[str]:
    from vocalis.evaluation.crossval import PROTOCOLS

    return list(PROTOCOLS)


def add_experiment_args(parser: argparse.ArgumentParser) -> None:
    """Flags shared by ``loso`` and ``cv``: the experiment, the output and the runner."""
    parser.add_argument("--config", metavar="RECIPE", default=None, help="recipe YAML or name")
    parser.add_argument("--manifest", default=None, help="manifest CSV (dataset.manifest)")
    parser.add_argument("--model", default=None, help="model group/registry name (model=NAME)")
    parser.add_argument(
        "--features", default=None, help="features group/extractor name (features=NAME)"
    )
    parser.add_argument("--epochs", type=positive_int, default=None, help="train.epochs")
    parser.add_argument("--device", default=None, help="train.device (auto, cpu, cuda:N)")
    parser.add_argument("--seed", type=non_negative_int, default=None, help="train.seed")
    parser.add_argument(
        "--max-failures",
        type=max_failures_arg,
        default=None,
        help="features.max_failures: unreadable files tolerated, a fraction (0.1) or a count",
    )
    parser.add_argument("--out", required=True, help="output folder (one run folder per fold)")
    parser.add_argument(
        "--parallel",
        type=positive_int,
        default=1,
        help="folds trained at once (local: separate processes; ray/slurm: tasks in flight)",
    )
    parser.add_argument(
        "--normalization",
        choices=LazyChoices(_normalizations),
        metavar="MODE",
        default=None,
        help="%(choices)s; online: train statistics only; speaker_norm: per-speaker "
        "standardisation of every speaker, test speaker included (reported separately); "
        "default: online, or the protocol an ensemble recipe fixes",
    )
    parser.add_argument(
        "--validation",
        choices=["stratified", "speaker"],
        default="stratified",
        help="validation rows inside each fold: a stratified share of the training rows, "
        "or held-out training speakers",
    )
    parser.add_argument(
        "--val-fraction", type=open_share, default=None, help="default: dataset.val_fraction"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="retrain finished folds from scratch"
    )
    add_progress_arg(parser, "training progress bars")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="more config overrides")
    add_backend_args(parser, "folds")


def overrides_from_args(args: argparse.Namespace) -> list[str]:
    """The config overrides the flags stand for, then the free ``KEY=VALUE`` words."""
    out = []
    if args.manifest:
        out.append(f"dataset.manifest={args.manifest}")
    if args.model:
        out.append(f"model={args.model}")
    if args.features:
        out.append(f"features={args.features}")
    if args.epochs is not None:
        out.append(f"train.epochs={args.epochs}")
    if args.device:
        out.append(f"train.device={args.device}")
    if args.seed is not None:
        out.append(f"train.seed={args.seed}")
    if getattr(args, "max_failures", None) is not None:
        out.append(f"features.max_failures={args.max_failures}")
    return out + list(args.overrides or [])


def recipe_from_args(
    args: argparse.Namespace, neural_flags: dict[str, Any], neural_overrides: list[str]
) -> Any:
    """``--config`` through the one recipe loader, :func:`vocalis.training.load_recipe`.

    A neural recipe (or none) gets ``neural_overrides`` (what the flags stand for,
    then the free ``KEY=VALUE`` words). An ensemble recipe (``kind: ensemble``)
    gets ``--manifest`` (as ``manifest=...``) and the free words, which address
    its own keys (``ensemble.fusion_resolution=0``), and refuses the neural-only
    flags in one line.

    Args:
        args: the parsed command line (``config``, ``manifest``, ``overrides``).
        neural_flags: ``{"--epochs": value, ...}`` of the flags only neural recipes take.
        neural_overrides: the overrides of a neural recipe.

    Returns:
        An :class:`~vocalis.training.ExperimentConfig` or an
        :class:`~vocalis.ensemble.recipe_file.EnsembleRecipe`.

    Raises:
        ConfigError: a neural-only flag with an ensemble recipe, or a bad recipe.
    """
    from vocalis.training import load_recipe

    if args.config:
        from vocalis.config import find_recipe, read_yaml
        from vocalis.ensemble.recipe_file import is_ensemble_recipe

        if is_ensemble_recipe(read_yaml(find_recipe(args.config))):
            from vocalis.errors import ConfigError

            given = [flag for flag, value in neural_flags.items() if value not in (None, False)]
            if given:
                raise ConfigError(
                    f"{args.config} is an ensemble recipe; {', '.join(given)} only apply to "
                    "neural recipes: edit the recipe's ensemble section (or override its keys, "
                    "e.g. ensemble.fusion_resolution=0)"
                )
            manifest = [f"manifest={args.manifest}"] if args.manifest else []
            return load_recipe(args.config, manifest + list(args.overrides or []))
    return load_recipe(args.config, neural_overrides)


def config_from_args(args: argparse.Namespace) -> Any:
    """The experiment of ``vocalis loso`` / ``vocalis cv`` (see :func:`recipe_from_args`)."""
    neural = {
        "--model": args.model, "--features": args.features, "--epochs": args.epochs,
        "--device": args.device, "--seed": args.seed,
    }  # fmt: skip
    return recipe_from_args(args, neural, overrides_from_args(args))


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``add_experiment_args``' flags for ``cross_validate`` / ``loso``.

    Where folds run and how (parallel, backend), the normalisation and validation
    protocols, overwrite and progress bars: everything but the experiment and folds.
    """
    return {
        "parallel": args.parallel,
        "backend": backend_from_args(args),
        "normalization": args.normalization,
        "validation": args.validation,
        "val_fraction": args.val_fraction,
        "overwrite": args.overwrite,
        "progress": progress_wanted(args),
    }


def print_summary(cv: dict[str, Any]) -> None:
    """A few lines: pooled and mean ± std metrics, failed folds, where the files are."""
    pooled, mean, std = cv.get("pooled") or {}, cv.get("mean") or {}, cv.get("std") or {}
    norm = (cv.get("normalization") or {}).get("protocol")
    print(f"{cv['protocol']} ({norm}): {cv['n_finished']}/{cv['n_folds']} folds finished")
    if pooled:
        for key in ("uar", "accuracy", "macro_f1"):
            print(
                f"  {key:<9} pooled {pooled[key]:.4f}   folds {mean.get(key, float('nan')):.4f}"
                f" ± {std.get(key, float('nan')):.4f}"
            )
    if cv.get("heads"):
        from vocalis.evaluation.crossval import head_line

        for name, head in list(cv["heads"].items())[1:]:  # the first head: the lines above
            print(f"  head {name}: pooled {head_line(head)}")
    for line in failure_lines(cv.get("failed") or {}):
        print(line)
    if cv.get("speaker_dependent"):
        print("  warning: speaker-dependent protocol, numbers are optimistic")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``cv`` subcommand."""
    parser = subparsers.add_parser(
        "cv",
        help="cross-validate an experiment (LOSO, group k-fold, stratified k-fold)",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--protocol",
        choices=LazyChoices(_protocols),
        metavar="NAME",
        default="group-kfold",
        help="%(choices)s; stratified is speaker-dependent (warns)",
    )
    parser.add_argument("--folds", type=at_least_two, default=5, help="k of the k-fold protocols")
    parser.add_argument("--group", default="speaker", help="manifest column kept within a fold")
    parser.add_argument(
        "--fold", action="append", default=None, metavar="NAME", help="run only this fold"
    )
    add_experiment_args(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis cv``."""
    check_inputs(recipe=args.config, paths=[("--manifest", args.manifest)])
    from vocalis.evaluation.crossval import cross_validate

    cv = cross_validate(
        config_from_args(args),
        args.out,
        protocol=args.protocol,
        folds=args.folds,
        group=args.group,
        only=args.fold,
        **run_options(args),
    )
    print_summary(cv)
    print(f"results: {args.out}/cv_results.json")
    return 0 if not cv.get("failed") else 1
