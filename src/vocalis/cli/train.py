"""``vocalis train``: train a classifier from a recipe or from flags; rerunning resumes.

An ensemble recipe (``kind: ensemble``) is fitted on every row of the manifest
(:func:`vocalis.training.ensemble_estimator.train_ensemble`) into the same run
folder layout, ``model.pt`` included.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from vocalis.cli.choices import (
    StoreWithText,
    add_progress_arg,
    check_inputs,
    max_failures_arg,
    non_negative_int,
    open_share,
    positive_float,
    positive_int,
    progress_wanted,
)
from vocalis.io import as_path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``vocalis train``."""
    p = subparsers.add_parser(
        "train",
        help="train a classifier (resumes an existing run folder)",
        description=(
            "Train a classifier. Settings come from a recipe (--config), the config groups "
            "in configs/ and dotted overrides such as train.epochs=30 model=ecapa. An "
            "existing --out folder resumes from its last.pt; --overwrite starts over. Flags "
            "left out take the config's values: see `vocalis config show`. An ensemble recipe "
            "(kind: ensemble) is fitted on all rows of --manifest and saved as RUN/model.pt."
        ),
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="group choices (model=ecapa) and dotted overrides (train.lr=3e-4)",
    )
    p.add_argument(
        "--config",
        help="recipe YAML or name, e.g. configs/recipes/emodb_tier1.yaml or emodb_tier1",
    )
    p.add_argument("--manifest", help="manifest CSV (dataset.manifest)")
    p.add_argument(
        "--split-dir",
        metavar="DIR_OR_URL",
        help="folder of train.csv / test.csv (/ val.csv) id lists fixing the parts "
        "(dataset.split_dir)",
    )
    p.add_argument("--val-csv", help="a second manifest used as validation (dataset.val_manifest)")
    p.add_argument(
        "--test-csv", help="a manifest scored with the best epoch (dataset.test_manifest)"
    )
    p.add_argument(
        "--model",
        action=StoreWithText,
        text=lambda: _choices()[0],
        help="model config or registered model: %(text)s",
    )
    p.add_argument(
        "--features",
        action=StoreWithText,
        text=lambda: _choices()[1],
        help="feature config or extractor: %(text)s",
    )
    p.add_argument(
        "--val-split", type=open_share, help="share of speakers held out (dataset.val_fraction)"
    )
    p.add_argument(
        "--label-groups",
        help="text file, one head per line, its label columns comma-separated "
        "(dataset.label_groups); e.g. 'emotion' then 'cough,wheeze'",
    )
    p.add_argument(
        "--loss",
        help="train.loss of every head: ce, focal, aam, bce (multi-label), mse or smoothl1 "
        "(regression); per head: 'train.loss={emotion: ce, dur: mse}'",
    )
    p.add_argument(
        "--shared-dim",
        type=positive_int,
        help="size of a dense layer shared by all heads (model.params.shared_dim)",
    )
    p.add_argument("--epochs", type=positive_int, help="train.epochs")
    p.add_argument("--batch-size", type=positive_int, help="train.batch_size")
    p.add_argument("--lr", type=positive_float, help="train.lr")
    p.add_argument("--device", help="train.device: auto, cpu, cuda, cuda:N")
    p.add_argument("--seed", type=non_negative_int, help="train.seed")
    p.add_argument(
        "--max-failures",
        type=max_failures_arg,
        help="features.max_failures: unreadable files tolerated, a fraction (0.1) or a count",
    )
    p.add_argument(
        "--embedding-path",
        help="precomputed pretrained-model embeddings, a .pt keyed by utterance id "
        "(features.embedding_path; without --manifest the rows come from its speakers)",
    )
    p.add_argument(
        "--feature-path",
        help="precomputed handcrafted (C, T) features, a .pt keyed by utterance id "
        "(features.feature_path)",
    )
    p.add_argument("--amp", action="store_true", help="mixed precision (train.amp=true)")
    p.add_argument(
        "--out",
        help="run folder (default: runs/<recipe or model-features>; speaker verification: "
        "runs/mode3_gating_mfbe_pitch_<date>_<time>)",
    )
    p.add_argument("--overwrite", action="store_true", help="discard an existing run in --out")
    add_progress_arg(p)
    p.set_defaults(func=run)
    return p


def _choices() -> tuple[str, str]:
    """Names offered by the config groups and the registries (for --help)."""
    from vocalis.config import config_dir

    root = config_dir()

    def group(name: str) -> set[str]:
        return {p.stem for p in (root / name).glob("*.yaml")}

    models, feats = group("model"), group("features")
    try:
        from vocalis.models import MODELS

        models |= set(MODELS.names())
    except ImportError:
        pass
    try:
        from vocalis.features import FEATURES

        feats |= set(FEATURES.names())
    except ImportError:
        pass
    return ", ".join(sorted(models)), ", ".join(sorted(feats))


