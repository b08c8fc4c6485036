"""The local backend and :func:`run_tasks`: process and thread pools, lost workers, in-flight.

The task functions are the standard library's (``operator.mul``, ``os.getpid``,
``os._exit``), so spawned workers can unpickle them without the tests folder.
"""

from __future__ import annotations

import operator
import os
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest

from vocalis.backends import BackendConfig, LocalBackend, run_tasks
from vocalis.errors import ConfigError

pytestmark = pytest.mark.timeout(120)


def _collect() -> tuple[dict[int, tuple], Callable[[int, Any, BaseException | None], None]]:
    """A dict of ``i -> (result, error)`` and the ``on_done`` that fills it (once per task)."""
    got: dict[int, tuple] = {}

    def on_done(i, result, error):
        assert i not in got, f"task {i} reported twice"
        got[i] = (result, error)

    return got, on_done


@pytest.mark.parametrize("pool", ["process", "thread"])
def test_every_task_reports_its_own_result(pool):
    got, on_done = _collect()
    backend = LocalBackend(BackendConfig(workers=2, threads=1), pool)
    run_tasks(backend, operator.mul, [(i, i + 1) for i in range(7)], on_done)
    assert got == {i: (i * (i + 1), None) for i in range(7)}


def test_processes_run_elsewhere_and_threads_here():
    here = os.getpid()
    for pool, inside in (("thread", True), ("process", False)):
        got, on_done = _collect()
        run_tasks(LocalBackend(BackendConfig(workers=2), pool), os.getpid, [()] * 4, on_done)
        pids = {pid for pid, _ in got.values()}
        assert (pids == {here}) is inside, (pool, pids)


@pytest.mark.skipif(sys.platform == "win32", reason="os._exit in a spawned POSIX worker")
def test_a_task_that_kills_its_worker_is_an_error_of_its_own_not_a_hang():
    got, on_done = _collect()
    run_tasks(LocalBackend(BackendConfig(workers=2, threads=1)), os._exit, [(3,), (3,)], on_done)
    assert sorted(got) == [0, 1]
    for result, error in got.values():
        assert result is None and isinstance(error, BrokenProcessPool)


class _Counting:
    """A thread-pool local backend that records how many tasks were in flight at each submit."""

    def __init__(self, workers: int) -> None:
        self._inner = LocalBackend(BackendConfig(workers=workers), "thread")
        self.config = self._inner.config
        self.submitted = self.finished = 0
        self.in_flight: list[int] = []
        self._lock = threading.Lock()

    def in_process(self, n_tasks: int) -> bool:
        return False

    def executor(self, n_tasks: int):
        pool = self._inner.executor(n_tasks)
        submit = pool.submit

        def counted(fn, /, *args):
            with self._lock:
                self.submitted += 1
                self.in_flight.append(self.submitted - self.finished)
            return submit(fn, *args)

        pool.submit = counted
        return pool

    def done(self, i, result, error) -> None:
        with self._lock:
            self.finished += 1


@pytest.mark.parametrize(("in_flight", "most"), [(None, 2), (3, 3), (10, 10)])
def test_in_flight_bounds_the_tasks_submitted_at_once(in_flight, most):
    backend = _Counting(workers=2)
    run_tasks(backend, time.sleep, [(0.01,)] * 10, backend.done, in_flight=in_flight)
    assert backend.finished == 10
    assert max(backend.in_flight) == most


def test_an_unknown_pool_is_one_line():
    with pytest.raises(ConfigError, match="pool='procss'; expected 'process' or 'thread'"):
        LocalBackend(BackendConfig(workers=2), "procss")
