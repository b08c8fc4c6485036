"""The flags that choose where independent tasks run (``loso``, ``cv``, ``sweep``, ``features``).

``--backend local|ray|slurm``, ``--ray-address``, ``--max-retries`` and
``--slurm KEY=VALUE`` build a :class:`vocalis.backends.BackendConfig` with the
verb's ``--parallel``; nothing here imports an engine.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_backend_args", "backend_from_args"]


def _slurm_option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected KEY=VALUE (slurm_partition=gpu, timeout_min=60, mem_gb=16)"
        )
    import yaml

    return key.strip(), yaml.safe_load(value)


def add_backend_args(parser: argparse.ArgumentParser, what: str = "tasks") -> None:
    """Add ``--backend``, ``--ray-address``, ``--max-retries`` and ``--slurm``.

    Args:
        parser: the verb's parser (which has its own ``--parallel``).
        what: what the tasks are, for the help ("folds", "combinations").
    """
    group = parser.add_argument_group("scale-out (vocalis.backends)")
    group.add_argument(
        "--backend",
        choices=["local", "ray", "slurm"],
        default="local",
        help=f"where the {what} run: local processes (--parallel), a Ray cluster, "
        "or SLURM jobs through submitit; results are the same on every backend",
    )
    group.add_argument(
        "--ray-address",
        default=None,
        metavar="auto|HOST:PORT",
        help="--backend ray: the cluster to join ('auto': the one `ray start` runs on this "
        "machine); default: a private local Ray with --parallel CPUs",
    )
    group.add_argument(
        "--max-retries",
        type=int,
        default=2,
        help=f"ray/slurm: times one of the {what} is rerun when its worker dies",
    )
    group.add_argument(
        "--slurm",
        type=_slurm_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="--backend slurm: a submitit parameter (slurm_partition=gpu, timeout_min=60, "
        "cpus_per_task=4, mem_gb=16, cluster=local to run the jobs here; repeatable)",
    )


def backend_from_args(args: argparse.Namespace, workers: int | None = None) -> Any:
    """The :class:`~vocalis.backends.BackendConfig` of the parsed flags.

    Args:
        args: the parsed command line.
        workers: tasks in flight (default: ``args.parallel``).

    Raises:
        ConfigError: an option of another backend (``--ray-address`` without ray).
    """
    from vocalis.backends import BackendConfig
    from vocalis.errors import ConfigError

    if args.slurm and args.backend != "slurm":
        raise ConfigError(f"--slurm options are for --backend slurm (backend is {args.backend})")
    return BackendConfig(
        args.backend,
        workers=args.parallel if workers is None else workers,
        address=args.ray_address,
        max_retries=args.max_retries,
        options=dict(args.slurm),
    )
