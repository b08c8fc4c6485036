"""The SLURM backend: one job per task through submitit (``pip install 'vocalis[cluster]'``).

``--backend slurm --slurm slurm_partition=gpu --slurm timeout_min=120
--slurm cpus_per_task=4 --slurm mem_gb=16`` submits each task (a fold, a sweep
combination, a chunk of files) as a SLURM job with those submitit parameters;
``--parallel N`` jobs are queued at a time. The job pickles (``folder``,
default ``.vocalis-submitit/`` in the working directory) and the run folder
must be on a filesystem the nodes share. ``--slurm cluster=local`` runs the
jobs as local processes (submitit's ``LocalExecutor``), which is how the tests
drive this backend without a SLURM installation.

Retries: a job that ends without a result (its node died, it was preempted or
timed out: submitit's ``UncompletedJobError``) is submitted again, up to
``max_retries`` times; an error raised by the task is its result and is not
retried. A stopped driver (a signal) cancels its jobs (``scancel``). A killed
driver cannot cancel anything, so every job watches a heartbeat file the driver
touches every few seconds and exits when it has not been touched for
:data:`HEARTBEAT_TIMEOUT_S`: jobs die with their parent on SLURM too.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from vocalis.backends import BACKENDS, BackendConfig, TaskExecutor, limit_threads
from vocalis.errors import ConfigError

__all__ = ["HEARTBEAT_TIMEOUT_S", "SubmititBackend"]

log = logging.getLogger(__name__)

#: A job exits when the driver's heartbeat file is older than this (seconds).
HEARTBEAT_TIMEOUT_S = 60.0

_BEAT_S = 5.0


def _submitit() -> Any:
    try:
        import submitit
    except ImportError:
        raise ConfigError(
            "--backend slurm needs the 'submitit' package: pip install 'vocalis[cluster]'"
        ) from None
    return submitit


def _watch_heartbeat(path: str, timeout_s: float) -> None:
    while True:
        time.sleep(min(_BEAT_S, timeout_s / 4))
        try:
            age = time.time() - os.stat(path).st_mtime
        except OSError:
            age = float("inf")  # the driver removed it: it is gone
        if age > timeout_s:
            os._exit(143)


def _job(heartbeat: str, timeout_s: float, threads: int, fn: Callable[..., Any], *args: Any) -> Any:
    """What runs in a SLURM job: watch the driver, limit the threads, then ``fn(*args)``."""
    threading.Thread(
        target=_watch_heartbeat, args=(heartbeat, timeout_s), name="driver-watch", daemon=True
    ).start()
    limit_threads(threads or int(os.environ.get("SLURM_CPUS_PER_TASK", "1")))
    return fn(*args)


class _SubmititExecutor:
    def __init__(self, config: BackendConfig) -> None:
        submitit = _submitit()
        self._submitit = submitit
        options = dict(config.options)
        folder = Path(options.pop("folder", ".vocalis-submitit"))
        cluster = options.pop("cluster", None)
        self._timeout_s = float(options.pop("heartbeat_timeout_s", HEARTBEAT_TIMEOUT_S))
        self._executor = submitit.AutoExecutor(folder=folder / "%j", cluster=cluster)
        try:
            self._executor.update_parameters(**options)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"--slurm options {options}: {err}") from None
        self._threads = int(config.threads or options.get("cpus_per_task", 1))
        self._retries = config.max_retries
        folder.mkdir(parents=True, exist_ok=True)
        self._heartbeat = folder / f"driver-{os.getpid()}-{time.time_ns()}.alive"
        self._heartbeat.touch()
        self._stopped = threading.Event()
        self._jobs: set[Any] = set()
        self._lock = threading.Lock()
        threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()

    def _beat(self) -> None:
        while not self._stopped.wait(_BEAT_S):
            try:
                self._heartbeat.touch()
            except OSError as err:
                log.warning("cannot touch the heartbeat %s: %s", self._heartbeat, err)

    def _follow(self, future: Future, fn: Callable[..., Any], args: tuple) -> None:
        uncompleted = self._submitit.core.utils.UncompletedJobError
        for attempt in range(self._retries + 1):
            if self._stopped.is_set():
                future.cancel()
                return
            with self._lock:
                job = self._executor.submit(
                    _job, str(self._heartbeat), self._timeout_s, self._threads, fn, *args
                )
                self._jobs.add(job)
            try:
                result = job.result()
            except uncompleted as err:  # the job died without a result: a lost worker
                if attempt < self._retries and not self._stopped.is_set():
                    log.warning("job %s lost (%s); resubmitted", job.job_id, err)
                    continue
                future.set_exception(err)
                return
            except Exception as err:  # the task raised: its result
                future.set_exception(getattr(err, "__cause__", None) or err)
                return
            finally:
                with self._lock:
                    self._jobs.discard(job)
            future.set_result(result)
            return

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        future: Future = Future()
        future.set_running_or_notify_cancel()
        threading.Thread(
            target=self._follow, args=(future, fn, args), name="job", daemon=True
        ).start()
        return future

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            jobs = list(self._jobs)
        for job in jobs:
            try:
                job.cancel(check=False)
            except Exception as err:  # already ended
                log.debug("cancel %s: %s", job.job_id, err)

    def __enter__(self) -> _SubmititExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._heartbeat.unlink(missing_ok=True)  # jobs still running see the driver gone


@BACKENDS.register("slurm")
@dataclasses.dataclass
class SubmititBackend:
    """SLURM jobs through submitit (see the module docstring).

    Args:
        config: ``workers`` jobs queued at a time, ``max_retries``, ``options``
            (submitit parameters, plus ``cluster`` and ``folder``).
    """

    config: BackendConfig

    def __post_init__(self) -> None:
        _submitit()

    def in_process(self, n_tasks: int) -> bool:
        """Never: ``--backend slurm`` asks for jobs even for one task."""
        return False

    def executor(self, n_tasks: int) -> TaskExecutor:
        """A submitit executor whose jobs die with this driver."""
        return _SubmititExecutor(self.config)
