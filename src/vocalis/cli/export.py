"""``vocalis export``: a TorchScript or ONNX graph from waveform (or features) to probabilities.

Example::

    vocalis export --checkpoint runs/x --format onnx --out model.onnx
"""

from __future__ import annotations

import argparse
from typing import Any

from vocalis.cli.choices import LazyChoices, check_inputs, opset


def _names(what: str) -> list[str]:
    import importlib

    return list(getattr(importlib.import_module("vocalis.inference.export"), what))


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``export`` subcommand."""
    parser = subparsers.add_parser(
        "export",
        help="export a model to ONNX or TorchScript (waveform -> probabilities)",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="a run folder, RUN/model or a checkpoint file (default: the bundled model)",
    )
    parser.add_argument(
        "--format",
        default="onnx",
        choices=LazyChoices(lambda: _names("FORMATS")),
        metavar="FORMAT",
        help="graph format: %(choices)s",
    )
    parser.add_argument("--out", required=True, help="output file (model.onnx, model.pt)")
    parser.add_argument(
        "--input",
        default="waveform",
        choices=LazyChoices(lambda: _names("INPUTS")),
        metavar="KIND",
        help="graph input, audio or features: %(choices)s",
    )
    parser.add_argument("--opset", type=opset, default=17, help="ONNX opset (>= 17)")
    parser.add_argument(
        "--no-check", action="store_true", help="keep the graph even if it differs from PyTorch"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis export``."""
    check_inputs(checkpoint=args.checkpoint)
    from vocalis.inference.export import export

    report = export(
        args.checkpoint,
        args.out,
        format=args.format,
        input=args.input,
        opset=args.opset,
        check=not args.no_check,
    )
    meta = report.metadata
    print(
        f"{report.format} written to {report.path}: {report.input} ({meta['sample_rate']} Hz) -> "
        f"probs over {', '.join(meta['classes'])}; max |p - p_torch| = {report.max_abs_diff:.1e}; "
        f"padded batches {'exact' if report.padded_batches else 'NOT exact: one clip per call'}"
    )
    return 0
