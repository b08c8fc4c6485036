"""``vocalis export``: a TorchScript or ONNX graph from waveform (or features) to probabilities.

Example::

    vocalis export --checkpoint best.pt --format onnx --out model.onnx
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``export`` subcommand."""
    from vocalis.inference.export import FORMATS, INPUTS

    parser = subparsers.add_parser(
        "export",
        help="export a model to ONNX or TorchScript (waveform -> probabilities)",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--checkpoint", default=None, help="model checkpoint (default: bundled)")
    parser.add_argument("--format", default="onnx", choices=FORMATS, help="graph format")
    parser.add_argument("--out", required=True, help="output file (model.onnx, model.pt)")
    parser.add_argument(
        "--input", default="waveform", choices=INPUTS, help="graph input: audio or features"
    )
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 17)")
    parser.add_argument(
        "--no-check", action="store_true", help="keep the graph even if it differs from PyTorch"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis export``."""
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
