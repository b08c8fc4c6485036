"""The Ray backend: tasks on a Ray cluster (``pip install 'vocalis[cluster]'``).

Start a cluster the usual way (``ray start --head`` on one machine,
``ray start --address=HEAD:6379`` on the others, the same Python environment
with Vocalis on every node and the run folder on a shared filesystem or an
fsspec URL), then run with ``--backend ray --ray-address auto`` on a node of
it (or ``HOST:PORT``). Without an address, a private Ray with ``--parallel``
CPUs is started for the run and shut down after it.

Each task is one Ray task (``num_cpus`` = its torch threads, 1 by default);
``max_retries`` reruns a task whose worker process or node died (an error the
task raises itself is not retried: it is the task's result). When the driver
stops (a signal), the tasks in flight are cancelled with ``force=True`` (their
worker processes are killed); when the driver dies (``kill -9``), Ray ends its
job and kills the job's workers.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from vocalis.backends import BACKENDS, BackendConfig, TaskExecutor, limit_threads
from vocalis.errors import ConfigError

__all__ = ["RayBackend"]

log = logging.getLogger(__name__)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--backend ray needs the 'ray' package: pip install 'vocalis[cluster]'"
        ) from None
    return ray


def _task(threads: int, fn: Callable[..., Any], *args: Any) -> Any:
    """What runs on a Ray worker: limit the threads, then ``fn(*args)``."""
    if not threads:
        import ray

        threads = max(1, int(ray.get_runtime_context().get_assigned_resources().get("CPU", 1)))
    limit_threads(threads)
    return fn(*args)


class _RayExecutor:
    def __init__(self, config: BackendConfig) -> None:
        ray = _ray()
        self._ray = ray
        self._owner = not ray.is_initialized()
        if self._owner:
            private = config.address is None
            try:
                ray.init(
                    address=config.address,
                    num_cpus=config.workers * max(1, config.threads) if private else None,
                    include_dashboard=False,
                    logging_level=logging.WARNING,
                    log_to_driver=True,
                )
            except ConnectionError as err:
                raise ConfigError(
                    f"--ray-address {config.address}: no Ray cluster there ({err}); start one "
                    "with `ray start --head` or omit --ray-address for a private local Ray"
                ) from None
        cpus = config.threads or 1
        self._remote = ray.remote(_task).options(
            num_cpus=cpus, max_retries=config.max_retries, retry_exceptions=False
        )
        self._threads = config.threads
        self._refs: dict[Future, Any] = {}

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        ref = self._remote.remote(self._threads, fn, *args)
        future = ref.future()
        self._refs[future] = ref
        future.add_done_callback(lambda f: self._refs.pop(f, None))
        return future

    def stop(self) -> None:
        for ref in list(self._refs.values()):
            try:
                self._ray.cancel(ref, force=True)
            except Exception as err:  # already finished, or the cluster is gone
                log.debug("ray.cancel: %s", err)
        self._refs.clear()

    def __enter__(self) -> _RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._owner:
            self._ray.shutdown()  # a private Ray stops; a cluster ends this job's workers


@BACKENDS.register("ray")
@dataclasses.dataclass
class RayBackend:
    """Tasks on a Ray cluster (see the module docstring).

    Args:
        config: ``workers`` tasks in flight, ``address``, ``max_retries``, ``threads``.
    """

    config: BackendConfig

    def __post_init__(self) -> None:
        _ray()  # a missing package is one line now, not after the folds are planned

    def in_process(self, n_tasks: int) -> bool:
        """Never: ``--backend ray`` asks for the cluster even for one task."""
        return False

    def executor(self, n_tasks: int) -> TaskExecutor:
        """Connect to (or start) Ray; leaving the block disconnects (or stops it)."""
        return _RayExecutor(self.config)
