"""Where independent tasks run: this process, a local process pool, a Ray cluster or SLURM.

Cross-validation folds (:mod:`vocalis.evaluation.crossval`), sweep combinations
(:mod:`vocalis.evaluation.sweep`) and feature extraction
(:func:`vocalis.features.pipeline.extract_many`) are lists of independent
tasks. They fan out through one small contract, whatever the engine::

    backend = make_backend(BackendConfig("ray", workers=3, address="auto"))
    with backend.executor(n_tasks) as pool:    # a concurrent.futures-style executor
        future = pool.submit(fn, *args)        # fn: a picklable module-level function
        future.result()
        pool.stop()                            # a signal: kill the tasks in flight now

:func:`run_tasks` drives it (at most ``workers`` tasks in flight, results in
completion order, everything stopped on a signal). Implementations, found by
name in :data:`BACKENDS`:

* ``local`` (:class:`LocalBackend`): spawned processes on this machine that die
  with their parent (:func:`vocalis.signals.worker_init`), or threads of this
  process (``pool="thread"``, the feature extractor's default); one worker runs
  the task in this process.
* ``ray`` (:class:`vocalis.backends.ray_cluster.RayBackend`): Ray tasks on a
  running cluster (``address="auto"`` or ``HOST:PORT``) or a private one started
  for the run; a worker lost mid-task is retried (``max_retries``); the tasks of a
  killed or stopped driver are killed by Ray.
* ``slurm`` (:class:`vocalis.backends.slurm.SubmititBackend`): one SLURM job per
  task through submitit (``cluster="local"`` runs the jobs as local processes,
  for tests); a job that dies without a result is resubmitted; jobs watch a
  heartbeat file of the driver and exit when it stops beating.

What stays the same on every backend: the task function and its arguments, so
results are those of a single-process run; outputs are written by the task
into the run folder (a shared filesystem or an fsspec URL on a cluster), which
stays the single source of truth: a rerun skips what is finished there.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from typing import Any, Literal, Protocol

from vocalis.errors import ConfigError
from vocalis.registry import Registry
from vocalis.signals import wait_first

log = logging.getLogger(__name__)

__all__ = [
    "BACKENDS",
    "Backend",
    "BackendConfig",
    "LocalBackend",
    "TaskExecutor",
    "limit_threads",
    "make_backend",
    "run_tasks",
]


@dataclasses.dataclass(frozen=True)
class BackendConfig:
    """Which engine runs the tasks, and how.

    Attributes:
        name: ``local``, ``ray`` or ``slurm`` (:data:`BACKENDS`).
        workers: tasks in flight at once (``--parallel``).
        address: Ray: ``auto`` (the cluster ``ray start`` runs on this machine),
            ``HOST:PORT``, or None to start a private local Ray for the run.
        max_retries: times a task whose worker died is run again (Ray, SLURM).
        threads: torch threads per task; 0: the CPUs the engine gives it
            (local: ``cpu_count // workers``).
        options: engine options: SLURM's submitit parameters (``slurm_partition``,
            ``timeout_min``, ``cpus_per_task``, ``mem_gb``, ``cluster``: ``slurm``
            or ``local``, ``folder``: where submitit keeps its job files).

    Example:
        >>> BackendConfig("ray", workers=3, address="auto").name
        'ray'
        >>> BackendConfig("spark")
        Traceback (most recent call last):
        ...
        vocalis.errors.ConfigError: backend='spark'; expected one of: local, ray, slurm
    """

    name: str = "local"
    workers: int = 1
    address: str | None = None
    max_retries: int = 2
    threads: int = 0
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        names = ("local", "ray", "slurm")
        if self.name not in names:
            from vocalis.registry import did_you_mean

            raise ConfigError(
                f"backend={self.name!r}{did_you_mean(self.name, names)}; expected one of: "
                f"{', '.join(names)}"
            )
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ConfigError(f"parallel={self.workers!r}; expected at least 1 task at a time")
        if self.max_retries < 0:
            raise ConfigError(f"max_retries={self.max_retries}; expected 0 or more")
        if self.address is not None and self.name != "ray":
            raise ConfigError(
                f"--ray-address {self.address} is for --backend ray (backend is {self.name})"
            )


class TaskExecutor(Protocol):
    """A ``concurrent.futures``-style executor that can kill its tasks.

    Used as a context manager; leaving the block shuts the executor down
    (and, for an engine it started itself, the engine).
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        """Run ``fn(*args)`` on a worker; the future holds its result or error."""
        ...

    def stop(self) -> None:
        """Kill every task in flight and drop the queued ones (a signal)."""
        ...

    def __enter__(self) -> TaskExecutor: ...

    def __exit__(self, *exc: object) -> None: ...


class Backend(Protocol):
    """An engine that runs tasks: see the module docstring.

    Attributes:
        config: how it was configured.
    """

    config: BackendConfig

    def in_process(self, n_tasks: int) -> bool:
        """True when ``n_tasks`` tasks are best run one by one in this process."""
        ...

    def executor(self, n_tasks: int) -> TaskExecutor:
        """An executor for ``n_tasks`` tasks."""
        ...


#: Backend name -> class taking a :class:`BackendConfig`.
BACKENDS: Registry[Callable[[BackendConfig], Backend]] = Registry("backend")