def overrides_from_args(args: argparse.Namespace) -> list[str]:
    """The dotted overrides the flags stand for, then the explicit ones (which win)."""
    out: list[str] = []
    if args.model:
        out.append(f"model={args.model}")
    if args.features:
        out.append(f"features={args.features}")
    flags = (
        ("manifest", "dataset.manifest"),
        ("split_dir", "dataset.split_dir"),
        ("val_csv", "dataset.val_manifest"),
        ("test_csv", "dataset.test_manifest"),
        ("val_split", "dataset.val_fraction"),
        ("label_groups", "dataset.label_groups"),
        ("loss", "train.loss"),
        ("shared_dim", "model.params.shared_dim"),
        ("epochs", "train.epochs"),
        ("batch_size", "train.batch_size"),
        ("lr", "train.lr"),
        ("device", "train.device"),
        ("seed", "train.seed"),
        ("max_failures", "features.max_failures"),
    )
    for attr, key in flags:
        value = getattr(args, attr, None)
        if value is not None:
            out.append(f"{key}={value}")
    if getattr(args, "amp", False):
        out.append("train.amp=true")
    pt = [(k, getattr(args, k, None)) for k in ("embedding_path", "feature_path")]
    if any(v for _, v in pt):
        out += ["features.extractor.name=precomputed", "features.cache_dir=null"]
        out += [f"features.{k}={v}" for k, v in pt if v]
        if not getattr(args, "manifest", None):
            out.append("dataset.manifest=null")  # the rows come from the files' speakers
    return out + list(args.overrides or [])


def experiment_name(config, when: float | None = None) -> str | None:
    """A speaker-verification run's default name, ``mode3_gating_mfbe_pitch_20261201_120000``.

    Mode, fusion (mode 3) or ``ptm`` (mode 1), the handcrafted feature mode (modes 2, 3)
    and the local start time; ``None`` for other models.

    Example:
        >>> from vocalis.training.config import load_config
        >>> experiment_name(load_config("sv_fusion", ["model.mode=1"]), 0.0)[:10]
        'mode1_ptm_'
    """
    import time

    if config.model.name != "sv_fusion":
        return None
    p = config.model.params
    parts = [f"mode{p.mode}"]
    parts += {1: ["ptm"], 2: [p.features], 3: [p.fusion, p.features]}[p.mode]
    stamp = time.strftime("%Y%m%d_%H%M%S", time.localtime(time.time() if when is None else when))
    return "_".join([*parts, stamp])


def default_out(args: argparse.Namespace, config) -> str:
    """The run folder used when ``--out`` is not given.

    ``runs/<experiment name>`` for speaker verification (:func:`experiment_name`, with a
    timestamp: one folder per run), else ``runs/<recipe or model-features>`` (a rerun
    resumes it).
    """
    name = experiment_name(config) if hasattr(config, "model") else None
    if name is not None:
        return str(Path("runs") / name)
    if args.config:
        return str(Path("runs") / Path(args.config).stem)
    return str(Path("runs") / f"{config.model.name}-{config.features.extractor.name}")


def _train_ensemble(recipe, args: argparse.Namespace) -> int:
    """``vocalis train`` of an ensemble recipe: fit on all rows, save ``model.pt``."""
    from vocalis.training.ensemble_estimator import train_ensemble

    out = args.out or default_out(args, recipe)
    fitted = train_ensemble(recipe, out, overwrite=args.overwrite)
    info = fitted.info
    print(
        f"ensemble of {len(info['weights'])} members on {fitted.fit.n_classes} classes: C "
        f"{info['chosen_c']}, fusion weights {info['weights']}, inner LOSO UAR "
        f"{info['fused_inner_uar']:.4f}; run folder {out} (model: {as_path(out) / 'model.pt'})"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis train`` (neural recipe or flags; an ensemble recipe fits on all rows)."""
    check_inputs(recipe=args.config, paths=[("--manifest", args.manifest)])
    from vocalis.cli.cv import recipe_from_args
    from vocalis.ensemble.recipe_file import EnsembleRecipe
    from vocalis.training import train

    neural = {
        f"--{k.replace('_', '-')}": getattr(args, k)
        for k in ("model", "features", "val_split", "epochs", "batch_size", "lr", "device",
                  "seed", "amp", "split_dir", "val_csv", "test_csv", "label_groups", "loss",
                  "shared_dim")
    }  # fmt: skip
    config = recipe_from_args(args, neural, overrides_from_args(args))
    if isinstance(config, EnsembleRecipe):
        return _train_ensemble(config, args)
    out = args.out or default_out(args, config)
    result = train(config, out, overwrite=args.overwrite, progress=progress_wanted(args))
    if os.environ.get("RANK", "0") == "0":
        from vocalis.evaluation.plots import plot_run

        plot_run(out)  # training_curves.png, confusion_val.png, gating.png
    best = result.best_metrics
    if best and os.environ.get("RANK", "0") == "0":
        print(
            f"best epoch {result.best_epoch}: val UAR {best.get('val_uar', float('nan')):.4f} "
            f"acc {best.get('val_acc', float('nan')):.4f}; run folder {out}"
        )
    return 0
