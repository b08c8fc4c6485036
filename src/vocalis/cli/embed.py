"""``vocalis embed``: utterance embeddings of a manifest (or files) to an ``.npz``.

Example::

    vocalis embed --checkpoint runs/x --manifest test.csv --type pt --out emb.npz
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vocalis.cli.choices import (
    LazyChoices,
    add_progress_arg,
    check_inputs,
    non_negative_int,
    positive_int,
    progress_wanted,
)


def _names(what: str) -> list[str]:
    import importlib

    return list(getattr(importlib.import_module("vocalis.inference.embed"), what))


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``embed`` subcommand."""
    parser = subparsers.add_parser(
        "embed",
        help="write utterance embeddings (pt, ft or st) to an .npz",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="audio files or folders")
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="a run folder, RUN/model or a checkpoint file (default: the bundled model)",
    )
    parser.add_argument("--manifest", default=None, help="manifest CSV (path, id, label)")
    parser.add_argument(
        "--split-dir",
        metavar="DIR_OR_URL",
        help="with --manifest: one .npz per part of this split folder (OUT.train.npz, "
        "OUT.val.npz, OUT.test.npz)",
    )
    parser.add_argument(
        "--type",
        dest="kind",
        default="pt",
        choices=LazyChoices(lambda: _names("KINDS")),
        metavar="KIND",
        help="%(choices)s; pt: backbone; ft: first head layer; st: shared layer",
    )
    parser.add_argument(
        "--pooling",
        default="mean",
        choices=LazyChoices(lambda: _names("POOLINGS")),
        metavar="MODE",
        help="merge heads (ft): %(choices)s",
    )
    parser.add_argument("--out", required=True, help="output .npz")
    parser.add_argument(
        "--batch-size", type=positive_int, default=16, help="files per forward pass"
    )
    parser.add_argument(
        "--threads",
        type=non_negative_int,
        default=0,
        help="CPU threads for torch (0: torch's default)",
    )
    parser.add_argument("--device", default="cpu", help="torch device")
    add_progress_arg(parser)
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis embed``."""
    from vocalis.errors import ConfigError

    if not args.inputs and not args.manifest:
        raise ConfigError("nothing to embed: give --manifest or audio files")
    check_inputs(
        checkpoint=args.checkpoint, paths=[("INPUT", args.inputs), ("--manifest", args.manifest)]
    )
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    from vocalis.inference.embed import embed

    jobs: list[tuple[Any, list[str], str]] = [(args.manifest, list(args.inputs), args.out)]
    if args.split_dir:
        from vocalis.data import read_manifest
        from vocalis.data.splitdir import split_manifest
        from vocalis.errors import ConfigError
        from vocalis.io import as_path

        if not args.manifest or args.inputs:
            raise ConfigError("--split-dir picks rows of --manifest; give --manifest, no files")
        parts = split_manifest(read_manifest(args.manifest, required=("path",)), args.split_dir)
        out = as_path(args.out)
        jobs = [(m, [], str(out.with_name(f"{out.stem}.{p}.npz"))) for p, m in parts.items()]
    for manifest, inputs, target in jobs:
        result = embed(
            args.checkpoint,
            manifest=manifest,
            inputs=inputs,
            kind=args.kind,
            pooling=args.pooling,
            out=target,
            batch_size=args.batch_size,
            device=args.device,
            progress=progress_wanted(args),
        )
        n, dim = result.embeddings.shape
        print(f"{n} embeddings of size {dim} ({args.kind}) written to {target}")
        if result.failed:
            print(f"{len(result.failed)} file(s) skipped (see messages above)", file=sys.stderr)
    return 0