def _threads(config: BackendConfig) -> int:
    import os

    return config.threads or max(1, (os.cpu_count() or 1) // config.workers)


def limit_threads(threads: int) -> None:
    """Limit a task's torch (and BLAS) threads before it runs (every backend)."""
    import os

    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _local_init(threads: int) -> None:
    from vocalis.signals import worker_init

    worker_init()  # ignore SIGINT, die with the parent (even on kill -9)
    limit_threads(threads)


class _LocalExecutor:
    """A spawned :class:`~concurrent.futures.ProcessPoolExecutor` whose workers die with us.

    Or, for ``pool="thread"``, a thread pool in this process: no start-up cost,
    for tasks whose heavy steps release the GIL (torch, numpy, soundfile, soxr).
    """

    def __init__(self, workers: int, threads: int, pool: str = "process") -> None:
        import multiprocessing as mp
        from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

        self._processes = pool == "process"
        self._pool: Executor
        if self._processes:
            self._pool = ProcessPoolExecutor(
                workers,
                mp_context=mp.get_context("spawn"),
                initializer=_local_init,
                initargs=(threads,),
            )
        else:
            self._pool = ThreadPoolExecutor(workers)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        return self._pool.submit(fn, *args)

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._processes:  # threads cannot be killed: the running tasks finish
            from vocalis.signals import stop_children

            stop_children()

    def __enter__(self) -> _LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@BACKENDS.register("local")
@dataclasses.dataclass
class LocalBackend:
    """Processes on this machine (``--parallel N``), or this process for one worker.

    Args:
        config: ``workers`` processes, each with ``threads`` torch threads.
        pool: ``"process"`` (spawned workers that die with this process) or
            ``"thread"`` (threads of this process, sharing its torch threads;
            what :func:`vocalis.features.pipeline.extract_many` uses by default).
    """

    config: BackendConfig
    pool: Literal["process", "thread"] = "process"

    def __post_init__(self) -> None:
        if self.pool not in ("process", "thread"):
            raise ConfigError(f"pool={self.pool!r}; expected 'process' or 'thread'")

    def in_process(self, n_tasks: int) -> bool:
        """One worker or one task: no pool."""
        return self.config.workers <= 1 or n_tasks <= 1

    def executor(self, n_tasks: int) -> TaskExecutor:
        """A pool of ``min(workers, n_tasks)`` spawned workers (or threads)."""
        workers = min(self.config.workers, max(1, n_tasks))
        return _LocalExecutor(workers, _threads(self.config), self.pool)


def make_backend(config: BackendConfig | Backend | str | None = None, **kwargs: Any) -> Backend:
    """The backend a config (or a name, with :class:`BackendConfig` fields) describes.

    Args:
        config: a :class:`BackendConfig`, a backend (returned as is), a name, or
            None (``local``).
        **kwargs: :class:`BackendConfig` fields when ``config`` is a name or None.

    Returns:
        The backend.

    Raises:
        ConfigError: an unknown backend or bad option.
        DataError: the engine's package is not installed.
    """
    if config is None or isinstance(config, str):
        config = BackendConfig(config or "local", **kwargs)
    if not isinstance(config, BackendConfig):
        return config
    if config.name == "ray":
        from vocalis.backends import ray_cluster  # noqa: F401  (registers "ray")
    elif config.name == "slurm":
        from vocalis.backends import slurm  # noqa: F401  (registers "slurm")
    return BACKENDS.get(config.name)(config)


def run_tasks(
    backend: Backend,
    fn: Callable[..., Any],
    tasks: Sequence[tuple],
    on_done: Callable[[int, Any, BaseException | None], None],
    in_flight: int | None = None,
) -> None:
    """Run ``fn(*tasks[i])`` for every ``i``, at most ``workers`` at once.

    ``on_done(i, result, error)`` is called in this process as each task ends
    (``error`` is the exception a task raised or its lost worker's error,
    ``result`` None then). A signal (``KeyboardInterrupt``) or an error raised
    by ``on_done`` kills the tasks in flight before it propagates.

    Args:
        backend: where the tasks run.
        fn: a picklable module-level function.
        tasks: argument tuples.
        on_done: result callback.
        in_flight: tasks submitted at a time; default the backend's ``workers``,
            which is how many a Ray cluster or SLURM runs at once. A local pool
            runs only its workers at a time whatever this is: more keeps them busy
            while this process handles results (many short tasks: feature files).
    """
    if backend.in_process(len(tasks)):
        for i, args in enumerate(tasks):
            try:
                result, error = fn(*args), None
            except Exception as err:
                result, error = None, err
            on_done(i, result, error)
        return
    todo: Iterator[int] = iter(range(len(tasks)))
    with backend.executor(len(tasks)) as pool:
        running: dict[Future, int] = {}

        def top_up() -> None:
            while len(running) < (in_flight or backend.config.workers):
                i = next(todo, None)
                if i is None:
                    return
                running[pool.submit(fn, *tasks[i])] = i

        try:
            top_up()
            while running:
                finished, _ = wait_first(list(running))
                for fut in sorted(finished, key=running.__getitem__):
                    i = running.pop(fut)
                    try:
                        result, error = fut.result(), None
                    except Exception as err:  # the task raised, or its worker was lost
                        result, error = None, err
                    on_done(i, result, error)
                top_up()
        except BaseException:
            pool.stop()
            raise
