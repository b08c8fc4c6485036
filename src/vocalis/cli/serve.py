"""``vocalis serve``: the web service and page (FastAPI + uvicorn).

Example::

    vocalis serve --checkpoint runs/x/model --port 8000    # then open http://127.0.0.1:8000
"""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``serve`` subcommand."""
    parser = subparsers.add_parser(
        "serve",
        help="serve a model over HTTP with an upload/record page",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--checkpoint",
        default=None,
        help="a run folder, RUN/model or a checkpoint file (default: the bundled model)",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8000, help="TCP port")
    parser.add_argument(
        "--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)"
    )
    parser.add_argument("--max-upload-mb", type=float, default=10, help="largest upload (MiB)")
    parser.add_argument("--max-duration", type=float, default=60, help="longest clip (s)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis serve``."""
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    from vocalis.inference.service import serve

    serve(
        args.checkpoint,
        host=args.host,
        port=args.port,
        max_upload_mb=args.max_upload_mb,
        max_duration_s=args.max_duration,
    )
    return 0
