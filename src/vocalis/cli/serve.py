"""``vocalis serve``: the web service and page (FastAPI + uvicorn).

Example::

    vocalis serve --checkpoint runs/x/model --port 8000    # then open http://127.0.0.1:8000
    vocalis serve --checkpoint runs/x --host 0.0.0.0 --workers 4 --max-queue 16

The port is bound before the model loads: a busy or invalid port is a one-line
error at once. Every limit is per worker; the peak memory of one worker is
``model + C * (2 U + 8 D R + 32 D 16000) + Q * 64 KiB`` bytes (C concurrency,
U upload bytes, D duration s, R max sample rate, Q queue; see
``vocalis.inference.guards``).
"""

from __future__ import annotations

import argparse
from typing import Any

from vocalis.cli.choices import (
    check_inputs,
    non_negative_int,
    port,
    positive_float,
    positive_int,
)


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
    parser.add_argument("--port", type=port, default=8000, help="TCP port")
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="worker processes (uvicorn; each loads the model, limits are per worker)",
    )
    parser.add_argument(
        "--threads",
        type=non_negative_int,
        default=0,
        help="CPU threads for torch (0: torch's default)",
    )
    limits = parser.add_argument_group("limits (per worker)")
    limits.add_argument(
        "--max-upload-mb", type=positive_float, default=10, help="largest upload (MiB)"
    )
    limits.add_argument("--max-duration", type=positive_float, default=60, help="longest clip (s)")
    limits.add_argument(
        "--max-sample-rate", type=positive_int, default=192000, help="highest sample rate (Hz)"
    )
    limits.add_argument(
        "--max-concurrency", type=positive_int, default=1, help="predictions at once"
    )
    limits.add_argument(
        "--max-queue",
        type=non_negative_int,
        default=8,
        help="requests waiting for a slot (503 above)",
    )
    limits.add_argument(
        "--queue-timeout", type=positive_float, default=30, help="longest wait in the queue (s)"
    )
    limits.add_argument(
        "--header-timeout", type=positive_float, default=10, help="time to send headers (s)"
    )
    limits.add_argument(
        "--body-timeout", type=positive_float, default=30, help="time to send the body (s)"
    )
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Run ``vocalis serve``."""
    check_inputs(checkpoint=args.checkpoint)  # before the port is bound or the model loaded
    from vocalis.errors import ConfigError
    from vocalis.inference.guards import ServiceLimits
    from vocalis.inference.server import serve

    if args.max_queue < 0:
        raise ConfigError(f"--max-queue {args.max_queue}: expected 0 or more")
    limits = ServiceLimits(
        max_upload_mb=args.max_upload_mb,
        max_duration_s=args.max_duration,
        max_sample_rate=args.max_sample_rate,
        max_concurrency=args.max_concurrency,
        max_queue=args.max_queue,
        queue_timeout_s=args.queue_timeout,
        header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout,
    )

    def ready(address: tuple[str, int]) -> None:
        print(f"vocalis serve: listening on http://{address[0]}:{address[1]}, loading the model")
        if args.threads > 0:
            import torch

            torch.set_num_threads(args.threads)

    serve(
        args.checkpoint,
        host=args.host,
        port=args.port,
        limits=limits,
        workers=args.workers,
        ready=ready,
    )
    return 0
